"""Property: every event the protocol accepts survives everything the hub and the walls do
with it later -- the SQLite journal, replay into a fresh LiveState, snapshot encode /
decode (also split into ``snapshot`` frames), compaction and recovery -- with an equal
result. Events carry free-form ``x_`` values at and past the limits (depth, integers,
string sizes); what is refused must be a ProtocolError, nothing else (issue 18, item 4)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as S

from test_state_props import event as plain_event
from wallboard import protocol as P
from wallboard.hub.journal import Batch, SqliteJournal
from wallboard.state import LiveState
from wallboard.state.snapshot import encode_snapshot

NOW = 1_790_000_000.0


def nest(depth: int, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


edge_ints = S.sampled_from([0, 1, -1, P.MAX_INT, -P.MAX_INT, P.MAX_INT + 1, -P.MAX_INT - 1,
                            2**63 - 1, -(2**63), 2**63, 2**64 - 1])
scalars = S.one_of(
    S.none(), S.booleans(), edge_ints, S.integers(-(2**63), 2**64 - 1),
    S.floats(allow_nan=False, allow_infinity=False),
    S.text(max_size=8), S.text(min_size=P.MAX_TEXT - 1, max_size=P.MAX_TEXT + 1, alphabet="ab\x01中"),
)
json_values = S.recursive(
    scalars,
    lambda inner: S.one_of(S.lists(inner, max_size=4),
                           S.dictionaries(S.text(max_size=5), inner, max_size=4)),
    max_leaves=12,
)
# a value nested around the depth limit, and around what orjson can encode (254 levels)
deep = S.tuples(S.one_of(S.integers(P.MAX_DEPTH - 3, P.MAX_DEPTH + 3), S.integers(245, 260)),
                S.sampled_from([1, "s", {}, []])).map(lambda t: nest(*t))
extension = S.dictionaries(S.sampled_from(["x_a", "x_b", "x_deep"]), S.one_of(json_values, deep), max_size=2)


@S.composite
def events(draw):
    ev = dict(draw(plain_event))
    ev.update(draw(extension))
    ev["ts"] = draw(S.one_of(S.floats(0, 4e9, allow_nan=False), S.integers(0, 4_000_000_000),
                             S.just("2026-09-28T09:28:00+08:00")))
    return ev


def accepted(batch: list[dict]) -> list[dict]:
    """The events of ``batch`` the hub's door takes, one publish frame each (refusals
    must be ProtocolErrors)."""
    out = []
    for ev in batch:
        # the stdlib writes what orjson cannot (255+ levels): a peer in another language could
        frame = json.dumps({"op": "publish", "events": [ev]}, ensure_ascii=False).encode()
        try:
            out.extend(P.decode(frame).events)
        except P.ProtocolError:
            continue
    return out


def state_of(events: list[dict]) -> LiveState:
    st = LiveState()
    if events:
        st.apply([dict(e) for e in events], NOW)
    return st


def from_snapshot_bytes(blob: bytes) -> LiveState:
    return LiveState.from_snapshot(orjson.loads(blob))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(S.lists(events(), min_size=1, max_size=12))
def test_every_accepted_event_survives_journal_snapshot_compaction_and_replay(batch):
    good = accepted(batch)
    with tempfile.TemporaryDirectory() as tmp:
        journal = SqliteJournal(Path(tmp) / "journal.db")
        try:
            if not good:
                return
            ranges = journal.append([Batch(events=[dict(e) for e in good], producer="prop", batch=1)]).ranges
            assert ranges == [(1, len(good))]
            replayed = journal.read(0, len(good) + 10)
            assert replayed == [dict(e, seq=i + 1) for i, e in enumerate(good)]

            live = state_of(replayed)
            want = live.snapshot()
            assert want["seq"] == len(good)

            # replay into a fresh state
            assert state_of(journal.read(0, len(good) + 10)).snapshot() == want
            # snapshot bytes, as the hub's compaction writes them, and back
            blob = encode_snapshot(live)
            assert from_snapshot_bytes(blob).snapshot() == want
            # snapshot frames, as a wall receives them
            parts = P.split_snapshot(orjson.loads(blob), max_records=2)
            frames = [P.encode(P.Snapshot(seq=want["seq"], part=i, parts=len(parts), data=p))
                      for i, p in enumerate(parts)]
            got = P.merge_snapshot_parts([P.decode(f).data for f in frames])
            assert LiveState.from_snapshot(got).snapshot() == want
            # compaction, then recovery as at a hub restart
            journal.compact(want["seq"], blob, keep=0)
            rec = journal.recover()
            restored = LiveState.from_snapshot(rec.snapshot)
            if rec.events:
                restored.apply(rec.events, NOW)
            assert restored.snapshot() == want
        finally:
            journal.close()


def test_the_generator_reaches_both_sides_of_every_limit():
    """Sanity of the property above: its inputs are refused and accepted for each limit."""
    def one(**x):
        return {"type": "device", "id": "d", "ts": 1.0, **x}
    assert accepted([one(x_deep=nest(P.MAX_DEPTH, 1))])
    assert not accepted([one(x_deep=nest(P.MAX_DEPTH + 1, 1))])
    assert accepted([one(x_a=P.MAX_INT)]) and not accepted([one(x_a=P.MAX_INT + 1)])
    assert accepted([one(x_a="a" * P.MAX_TEXT)]) and not accepted([one(x_a="a" * (P.MAX_TEXT + 1))])
