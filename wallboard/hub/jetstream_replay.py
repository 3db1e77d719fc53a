"""The flight recorder on a JetStream log: snapshots kept for replays, found by seq.

A replay (``hello`` with ``at``, :mod:`wallboard.hub.replay`) needs the state at a moment
T: the newest snapshot at or before it + the events after it committed by T. On a
JetStream log (docs/architecture.md, "Replays on a JetStream log"):

* **commit times** are the records' header ``at`` (the appending hub's clock at publish),
  made non-decreasing in stream order by every follower (each is the ``max`` of its own
  and the one before), so every hub orders the moments of one stream alike; the moment of
  a record older than what a hub has followed is found by a binary search of the stream.
* **snapshots for replays** go to a second stream, ``<STREAM>_replay`` (file storage, the
  log's replicas; no ``max_bytes``, which JetStream would reserve on the server's disk up
  front: the hub thins them past the byte budget itself): one snapshot is its
  zlib-compressed JSON in chunks on ``wallboard.<STREAM>.replay.data`` (each under the
  server's ``max_payload``), then one small index message on
  ``wallboard.<STREAM>.replay.idx``: ``{"seq", "at", "parts": [stream seqs], "size",
  "epoch"}``, published last (an index message exists only once its chunks do). Every hub
  follows the index subject with an ordered consumer, so it knows every replay snapshot
  (its own and the other hubs'), and stores none within ``min_gap`` events of one it
  knows. Past the budget they are thinned evenly like the SQLite journal's (the oldest and
  the newest stay; the one whose neighbours are closest goes: its messages are deleted);
  compaction purges the stream below the snapshot the first kept event needs. A
  snapshot whose chunks are gone (another hub purged) is skipped for an older one. When
  the stream cannot be made (``down``), the log works on and replays rebuild from the
  start of the log, or say the moment is no longer held.

Everything here runs on the hub's event loop; the decoding (zlib, JSON) is the caller's,
in its worker thread (:meth:`JetStreamJournal.history`).
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import zlib
from typing import Any

import orjson

from .journal import CODEC_ZLIB, decode_snapshot_blob, thinnest

log = logging.getLogger("wallboard.hub.jetstream")

#: zlib level of a replay snapshot (level 1: ~50 ms and ~17x on a 100,000-device state).
ZLIB_LEVEL = 1
#: Bytes left under ``max_payload`` in a chunk (headers, protocol framing).
CHUNK_MARGIN = 4096

#: (seq, at, stream seqs of the chunks, compressed bytes, stream seq of the index message)
Entry = tuple[int, float, tuple[int, ...], int, int]


class ReplaySnapshots:
    """The ``<STREAM>_replay`` stream of one :class:`~wallboard.hub.jetstream.JetStreamJournal`."""

    def __init__(self, stream: str, budget: int, replicas: int) -> None:
        self.stream = f"{stream}_replay"
        self.idx_subject = f"wallboard.{stream}.replay.idx"
        self.data_subject = f"wallboard.{stream}.replay.data"
        self.budget = budget
        self.replicas = replicas
        self.entries: list[Entry] = []      # by seq
        self.epoch = ""
        self.stored = 0
        self.skipped = 0                     # another hub's snapshot was close enough
        self.thinned = 0                     # dropped past the budget
        self.missing = 0                     # chunks gone (purged by another hub): an older one served
        self.down: str | None = None         # why the stream is not there (replays without snapshots)
        self._js: Any = None
        self._sub: Any = None

    async def start(self, js: Any, epoch: str) -> None:
        """Create the stream if missing and follow its index from the start."""
        from nats.js import api
        from nats.js.errors import NotFoundError

        self._js, self.epoch = js, epoch
        try:
            try:
                info = await js.stream_info(self.stream)
                if not (info.config.description or "").endswith(f"epoch {epoch}"):
                    # the log was made anew (a new epoch): the old replay snapshots show another history
                    await js.purge_stream(self.stream)
                    info.config.description = f"wallboard replay snapshots, epoch {epoch}"
                    await js.update_stream(info.config)
                    log.warning("replay snapshots: %s held another epoch's snapshots: purged", self.stream)
            except NotFoundError:
                cfg = api.StreamConfig(
                    name=self.stream, subjects=[self.idx_subject, self.data_subject],
                    description=f"wallboard replay snapshots, epoch {epoch}", retention=api.RetentionPolicy.LIMITS,
                    storage=api.StorageType.FILE, num_replicas=self.replicas)
                try:
                    await js.add_stream(cfg)
                except Exception:   # another hub created it meanwhile (else: this raises too)
                    await js.stream_info(self.stream)
            cfg = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL, filter_subject=self.idx_subject)
            self._sub = await js.subscribe(self.idx_subject, stream=self.stream, cb=self._on_idx,
                                           ordered_consumer=True, config=cfg, idle_heartbeat=2.0,
                                           pending_msgs_limit=-1, pending_bytes_limit=-1)
        except Exception as e:
            self.down = f"{type(e).__name__}: {e}"
            log.warning("replay snapshots: stream %s unavailable (%s); replays rebuild from the log's start",
                        self.stream, self.down)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await asyncio.wait_for(self._sub.unsubscribe(), 2)
            except Exception as e:
                log.debug("replay snapshots: unsubscribe: %s", e)
            self._sub = None

    async def _on_idx(self, msg: Any) -> None:
        try:
            meta = orjson.loads(msg.data)
            entry = (int(meta["seq"]), float(meta["at"]), tuple(int(p) for p in meta["parts"]), int(meta["size"]),
                     int(msg.metadata.sequence.stream))
        except Exception as e:
            log.error("replay snapshots: index message %s is not one (%s): skipped", msg.metadata.sequence.stream, e)
            return
        if meta.get("epoch") != self.epoch or not entry[2]:
            return
        i = bisect.bisect_left(self.entries, entry)
        if i == len(self.entries) or self.entries[i] != entry:
            self.entries.insert(i, entry)

    def near(self, seq: int, gap: int) -> bool:
        """A replay snapshot is known within ``gap`` events before or at ``seq``."""
        i = bisect.bisect_right(self.entries, (seq, float("inf"))) - 1
        return i >= 0 and seq - self.entries[i][0] < gap

    async def put(self, seq: int, at: float, blob: bytes, max_payload: int, min_gap: int) -> bool:
        """Store the snapshot JSON ``blob`` at ``seq`` (commit time ``at``) unless one is
        known within ``min_gap`` events; returns whether it was stored."""
        if self.down is not None:
            return False
        if self.near(seq, min_gap):
            self.skipped += 1
            return False
        packed = await asyncio.to_thread(zlib.compress, blob, ZLIB_LEVEL)   # not on the loop
        step = max(1024, max_payload - CHUNK_MARGIN)
        parts = []
        for i in range(0, len(packed), step):
            ack = await self._js.publish(self.data_subject, packed[i:i + step], stream=self.stream)
            parts.append(ack.seq)
        ack = await self._js.publish(self.idx_subject, orjson.dumps({"seq": seq, "at": at, "parts": parts,
                                                                     "size": len(packed), "epoch": self.epoch}),
                                     stream=self.stream)
        entry = (seq, at, tuple(parts), len(packed), ack.seq)
        i = bisect.bisect_left(self.entries, entry)
        if i == len(self.entries) or self.entries[i] != entry:
            self.entries.insert(i, entry)     # known at once (the index consumer brings it again)
        self.stored += 1
        total = sum(e[3] for e in self.entries)
        while total > self.budget and len(self.entries) > 2:
            gone = self.entries.pop(thinnest([e[0] for e in self.entries]))
            total -= gone[3]
            self.thinned += 1
            for sseq in (gone[4], *gone[2]):   # the index message first: it no longer exists
                try:
                    await self._js.delete_msg(self.stream, sseq)
                except Exception as e:         # already gone (another hub thinned it)
                    log.debug("replay snapshots: delete %d: %s", sseq, e)
        return True

    async def fetch(self, target: int) -> tuple[int, bytes] | None:
        """``(seq, compressed JSON)`` of the newest replay snapshot at or before event
        ``target`` whose chunks the stream still holds; None when there is none."""
        from nats.js.errors import NotFoundError

        i = bisect.bisect_right(self.entries, (target, float("inf"))) - 1
        while i >= 0 and self.down is None:
            seq, parts = self.entries[i][0], self.entries[i][2]
            try:
                chunks = [(await self._js.get_msg(self.stream, p)).data or b"" for p in parts]
                return seq, b"".join(chunks)
            except NotFoundError:
                self.missing += 1
                log.warning("replay snapshots: the snapshot at seq %d is gone from %s; an older one serves", seq,
                            self.stream)
                del self.entries[i]
                i -= 1
        return None

    async def purge_below(self, first_kept: int) -> None:
        """Drop the replay snapshots no kept event needs: all before the newest one at or
        before ``first_kept - 1``."""
        i = bisect.bisect_right(self.entries, (first_kept - 1, float("inf"))) - 1
        if i <= 0 or self.down is not None:
            return
        cut = min(self.entries[i][2])
        await self._js.purge_stream(self.stream, seq=cut)
        del self.entries[:i]


def decode(blob: bytes, where: str) -> dict[str, Any]:
    """The snapshot dict of a replay snapshot's compressed JSON; ``RuntimeError`` naming
    ``where`` when it does not decode."""
    data = decode_snapshot_blob(blob, CODEC_ZLIB, where)
    try:
        return orjson.loads(data)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError as e:
        raise RuntimeError(f"{where}: replay snapshot is not JSON ({e}); the stream is damaged") from None


__all__ = ["ReplaySnapshots", "decode"]
