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
