"""Ingest benchmark: decode + apply of device-status event frames vs plain orjson.loads.

    python benchmarks/ingest.py [--events N] [--devices N] [--stores N]

Builds a state of 100,000 devices in 2,000 stores (stores first), then times, on the
same pre-encoded ``events`` frames of 500 device-status events each:
  (a) ``orjson.loads`` alone,
  (b) ``wallboard.protocol.decode`` alone (for attribution),
  (c) ``protocol.decode`` + ``LiveState.apply`` (the figure that counts),
  (d) the same pipeline again, timed per step (loads / validation / apply),
and reports all of them also as CPU microseconds per event (``us_per_event``).
and a "floor" measured on the same frames in the same run, with nothing of wallboard but
the state's device dict: (e) ``orjson.loads`` + the per-event id lookup only
(``floor_lookup_ratio``), (f) ``orjson.loads`` + a minimal apply without validation,
aggregates or dirty sets (``floor_minimal_apply_ratio``). These bound the reachable
``ratio`` for per-event Python processing of string-keyed devices: at 100,000 devices the
lookup alone touches cold memory (the dict entry, the key string, the record) and
already halves the events/s of a bare ``orjson.loads``.
Then adds 10,000 changes and 10,000 incidents, times ``snapshot()`` and a validating
``from_snapshot()`` of that state, and reports the process's peak RSS (ru_maxrss).
The wall's path (issue 14): the same timed events as the hub sends them to a wall that
negotiated the columnar encoding (``devices`` frames, ``wallboard.protocol.columnar``),
into a second state with the same setup: ``protocol.decode_devices`` +
``LiveState.apply_devices``, in two passes over one connection: a new connection (every
id announced and translated once) and the steady state (every id known), timed apart.
``ratio`` and ``events_per_s`` are the steady state's (``ratio_new_connection`` beside
them); ``object_ratio`` / ``object_events_per_s`` are (c) above, the path of ``events``
frames. ``columnar.us_per_event.sync_every_record_each_5_frames`` is what a reader that
reads every updated record would add (the records are brought up to date lazily).
Prints one JSON object, with the load average before and after. Targets (issue 14):
events_per_s >= 1,000,000 and ratio >= 0.6 on one core; peak RSS <= 300 MB (issue 2).
The floor shows the ratio target is out of reach for any per-event Python processing of
100,000 string-keyed devices: hence the columns.

The state's loading ``apply`` calls ``gc.freeze()`` the loaded records (see
``wallboard.state.model``), as the wall does: ``gc_frozen_objects`` reports how many
objects the collector no longer scans; without it full collections over the 100,000
records cost ~0.4 us per event, most of it counted under ``pipeline_loads``.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wallboard import protocol as P  # noqa: E402
from wallboard.state import LiveState, StateConfig  # noqa: E402

BATCH = 500
#: CPU time of this process: "events per second on one core", robust to other processes
#: sharing the machine (wall-clock figures swing with their load).
_clock = time.process_time
T0 = 1_790_000_000.0
KINDS = ("pos", "self_checkout", "scale", "esl_gateway", "camera", "gate", "printer", "ap", "router")


class _Framer:
    """Encodes events into ``events`` frames of ``BATCH`` as they are made (so the
    benchmark never holds hundreds of thousands of event dicts at once)."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self._cur: list[dict] = []
        self.seq = 0

    def add(self, ev: dict) -> None:
        self.seq += 1
        ev["seq"] = self.seq
        self._cur.append(ev)
        if len(self._cur) == BATCH:
            self.flush()

    def flush(self) -> list[bytes]:
        if self._cur:
            self.frames.append(P.encode_events(self._cur))
            self._cur = []
        return self.frames


def build(args: argparse.Namespace, rng: random.Random) -> tuple[list[bytes], list[bytes], int]:
    """Setup frames (stores + devices) and the timed status frames; return them + last seq."""
    fr = _Framer()
    for s in range(args.stores):
        fr.add({"type": "store", "id": f"st-{s:05d}", "ts": T0, "name": f"Store {s}",
                "city": {"id": f"c{s % 50:02d}", "name": f"City {s % 50}"},
                "lat": 20 + (s % 200) / 10, "lon": 100 + (s // 200), "status": "open"})
    for d in range(args.devices):
        fr.add({"type": "device", "id": f"dev-{d:06d}", "ts": T0,
                "store": f"st-{d % args.stores:05d}", "kind": KINDS[d % len(KINDS)],
                "name": f"Device {d}", "status": "ok", "metrics": {"cpu": 0.1, "temp": 40.0}})
    setup = fr.flush()
    fr.frames = []
    ids = [f"dev-{d:06d}" for d in range(args.devices)]
    rnd, pick = rng.random, rng.randrange
    for i in range(args.events):
        r = rnd()
        status = "ok" if r < 0.90 else "warn" if r < 0.96 else "crit" if r < 0.98 else \
            "down" if r < 0.99 else "maint"
        fr.add({"type": "device", "id": ids[pick(args.devices)], "ts": T0 + 60 + i * 0.001,
                "status": status, "metrics": {"cpu": round(rnd(), 3), "temp": round(30 + 20 * rnd(), 1)}})
    return setup, fr.flush(), fr.seq


def timed_loads(frames: list[bytes]) -> float:
    t = _clock()
    for f in frames:
        orjson.loads(f)
    return _clock() - t


def timed_decode(frames: list[bytes]) -> float:
    t = _clock()
    for f in frames:
        P.decode(f)
    return _clock() - t


def timed_decode_apply(st: LiveState, frames: list[bytes], now: float) -> tuple[float, float]:
    """Total CPU seconds of decode + apply, and the part spent inside ``apply``."""
    in_apply = 0.0
    t = _clock()
    for f in frames:
        events = P.decode(f).events
        t1 = _clock()
        st.apply(events, now)
        in_apply += _clock() - t1
        now += 0.002
    return _clock() - t, in_apply


def timed_pipeline_split(st: LiveState, frames: list[bytes], now: float) -> tuple[float, float, float]:
    """CPU seconds of (orjson.loads, validation, apply) inside the decode + apply loop.

    A second pass over the same frames (``st.seq`` reset to 0 so they apply again), split
    at the decoder's internal seam: ``orjson.loads`` slows down here compared with
    :func:`timed_loads` because each ``apply`` in between touches records all over the
    heap and frees the values it replaces, so the next frame's objects are allocated in
    cold memory. The split explains the gap between ``ratio`` and its target.
    """
    st.seq = 0
    loads_s = validate_s = apply_s = 0.0
    loads, batch, max_batch = orjson.loads, P._batch, P.MAX_BATCH
    for f in frames:
        t0 = _clock()
        obj = loads(f)
        t1 = _clock()
        events = batch(obj, "events", require_seq=True, require_ts=True, max_batch=max_batch)
        t2 = _clock()
        st.apply(events, now)
        t3 = _clock()
        loads_s += t1 - t0
        validate_s += t2 - t1
        apply_s += t3 - t2
        now += 0.002
    return loads_s, validate_s, apply_s


def timed_floor(st: LiveState, frames: list[bytes]) -> tuple[float, float]:
    """CPU seconds of (e) ``orjson.loads`` + ``devices.get(ev["id"])`` per event and (f)
    ``orjson.loads`` + a minimal apply per event: look the record up, set ``ts`` and
    ``seq``, merge ``metrics`` and compare ``status`` (read, not written, so the state's
    aggregates stay true). Run after :func:`timed_pipeline_split` on the same frames, the
    values written are the ones already there."""
    loads, dget = orjson.loads, st.devices.get
    t = _clock()
    for f in frames:
        for ev in loads(f)["events"]:
            dget(ev["id"])
    lookup_s = _clock() - t
    same = 0
    t = _clock()
    for f in frames:
        for ev in loads(f)["events"]:
            rec = dget(ev["id"])
            rec["ts"] = ev["ts"]
            rec["seq"] = ev["seq"]
            rec["metrics"].update(ev["metrics"])
            if ev["status"] == rec["status"]:
                same += 1
    minimal_s = _clock() - t
    return lookup_s, minimal_s


def columnar_frames(frames: list[bytes], per_frame: int) -> tuple[list[bytes], list[bytes]]:
    """The same events as the hub sends them to a wall that negotiated the columnar
    encoding, in chunks of ``per_frame`` events (the hub's ``batch_events``, 500, or the
    4 x that a columnar wall with a backlog gets), twice through one connection's
    ``ColumnarEncoder``: the first pass announces the ids (a new connection), the second
    finds them all known (the steady state of a connection that has seen every device)."""
    events = [ev for f in frames for ev in orjson.loads(f)["events"]]
    # (copied: orjson 3.13 leaves ~4 KB of capacity behind each small dumps result, 1.2 GB
    # for 300,000 of them; the copy is exact-size)
    encoded = [memoryview(orjson.dumps(e)).tobytes() for e in events]
    enc = P.ColumnarEncoder()
    passes: tuple[list[bytes], list[bytes]] = ([], [])
    for out in passes:
        for i in range(0, len(events), per_frame):
            out.extend(enc.encode(events[i:i + per_frame], encoded[i:i + per_frame], P.WALL_MAX_FRAME))
    return passes


def _apply_frame(st: LiveState, f: bytes, ids: list[str], now: float) -> None:
    """What the wall does with one frame: the session's decode (+ its id dictionary),
    then the state's apply."""
    if f.startswith(b'{"op":"devices"'):
        b = P.decode_devices(f, len(ids))
        ids.extend(b.new_ids)
        b.ids = ids
        st.apply_devices(b, now)
    else:
        st.apply(P.decode(f).events, now, checked=True)


def timed_columnar(st: LiveState, passes: tuple[list[bytes], list[bytes]], now: float) -> dict[str, float]:
    """CPU seconds of decode + apply of both passes (a new connection, then the steady
    state; ``st.seq`` reset to 0 before each so the same events apply again), of the
    decode alone (steady pass), and of syncing every pending record after each 5 frames
    of a third pass (what a reader of every record would cost)."""
    out: dict[str, float] = {}
    ids: list[str] = []
    for name, cframes in zip(("new_connection", "steady"), passes):
        st.seq = 0
        t = _clock()
        for f in cframes:
            _apply_frame(st, f, ids, now)
            now += 0.002
        out[name] = _clock() - t
    known = len(ids)
    t = _clock()
    for f in passes[1]:
        if f.startswith(b'{"op":"devices"'):
            P.decode_devices(f, known)
        else:
            P.decode(f)
    out["decode"] = _clock() - t
    st.seq = 0
    cols = st._fleet.cols
    flush = 0.0
    for k, f in enumerate(passes[1]):
        _apply_frame(st, f, ids, now)
        now += 0.002
        if k % 5 == 4:
            t = _clock()
            cols.flush()
            flush += _clock() - t
    t = _clock()
    cols.flush()
    out["sync"] = flush + _clock() - t
    return out


def add_changes_incidents(st: LiveState, n_changes: int, n_incidents: int, stores: int,
                          seq: int, rng: random.Random) -> int:
    fr = _Framer()
    fr.seq = seq
    for c in range(n_changes):
        start = T0 - 86_400 + c * 8.0
        status = rng.choice(("succeeded", "succeeded", "failed", "rolled_back", "running", "planned"))
        fr.add({"type": "change", "id": f"chg-{c:05d}", "ts": start,
                       "title": f"Deploy pos-service 1.{c}", "system": "pos", "owner": "ops",
                       "scope": {"stores": [f"st-{rng.randrange(stores):05d}" for _ in range(3)]},
                       "status": status, "start": start,
                       "end": None if status in ("running", "planned") else start + 600,
                       "approved": rng.random() > 0.1, "risk": "medium"})
    for i in range(n_incidents):
        status = "resolved" if i % 5 == 0 else rng.choice(("open", "acknowledged", "mitigated"))
        opened = T0 - 43_200 + i * 4.0
        fr.add({"type": "incident", "id": f"inc-{i:05d}", "ts": opened,
                       "title": f"POS timeouts {i}", "severity": rng.choice(("P1", "P2", "P3", "P4")),
                       "status": status, "stores": [f"st-{rng.randrange(stores):05d}"],
                       "owner": "duty", "opened_at": opened,
                       "resolved_at": opened + 900 if status == "resolved" else None})
    for f in fr.flush():
        st.apply(P.decode(f).events, T0 + 100)
    return fr.seq


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300_000, help="timed device-status events")
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--stores", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for loads/decode")
    args = ap.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    rng = random.Random(7)
    setup, frames, _ = build(args, rng)
    n = args.events

    st = LiveState(StateConfig(max_resolved_incidents=10_000))
    t = _clock()
    for f in setup:
        st.apply(P.decode(f).events, T0)
    setup_s = _clock() - t

    gc.collect()
    loads_s = min(timed_loads(frames) for _ in range(args.repeat))
    decode_s = min(timed_decode(frames) for _ in range(args.repeat))
    apply_s, in_apply_s = timed_decode_apply(st, frames, T0 + 60)
    p_loads_s, p_validate_s, p_apply_s = timed_pipeline_split(st, frames, T0 + 120)
    floor_lookup_s, floor_minimal_s = map(min, zip(*(timed_floor(st, frames) for _ in range(2))))

    frozen = gc.get_freeze_count()
    add_changes_incidents(st, 10_000, 10_000, args.stores, st.seq, rng)
    del frames, setup
    gc.collect()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open("/proc/self/statm") as fh:
        rss_now_mb = int(fh.read().split()[1]) * resource.getpagesize() / 2**20
    t = _clock()
    snap = st.snapshot()
    snapshot_s = _clock() - t
    t = _clock()
    LiveState.from_snapshot(snap, st.config)
    restore_s = _clock() - t
    del snap
    peak_snap_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = st.total_counts()

    # the wall's path: columnar frames of the same events into a second state (after the
    # peak RSS of one state was taken)
    setup_frames, timed_frames, _ = build(args, random.Random(7))     # the same frames again
    cst = LiveState(StateConfig(max_resolved_incidents=10_000))
    for f in setup_frames:
        cst.apply(P.decode(f).events, T0)
    t = _clock()
    cst.keep_columns()                       # the wall does this when its state is built
    columns_build_s = _clock() - t
    col: dict[int, dict[str, float]] = {}
    col_bytes = {}
    for per_frame in (BATCH, 4 * BATCH):
        passes = columnar_frames(timed_frames, per_frame)
        col_bytes[per_frame] = sum(map(len, passes[1]))
        gc.collect()
        runs = [timed_columnar(cst, passes, T0 + 60 + 0.1 * r) for r in range(2)]
        col[per_frame] = {k: min(r[k] for r in runs) for k in runs[0]}
        del passes
    same_counts = cst.total_counts() == counts
    obj_bytes = sum(map(len, timed_frames))
    peak_col_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def us(seconds: float) -> float:
        return round(seconds / n * 1e6, 3)

    out = {
        "load_before": load_before,
        "events": n,
        "batch": BATCH,
        "devices": len(st.devices),
        "stores": len(st.stores),
        "changes": len(st.changes),
        "incidents": len(st.incidents),
        # the wall's path (columnar frames, negotiated in hello): the figures that count
        # the wall's path (columnar frames of BATCH events, as the hub's batch_events)
        "ratio": round(loads_s / col[BATCH]["steady"], 3),
        "events_per_s": round(n / col[BATCH]["steady"]),
        "ratio_new_connection": round(loads_s / col[BATCH]["new_connection"], 3),
        # frames of 4 x BATCH: what a columnar wall with a backlog gets from the hub
        "ratio_frames_of_4x": round(loads_s / col[4 * BATCH]["steady"], 3),
        "events_per_s_frames_of_4x": round(n / col[4 * BATCH]["steady"]),
        "columnar": {
            str(k): {
                "frames_bytes_vs_object_frames": round(col_bytes[k] / obj_bytes, 3),
                "us_per_event": {"decode_plus_apply": us(c["steady"]), "decode": us(c["decode"]),
                                 "apply": us(c["steady"] - c["decode"]),
                                 "new_connection_decode_plus_apply": us(c["new_connection"]),
                                 "sync_every_record_each_5_frames": us(c["sync"])},
                "ratio_with_sync": round(loads_s / (c["steady"] + c["sync"]), 3),
            } for k, c in col.items()},
        "columns_build_s": round(columns_build_s, 3),
        "same_status_counts_as_object_path": same_counts,
        "peak_rss_with_columnar_state_mb": round(peak_col_kb / 1024, 1),
        # the object path (events frames: replay connections, subscribers without it)
        "object_events_per_s": round(n / apply_s),
        "object_ratio": round((n / apply_s) / (n / loads_s), 3),
        "orjson_loads_per_s": round(n / loads_s),
        "decode_only_per_s": round(n / decode_s),
        "apply_only_per_s": round(n / in_apply_s),
        # CPU microseconds per event: isolated loops (hot caches) and the decode + apply
        # pipeline split into its three steps (second pass, same frames)
        "us_per_event": {
            "loads": us(loads_s), "decode": us(decode_s), "validate": us(decode_s - loads_s),
            "apply": us(in_apply_s), "decode_plus_apply": us(apply_s),
            "pipeline_loads": us(p_loads_s), "pipeline_validate": us(p_validate_s),
            "pipeline_apply": us(p_apply_s),
        },
        # bounds for the ratio (see the module docstring): loads + id lookup only, and
        # loads + a minimal apply (no validation, aggregates or dirty sets)
        "floor_lookup_ratio": round(floor_lookup_s and loads_s / floor_lookup_s, 3),
        "floor_minimal_apply_ratio": round(floor_minimal_s and loads_s / floor_minimal_s, 3),
        "floor": {
            "lookup_per_s": round(n / floor_lookup_s), "minimal_apply_per_s": round(n / floor_minimal_s),
            "us_per_event": {"loads_plus_lookup": us(floor_lookup_s), "loads_plus_minimal_apply": us(floor_minimal_s)},
        },
        "gc_frozen_objects": frozen,
        "setup_events_per_s": round((args.stores + args.devices) / setup_s),
        "snapshot_s": round(snapshot_s, 3),
        "from_snapshot_s": round(restore_s, 3),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "rss_state_loaded_mb": round(rss_now_mb, 1),
        "peak_rss_with_snapshot_mb": round(peak_snap_kb / 1024, 1),
        "status_counts": counts,
        "python": sys.version.split()[0],
        "targets": {"events_per_s": 1_000_000, "ratio": 0.6, "peak_rss_mb": 300},
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
