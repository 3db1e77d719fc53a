"""``wallboard --replay TAPE --screenshot-every SECONDS OUTDIR``: a postmortem picture series.

A tape is what ``wallboard record`` writes (``--from``/``--to``: the state at the start
as one ``{"op":"snapshot","seq":N,"data":{...}}`` line, then one event per line, each
with the ``seq`` and the ``ts`` the hub gave it). It is played with no hub: the wall
opens its layout, puts its first window in REPLAY (the same frame, header and panels as
a live REPLAY) fed by the tape, and writes one PNG every ``SECONDS`` of tape time, from
the snapshot's moment to the first at or after the last event's, named ``0001-093105.png`` (number, tape time).
Tape time is the hub's: events are applied at their ``ts`` (a second at a time), and
the wall's "now" (ages, TTLs, the header's clock) is the tape's clock.

:func:`load_tape` raises :class:`TapeError` with the file, the line and what is wrong.
"""
from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wallboard import protocol as P
from wallboard.hub.record import tape_objects
from wallboard.state import Dirty

#: Events are applied this many seconds of tape time at a time (their ``now``).
APPLY_STEP_S = 1.0


class TapeError(ValueError):
    """A tape that cannot be played: the message names the file and line."""


@dataclass
class Tape:
    path: str
    snapshot: dict[str, Any] | None
    #: (ts, line number, event), in seq order
    events: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0


def load_tape(path: Path | str) -> Tape:
    """Read and check a tape (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise TapeError(f"{p}: no such file (a tape from 'wallboard record --from T1 --to T2 --out FILE')")
    if p.is_dir():
        raise TapeError(f"{p}: is a directory, not a tape")
    tape = Tape(str(p), None)
    try:
        fh = p.open("rb")
    except OSError as e:
        raise TapeError(f"{p}: {e.strerror or e}") from None
    with fh:
        try:
            for n, obj in tape_objects(fh, p):
                _take(tape, n, obj)
        except TapeError:
            raise
        except ValueError as e:            # not JSON, not an object: the line is named
            raise TapeError(str(e)) from None
    if tape.snapshot is None and not tape.events:
        raise TapeError(f"{p}: empty: no snapshot line and no events")
    tape.start = float(tape.snapshot["clock"]) if tape.snapshot is not None else tape.events[0][0]
    tape.end = max([tape.start] + [ts for ts, _, _ in tape.events])
    return tape


def _take(tape: Tape, n: int, obj: dict[str, Any]) -> None:
    """One line of a tape: its snapshot, or an event (validated, seqs contiguous)."""
    p, events = tape.path, tape.events
    if obj.get("op") == "snapshot":
        if tape.snapshot is not None or events:
            raise TapeError(f"{p}:{n}: a second snapshot line: a tape has one, first "
                            f"(record a range with 'wallboard record --from --to')")
        data, seq = obj.get("data"), obj.get("seq")
        if not isinstance(data, dict) or type(seq) is not int or seq < 0:
            raise TapeError(f"{p}:{n}: a snapshot line needs 'seq' (an integer >= 0) and 'data' (an object)")
        if not isinstance(data.get("clock"), (int, float)):
            raise TapeError(f"{p}:{n}: the snapshot's data has no 'clock' (the moment it shows)")
        tape.snapshot = {**data, "seq": seq}
        return
    try:
        ev = P.validate_event(obj, require_seq=tape.snapshot is not None, op="replay")
    except P.ProtocolError as e:
        raise TapeError(f"{p}:{n}: {e}") from None
    if tape.snapshot is None:             # no opening state: the events numbered from 1
        ev["seq"] = len(events) + 1
    else:
        expect = (events[-1][2]["seq"] if events else tape.snapshot["seq"]) + 1
        if ev["seq"] != expect:
            raise TapeError(f"{p}:{n}: seq {ev['seq']} where {expect} was expected: the tape has a gap")
    events.append((float(ev["ts"]), n, ev))   # ts: required by the validator (the hub's time)


class TapeClient:
    """A replay client fed by a tape (``WindowReplay``'s interface): :meth:`advance` moves
    its clock and queues what the tape holds up to there."""

    validated = True        # load_tape validated every event

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.at = tape.start
        self.speed = 1.0
        self._q: list[tuple[str, Any]] = []
        self._next = 0
        self._ts = [ts for ts, _, _ in tape.events]
        if tape.snapshot is not None:
            self._q.append(("snapshot", tape.snapshot))
        self.resyncs = 0

    def advance(self, t: float) -> None:
        self.at = t
        stop = bisect.bisect_right(self._ts, t, lo=self._next)
        if stop > self._next:
            self._q.append(("events", [ev for _, _, ev in self.tape.events[self._next:stop]]))
            self._next = stop

    # -- the replay client's interface ----------------------------------------------------
    def replay_clock(self) -> float:
        return self.at

    def drain(self, n: int) -> list[tuple[str, Any]]:
        out, self._q = self._q[:n], self._q[n:]
        return out

    def resync(self, since: int | None) -> None:
        self.resyncs += 1          # cannot happen with a checked tape; counted if it does

    def start(self) -> None:
        pass

    def stop(self, timeout: float | None = None) -> None:
        pass

    def seek(self, at: float) -> None:
        pass

    def set_speed(self, x: float) -> None:
        pass


class _NoFeed:
    """The live side of a tape wall: nothing (the tape is the replay)."""

    urls: tuple = ()

    def drain(self, n: int) -> list:
        return []

    def resync(self, since: int | None) -> None:
        pass


def screenshot_series(tape: Tape, every_s: float, out_dir: Path | str, layout: Any, *, lang: str = "en",
                      size: tuple[int, int] = (1920, 1080), layout_dirs: list[Path] | None = None) -> list[Path]:
    """Play ``tape`` on ``layout`` and write a PNG every ``every_s`` seconds of tape time."""
    from PySide6.QtWidgets import QApplication

    from wallboard.app.controller import WallController
    from wallboard.state import LiveState

    if not every_s > 0:
        raise TapeError(f"--screenshot-every {every_s!r}: expected seconds > 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    client = TapeClient(tape)
    app = QApplication.instance()
    ctl = WallController(LiveState(), _NoFeed(), layout, lang=lang, size=size, muted=True,
                         layout_dirs=layout_dirs, clock=client.replay_clock)
    ctl.rewind.client_factory = lambda at, speed: client
    written: list[Path] = []
    try:
        ctl.start()
        ctl.timer.stop()                       # the tape's clock drives the frames, not a timer
        w = ctl.windows[0]
        if not ctl.rewind.start(w, tape.start, 1.0, sync=True):
            raise TapeError(f"{tape.path}: could not start REPLAY: {ctl.rewind.error}")
        replay = w.replay
        # from the start to the first shot at or after the last event (it shows on the last)
        n_shots = math.ceil((tape.end - tape.start) / every_s - 1e-9) + 1
        t = tape.start
        dirty = Dirty.everything()
        for i in range(n_shots):
            shot_at = tape.start + i * every_s
            while True:                         # apply up to the shot, a second at a time
                t = min(shot_at, t + APPLY_STEP_S) if t < shot_at else shot_at
                client.advance(t)
                for _ in range(10_000):         # bounded: a tape's events queue in few items
                    dirty.merge(replay.driver.step())
                    if not client._q and not replay.driver._pending:
                        break
                if t >= shot_at:
                    break
            replay.page.refresh(dirty, t)
            dirty = Dirty()
            ctl._second(t)
            if app is not None:
                app.processEvents()
            name = out / f"{i + 1:04d}-{time.strftime('%H%M%S', time.localtime(t))}.png"
            if not w.grab().save(str(name)):
                raise TapeError(f"{name}: could not write the PNG")
            written.append(name)
    finally:
        ctl.shutdown()
    return written


__all__ = ["Tape", "TapeClient", "TapeError", "load_tape", "screenshot_series"]
