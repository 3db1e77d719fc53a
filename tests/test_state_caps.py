"""Entity caps of the live state (issue 13): past ``max_devices`` / ``max_stores`` the least
recently updated long-silent entity is evicted, else the new one is refused (counted);
decided by event seq/ts only, so a state rebuilt from a snapshot + the log is the same."""
from __future__ import annotations

import random
from typing import Any

import pytest

from wallboard.state import LiveState, StateConfig


class Log:
    def __init__(self) -> None:
        self.seq = 0
        self.events: list[dict[str, Any]] = []

    def add(self, **ev: Any) -> dict[str, Any]:
        self.seq += 1
        ev["seq"] = self.seq
        self.events.append(ev)
        return ev


def dev(log: Log, did: str, ts: float, store: str = "s1", status: str = "ok") -> dict[str, Any]:
    return log.add(type="device", id=did, store=store, status=status, ts=ts)


def cfg(**kw: Any) -> StateConfig:
    return StateConfig(**{"evict_after_s": 10.0, "device_ttl_s": 100.0, **kw})


def test_a_new_device_past_the_cap_evicts_the_least_recent_long_silent_one():
    log, st = Log(), LiveState(cfg(max_devices=3))
    st.apply([dev(log, "d1", 0), dev(log, "d2", 0), dev(log, "d3", 0)], now=0.0)
    st.apply([dev(log, "d2", 200)], now=0.0)       # d2 updated: d1 and d3 are older
    st.apply([dev(log, "d4", 200)], now=0.0)       # 0 + ttl 100 + 10 < 200: d1 goes
    assert sorted(st.devices) == ["d2", "d3", "d4"] and st.counters["evicted_devices"] == 1
    st.apply([dev(log, "d5", 200)], now=0.0)       # then d3 (seq 3), not d2 (seq 4)
    assert sorted(st.devices) == ["d2", "d4", "d5"] and st.counters["evicted_devices"] == 2
    assert st.store_counts("s1")["ok"] == 3        # the roll-ups follow


def test_a_new_device_is_refused_when_none_is_long_silent():
    log, st = Log(), LiveState(cfg(max_devices=2))
    st.apply([dev(log, "d1", 100), dev(log, "d2", 100)], now=0.0)
    dirty = st.apply([dev(log, "typo", 150)], now=0.0)   # d1 silent 50 s < ttl + 10: kept
    assert sorted(st.devices) == ["d1", "d2"] and st.counters["refused_devices"] == 1
    assert "typo" not in dirty.devices and st.seq == 3
    st.apply([dev(log, "d1", 300)], now=0.0)        # the known ones still update
    assert st.devices["d1"]["ts"] == 300


def test_a_deleted_device_frees_its_place():
    log, st = Log(), LiveState(cfg(max_devices=1))
    st.apply([dev(log, "d1", 100), log.add(type="device", id="d1", deleted=True, ts=100),
              dev(log, "d2", 100)], now=0.0)
    assert list(st.devices) == ["d2"] and not st.counters.get("refused_devices")


def test_stores_past_the_cap_evict_only_long_silent_stores_without_devices():
    log, st = Log(), LiveState(cfg(max_stores=2))
    st.apply([log.add(type="store", id="s1", ts=0), log.add(type="store", id="s2", ts=0),
              dev(log, "d1", 0, store="s1")], now=0.0)
    st.apply([log.add(type="store", id="s3", ts=100)], now=0.0)   # s1 has a device: s2 goes
    assert sorted(st.stores) == ["s1", "s3"] and st.counters["evicted_stores"] == 1
    st.apply([log.add(type="store", id="s4", ts=105)], now=0.0)   # s3 is young, s1 has devices
    assert sorted(st.stores) == ["s1", "s3"] and st.counters["refused_stores"] == 1
    st.apply([log.add(type="device", id="d1", deleted=True, ts=200),
              log.add(type="store", id="s5", ts=200)], now=0.0)   # s1 empty now and the oldest
    assert sorted(st.stores) == ["s3", "s5"] and st.counters["evicted_stores"] == 2


def _state_view(st: LiveState) -> tuple[Any, ...]:
    devs = {k: (r["status"], r["seq"], r.get("store")) for k, r in st.devices.items()}
    c = st.counters
    return devs, sorted(st.stores), tuple(c.get(k, 0) for k in ("evicted_devices", "refused_devices",
                                                                  "evicted_stores", "refused_stores"))


@pytest.mark.parametrize("seed", range(8))
def test_the_same_log_gives_the_same_state_through_any_snapshot(seed):
    """Typo ids, updates, deletes and new stores past both caps; the state applied live
    equals the state rebuilt from a snapshot taken anywhere plus the rest of the log."""
    rng = random.Random(seed)
    log, ts = Log(), 0.0
    for _ in range(600):
        ts += rng.choice((0.0, 1.0, 30.0))
        r = rng.random()
        if r < 0.1:
            log.add(type="store", id=f"s{rng.randrange(12)}", ts=ts)
        elif r < 0.15:
            log.add(type="device", id=f"d{rng.randrange(40)}", deleted=True, ts=ts)
        else:
            dev(log, f"d{rng.randrange(40)}", ts, store=f"s{rng.randrange(12)}",
                status=rng.choice(("ok", "warn", "crit")))
    config = cfg(max_devices=15, max_stores=5)
    live = LiveState(config)
    for i in range(0, len(log.events), 7):
        live.apply(log.events[i:i + 7], now=0.0)
    assert live.counters.get("evicted_devices") and live.counters.get("refused_devices") is not None
    cut = rng.randrange(50, 550)
    first = LiveState(config)
    first.apply(log.events[:cut], now=0.0)
    rebuilt = LiveState.from_snapshot(first.snapshot(), config)
    rebuilt.apply(log.events[cut:], now=0.0)
    assert _state_view(rebuilt) == _state_view(live)
    assert len(live.devices) <= 15 and len(live.stores) <= 5


@pytest.mark.parametrize("field, value, want", [
    ("max_devices", 0, "StateConfig.max_devices: expected an integer >= 1, got 0"),
    ("evict_after_s", -1.0, "StateConfig.evict_after_s: expected a finite number > 0, got -1.0"),
])
def test_bad_caps_are_named(field, value, want):
    with pytest.raises(ValueError) as ei:
        StateConfig(**{field: value})
    assert str(ei.value) == want
