"""A stateful model of the log (hypothesis RuleBasedStateMachine): appends, resends,
reuse of a key with other content, restart, kill (the object dropped without close),
compaction and injected disk errors. After every step: every acked batch is in the log
once, with the range it was acked with; nothing unacked was ever reported as a duplicate."""
from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wallboard.hub.batches import Appended, Batch, BatchRefused, JournalUnavailable, batch_digest
from wallboard.hub.journal import SqliteJournal


class DiskFull:
    """Stands in for the journal's connection: every write fails as a full disk does."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith(("INSERT", "COMMIT")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="wb-log-model-"))
        self.path = self.dir / "j.db"
        self.j = SqliteJournal(self.path)
        self.zombies: list[sqlite3.Connection] = []
        self.counter = 0
        self.acked: dict[tuple[str, int], tuple[tuple[int, int], list[float]]] = {}
        self.unacked: dict[tuple[str, int], list[float]] = {}   # sent, never acked
        self.compacted_to = 0

    def events(self, n: int) -> list[dict]:
        out = []
        for _ in range(n):
            self.counter += 1
            out.append({"type": "kpi", "metric": "m", "scope": "global", "value": float(self.counter), "ts": 1.0})
        return out

    def send(self, batches: list[tuple[tuple[str, int], list[dict]]], fail: bool) -> None:
        real = self.j._db
        if fail:
            self.j._db = DiskFull(real)  # type: ignore[assignment]
        try:
            done = self.j.append([Batch([dict(e) for e in evs], k[0], k[1], batch_digest(evs)) for k, evs in batches])
        except JournalUnavailable:
            assert fail
            for k, evs in batches:
                if k not in self.acked:
                    self.unacked[k] = [e["value"] for e in evs]
            return
        finally:
            self.j._db = real
        assert not fail or not done.rows  # a failing disk committed nothing
        for (k, evs), outcome in zip(batches, done.outcomes):
            values = [e["value"] for e in evs]
            if k in self.acked:
                rng, was = self.acked[k]
                if values == was:
                    assert isinstance(outcome, Appended) and outcome.duplicate and outcome.range == rng
                else:
                    assert isinstance(outcome, BatchRefused) and outcome.code == "conflict"
            else:
                assert isinstance(outcome, Appended) and not outcome.duplicate, "unacked reported as duplicate"
                assert outcome.last - outcome.first + 1 == len(evs)
                self.acked[k] = (outcome.range, values)
                self.unacked.pop(k, None)

    @rule(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4), fail=st.booleans())
    def append_new(self, sizes: list[int], fail: bool) -> None:
        batches = []
        for n in sizes:
            self.counter += 1
            batches.append((("p", self.counter), self.events(n)))
        self.send(batches, fail and len(self.acked) % 3 == 0)

    @precondition(lambda self: self.acked or self.unacked)
    @rule(data=st.data(), fail=st.booleans())
    def resend(self, data: st.DataObject, fail: bool) -> None:
        keys = sorted(self.acked) + sorted(self.unacked)
        k = data.draw(st.sampled_from(keys))
        values = self.acked[k][1] if k in self.acked else self.unacked[k]
        evs = [{"type": "kpi", "metric": "m", "scope": "global", "value": v, "ts": 1.0} for v in values]
        self.send([(k, evs)], fail)

    @precondition(lambda self: self.acked)
    @rule(data=st.data())
    def reuse_key_with_other_content(self, data: st.DataObject) -> None:
        k = data.draw(st.sampled_from(sorted(self.acked)))
        self.send([(k, self.events(1))], False)

    @rule()
    def restart(self) -> None:
        self.j.close()
        self.j = SqliteJournal(self.path)

    @rule()
    def kill(self) -> None:
        """As kill -9: no close, no checkpoint; the kernel drops the process's lock."""
        self.zombies.append(self.j._db)
        self.j._sidecar.release()
        self.j = SqliteJournal(self.path)

    @precondition(lambda self: self.j.last_seq > 0)
    @rule(keep=st.integers(0, 5))
    def compact(self, keep: int) -> None:
        seq = self.j.last_seq
        self.j.compact(seq, {"seq": seq}, keep)
        self.compacted_to = max(self.compacted_to, seq - keep)

    @invariant()
    def every_acked_batch_is_in_the_log_once_with_its_range(self) -> None:
        j = self.j
        seen: dict[int, float] = {}
        for (first, last), values in self.acked.values():
            for s, v in zip(range(first, last + 1), values):
                assert s not in seen, f"seq {s} acked twice"
                seen[s] = v
        assert j.last_seq == len(seen) and sorted(seen) == list(range(1, len(seen) + 1))
        kept = j.read(j.first_kept - 1, 10_000) if j.first_kept <= j.last_seq else []
        assert [e["seq"] for e in kept] == list(range(j.first_kept, j.last_seq + 1))
        assert all(seen[e["seq"]] == e["value"] for e in kept)
        for k, (rng, _) in self.acked.items():
            assert j.batch_range(*k) == rng
        for k in self.unacked:
            assert j.batch_range(*k) is None

    def teardown(self) -> None:
        self.j.close()
        for db in self.zombies:
            db.close()
        shutil.rmtree(self.dir, ignore_errors=True)


LogModel.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
test_log_model = LogModel.TestCase
