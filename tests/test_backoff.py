"""The pure reconnect policy: delays, cap, jitter, what counts as an auth failure."""
import itertools
import random
import subprocess
import sys

import pytest

from wallboard.backoff import backoff, classify_close


def test_first_retry_is_immediate_then_grows_and_caps():
    d = list(itertools.islice(backoff(rng=random.Random(1)), 40))
    assert d[0] == 0.0
    assert all(0 < x <= 5.0 for x in d[1:])
    assert max(d[20:]) <= 5.0 and min(d[20:]) >= 2.5  # capped: jitter in [cap/2, cap]
    assert d[1] < 0.3  # starts small


def test_jitter_is_random_but_seedable():
    a = list(itertools.islice(backoff(rng=random.Random(7)), 10))
    b = list(itertools.islice(backoff(rng=random.Random(7)), 10))
    c = list(itertools.islice(backoff(rng=random.Random(8)), 10))
    assert a == b and a != c


def test_bad_parameters_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="min_delay > 0"):
        next(backoff(min_delay=0))


@pytest.mark.parametrize("kw,want", [
    ({"http_status": 401}, "auth"), ({"http_status": 403}, "auth"), ({"http_status": 500}, "retry"),
    ({"code": 1008, "reason": "auth: a subscribe token is required"}, "auth"),
    ({"code": 1008, "reason": "forbidden: no"}, "auth"),
    ({"code": 1008, "reason": "protocol: 3 violations"}, "retry"),
    ({"code": 1006, "reason": ""}, "retry"), ({}, "retry"),
])
def test_classify_close(kw, want):
    assert classify_close(**kw) == want


def test_policy_module_is_pure():
    code = "import sys, wallboard.backoff; bad = {'asyncio', 'websockets', 'PySide6'} & set(sys.modules); print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "set()", out.stdout + out.stderr


# ---------------------------------------------------------------- Reconnects (issue 13: resync storms)
from wallboard.backoff import Reconnects  # noqa: E402


def test_a_short_lived_link_does_not_reset_the_backoff():
    p = Reconnects(lambda: backoff(rng=random.Random(3)), healthy_s=10.0)
    delays = []
    now = 0.0
    for _ in range(12):                       # welcomed, then down 0.01 s later: again and again
        p.up(now)
        now += 0.01
        d = p.down(now)
        delays.append(d)
        now += d
    assert delays[0] == 0.0 and all(d > 0 for d in delays[1:])
    assert delays[-1] >= 2.5 and max(delays) <= 5.0 and p.in_a_row == 12


def test_a_healthy_link_starts_the_backoff_over():
    p = Reconnects(lambda: backoff(rng=random.Random(3)), healthy_s=10.0)
    for t in range(5):
        p.down(float(t))                      # never welcomed: refused connects
    assert p.in_a_row == 5
    p.up(100.0)
    assert p.down(110.0) == 0.0 and p.in_a_row == 1   # up 10 s: at once
    p.up(111.0)
    assert p.down(112.0) > 0 and p.in_a_row == 2


def test_reconnects_refuses_a_bad_healthy_s():
    with pytest.raises(ValueError, match="healthy_s must be > 0, got 0"):
        Reconnects(healthy_s=0)
