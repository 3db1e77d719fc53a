"""No trust in another machine's clock (issue 18): a snapshot says how long ago each
device was heard (its age at the hub, at snapshot time); the wall turns ages into its own
times when it loads it, so a wall whose clock is an hour off its hub shows the same."""
from __future__ import annotations

import orjson
import pytest

from wallboard import protocol as P
from wallboard.app.frame import load_snapshot_in_place
from wallboard.state import LiveState, SnapshotError
from wallboard.state.snapshot import encode_snapshot

HUB = 1_790_000_000.0           # the hub's clock at snapshot time
TTL = 60.0


def hub_state() -> LiveState:
    """At the hub: 'fresh' heard 5 s before the snapshot, 'old' 100 s before (past ttl)."""
    st = LiveState()
    st.apply([{"type": "store", "id": "s1", "ts": HUB - 200, "seq": 1},
              {"type": "device", "id": "old", "store": "s1", "status": "ok", "ttl_s": TTL,
               "ts": HUB - 100, "seq": 2}], HUB - 100)
    st.apply([{"type": "device", "id": "fresh", "store": "s1", "status": "warn", "ttl_s": TTL,
               "ts": HUB - 5, "seq": 3}], HUB - 5)
    st.tick(HUB)
    assert st.device_status("old", HUB) == "unknown" and st.device_status("fresh", HUB) == "warn"
    return st


def over_the_wire(st: LiveState) -> dict:
    """The snapshot as a wall gets it: encoded, split into frames, decoded, merged."""
    snap = orjson.loads(encode_snapshot(st, HUB))
    parts = P.split_snapshot(snap, max_records=1)
    frames = [P.encode(P.Snapshot(seq=snap["seq"], part=i, parts=len(parts), data=p))
              for i, p in enumerate(parts)]
    return P.merge_snapshot_parts([P.decode(f).data for f in frames])


@pytest.mark.parametrize("skew", [3600.0, TTL + 1, -3600.0, 0.0])
def test_a_skewed_wall_sees_what_the_hub_sees(skew):
    wall_now = HUB + skew
    wall = LiveState.from_snapshot(over_the_wire(hub_state()), now=wall_now)
    wall.tick(wall_now)
    assert wall.device_status("fresh", wall_now) == "warn"        # 5 s old, not 5 s + skew
    assert wall.device_status("old", wall_now) == "unknown"
    assert wall.total_counts()["unknown"] == 1
    assert wall.feed_age(wall_now) == pytest.approx(5.0)         # the hub heard it 5 s ago
    wall.tick(wall_now + 54.0)
    assert wall.device_status("fresh", wall_now + 54.0) == "warn"
    wall.tick(wall_now + 56.0)                                    # 61 s since heard: past ttl
    assert wall.device_status("fresh", wall_now + 56.0) == "unknown"


def test_without_the_loaders_clock_times_are_the_producers():
    """What the wall did before: the hub's last_seen taken as local times. A wall an hour
    ahead then shows every device unknown after a resync (kept for a process reloading
    its own snapshot, where the clock is the same)."""
    snap = over_the_wire(hub_state())
    wall_now = HUB + 3600.0
    naive = LiveState.from_snapshot(snap)
    naive.tick(wall_now)
    assert naive.device_status("fresh", wall_now) == "unknown"
    same_clock = LiveState.from_snapshot(snap)
    assert same_clock.device_status("fresh", HUB) == "warn"
    assert same_clock.snapshot() == hub_state().snapshot(HUB)


def test_the_wall_loads_snapshots_with_its_clock():
    st = LiveState()
    wall_now = HUB + 7200.0
    load_snapshot_in_place(st, over_the_wire(hub_state()), wall_now)
    assert st.device_status("fresh", wall_now) == "warn"


def test_snapshot_clock_defaults_to_the_latest_time_the_state_saw():
    st = hub_state()
    assert st.snapshot()["clock"] == HUB
    assert st.snapshot(HUB + 1)["clock"] == HUB + 1
    assert LiveState().snapshot()["clock"] is None


def test_version_1_snapshots_still_load_with_their_times():
    snap = hub_state().snapshot(HUB)
    snap["version"] = 1
    del snap["clock"]
    old = LiveState.from_snapshot(snap, now=HUB + 3600.0)      # no clock: nothing to rebase
    assert old.devices["fresh"]["last_seen"] == HUB - 5


def test_bad_now_for_a_snapshot_load():
    with pytest.raises(TypeError, match="from_snapshot: now is str, expected epoch seconds"):
        LiveState.from_snapshot(hub_state().snapshot(), now="now")
    snap = hub_state().snapshot()
    snap["clock"] = "noon"
    with pytest.raises(SnapshotError, match="clock"):
        LiveState.from_snapshot(snap, now=HUB)
