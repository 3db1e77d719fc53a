"""The wall's own health: frames, paints, feed; the status file; the systemd watchdog.

:class:`HealthMonitor` watches a :class:`~wallboard.app.controller.WallController`: every
frame (a frame observer) it records the frame's time, and every paint of a wall window (the
window's ``UpdateRequest``, which Qt sends to a top-level window before it repaints any of
its widgets) the paint's time. Once a second it rewrites the ``--status-file`` (JSON,
atomically: a temporary file in the same directory, then ``os.replace``), see
:meth:`HealthMonitor.status` for the keys. With ``NOTIFY_SOCKET`` set (a systemd unit with
``Type=notify``), it sends ``READY=1`` after the first paint and ``WATCHDOG=1`` from the
frame loop while windows keep painting, so a frozen UI is restarted.

Create it after the controller, call :meth:`start`; :meth:`stop` on the way out.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer

from wallboard import __version__
from wallboard.app.watchdog import SdNotify

log = logging.getLogger(__name__)

#: WATCHDOG=1 is withheld when no wall window painted for this long while one is exposed
#: (the frame loop runs but the picture is stuck): systemd then restarts the wall.
PAINT_STALL_S = 15.0
STORES_LISTED = 50        # per window, in ``stores_on_screen``
STORES_CHECKED = 500      # markers looked at per map and second (bounds the cost on big chains)


class HealthMonitor(QObject):
    """Measures the wall and reports it (status file, sd_notify)."""

    def __init__(self, ctl: Any, *, status_path: str | None = None, hub_url: str = "",
                 notifier: SdNotify | None = None, interval_s: float = 1.0) -> None:
        super().__init__()
        self.ctl = ctl
        self.status_path = Path(status_path) if status_path else None
        self.hub_url = hub_url
        self.notify = notifier if notifier is not None else SdNotify()
        self.started = time.time()
        self.frames: deque[float] = deque(maxlen=600)     # perf_counter at each frame's end
        self.paints: deque[float] = deque(maxlen=600)
        self.last_paint = 0.0                             # wall-clock time of the last paint
        self.ready_sent = False
        self.write_errors = 0
        self.last_write_error = ""
        self._last_ping = 0.0
        self._filtered: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(int(interval_s * 1000))
        self._timer.timeout.connect(self.tick)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.ctl.frame_observers.append(self._on_frame)
        self._watch_windows()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        if self._on_frame in self.ctl.frame_observers:
            self.ctl.frame_observers.remove(self._on_frame)
        if self.notify.enabled:
            self.notify.send("STOPPING=1")
        self.notify.close()

    # ------------------------------------------------------------------ events
    def _watch_windows(self) -> None:
        for w in self.ctl.windows:
            if id(w) not in self._filtered:
                w.installEventFilter(self)
                self._filtered.add(id(w))
                w.destroyed.connect(lambda *_a, k=id(w): self._filtered.discard(k))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.UpdateRequest:
            self.paints.append(time.perf_counter())
            self.last_paint = time.time()
            if not self.ready_sent and self.notify.enabled:
                self.ready_sent = self.notify.send("READY=1", f"STATUS={self._summary()}")
        return False

    def _on_frame(self, _batches, _dirty, _now) -> None:
        t = time.perf_counter()
        self.frames.append(t)
        self._ping(t)

    def _ping(self, t: float) -> None:
        """WATCHDOG=1 at most every half interval (or every second), while painting."""
        if not self.notify.enabled or not self.ready_sent:
            return
        every = min(1.0, (self.notify.watchdog_s or 2.0) / 2)
        if t - self._last_ping < every:
            return
        if self.paint_stalled():
            return
        self._last_ping = t
        self.notify.send("WATCHDOG=1")

    def paint_stalled(self) -> bool:
        """True when a wall window is exposed but nothing painted for PAINT_STALL_S."""
        if not self.paints or time.perf_counter() - self.paints[-1] <= PAINT_STALL_S:
            return False
        return any(w.windowHandle() is not None and w.windowHandle().isExposed() for w in self.ctl.windows)

    # ------------------------------------------------------------------ once a second
    def tick(self) -> None:
        self._watch_windows()
        if self.status_path is not None:
            self.write(self.status_path)
        if self.notify.enabled and self.ready_sent:
            self.notify.send(f"STATUS={self._summary()}")

    def write(self, path: Path) -> bool:
        """Rewrite ``path`` atomically with :meth:`status`; a failure is counted and logged
        once (the wall keeps running)."""
        data = json.dumps(self.status(), ensure_ascii=False, indent=1)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            self.write_errors += 1
            if not self.last_write_error:
                log.warning("--status-file %s: %s", path, e.strerror or e)
            self.last_write_error = f"{e.strerror or e}"
            return False
        return True

    @staticmethod
    def _rate(times: deque, now: float, span: float = 2.0) -> float:
        recent = [t for t in times if now - t <= span]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(1e-6, recent[-1] - recent[0])

    def frame_p95_ms(self, span: float = 10.0) -> float | None:
        """95th percentile of the time between frames over the last ``span`` seconds (a
        stall shows here as one long frame)."""
        now = time.perf_counter()
        recent = [t for t in self.frames if now - t <= span]
        gaps = sorted(b - a for a, b in zip(recent, recent[1:]))
        if not gaps:
            return None
        return round(gaps[min(len(gaps) - 1, int(0.95 * len(gaps)))] * 1000, 1)

    def _summary(self) -> str:
        st = self.ctl._feed_status()
        state = getattr(st, "state", "CONNECTING") if st is not None else "CONNECTING"
        if self.ctl.stale and state == "LIVE":
            state = "STALE"
        fps = self._rate(self.frames, time.perf_counter())
        return f"{state} seq {self.ctl.state.seq} · layout {self.ctl.layout.name} · {fps:.0f} frames/s"

    def status(self) -> dict:
        """The status file's object: ``written_at``, ``pid``, ``version``, ``uptime_s``,
        ``feed`` (state, hub, seq, data_age_s, events_per_s, rejects), ``frames_per_s``,
        ``frame_p95_ms`` (time between frames, last 10 s), ``last_frame_work_ms``,
        ``paints_per_s``, ``last_paint`` (epoch s) and ``last_paint_age_s``, ``layout``
        (name, path, error), ``windows`` (title, native window id, layout screen, monitor, mode, geometry, page,
        auto-focus, store markers on screen with their global position), ``monitors``, ``cursor_hidden``
        (kiosk), ``rss_kb``,
        ``watchdog`` (enabled, sent, errors)."""
        now_wall = time.time()
        now = time.perf_counter()
        ctl = self.ctl
        st = ctl._feed_status()
        state = getattr(st, "state", "CONNECTING") if st is not None else "CONNECTING"
        if ctl.stale and state == "LIVE":
            state = "STALE"
        rejects = getattr(st, "rejects", 0) or 0
        if isinstance(rejects, dict):
            rejects = sum(rejects.values())
        age = ctl.state.feed_age(now_wall)
        from wallboard.app.screens import qt_monitors

        mons, _ = qt_monitors()
        return {
            "written_at": round(now_wall, 3),
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(now_wall - self.started, 1),
            "feed": {"state": state, "hub": self.hub_url, "seq": int(ctl.state.seq),
                     "data_age_s": None if age is None else round(age, 2),
                     "events_per_s": round(ctl.driver.stats.events_per_s(now_wall), 1),
                     "rejects": int(rejects) + ctl.driver.stats.rejects},
            "frames_per_s": round(self._rate(self.frames, now), 1),
            "frame_p95_ms": self.frame_p95_ms(),
            "last_frame_work_ms": round(ctl.driver.stats.last_frame_ms, 2),
            "paints_per_s": round(self._rate(self.paints, now), 1),
            "last_paint": round(self.last_paint, 3) if self.last_paint else None,
            "last_paint_age_s": round(now_wall - self.last_paint, 2) if self.last_paint else None,
            "layout": {"name": ctl.layout.name, "path": ctl.layout.path, "error": ctl.layout_error},
            "windows": [self._window(i, w) for i, w in enumerate(ctl.windows)],
            "monitors": [m.as_dict() for m in mons],
            "cursor_hidden": getattr(getattr(ctl, "placer", None), "cursor_hidden", None),
            "rss_kb": _rss_kb(),
            "watchdog": {"enabled": self.notify.enabled, "interval_s": self.notify.watchdog_s,
                         "sent": self.notify.sent, "errors": self.notify.errors},
        }

    def _window(self, i: int, w: Any) -> dict:
        p = getattr(w, "placement", None)
        g = w.frameGeometry()
        page = w.current_page()
        return {
            "index": i, "title": w.windowTitle(), "window_id": hex(int(w.winId())), "visible": w.isVisible(), "fullscreen": w.isFullScreen(),
            "layout_screen": p.layout_screen if p else None,
            "monitor": p.monitor.name if p else None, "monitor_index": p.monitor.index if p else None,
            "mode": p.mode if p else None, "planned_geometry": list(p.geometry) if p else None,
            "note": p.note if p else "",
            "geometry": [g.x(), g.y(), g.width(), g.height()],
            "page": page.title if page is not None else None,
            "drill_depth": len(w.drill), "overlay": w.overlay is not None,
            "auto_focus": _focus(w),
            "stores_on_screen": stores_on_screen(w),
        }


def _focus(w: Any) -> dict | None:
    """The layout rule's focus on a window: incident, severity, rule, since (epoch s)."""
    f = getattr(w, "auto_focus", None)
    if f is None:
        return None
    return {"incident": f.incident.id, "severity": f.incident.severity, "rule": f.rule.name,
            "since": round(f.started, 3), "until": None if f.until is None else round(f.until, 3)}


def stores_on_screen(w: Any, limit: int = STORES_LISTED) -> list[dict]:
    """Store markers visible on a window's current page, with their centre in global
    (X root) coordinates: what a click at that point opens. Clustered maps list none."""
    page = w.current_page()
    out: list[dict] = []
    if page is None:
        return out
    for panel in page.panels:
        wgt = getattr(panel, "widget", None)
        if wgt is None or not hasattr(wgt, "marker_pos") or getattr(wgt, "clustered", True):
            continue
        if not wgt.isVisible():
            continue
        view = wgt.view
        rect = view.rect()
        for sid in list(getattr(wgt.state, "stores", {}) or {})[:STORES_CHECKED]:
            try:
                pt = wgt.marker_pos(sid)
            except (KeyError, IndexError):
                continue
            if not rect.contains(pt):
                continue
            g = view.mapToGlobal(pt)
            out.append({"id": sid, "x": g.x(), "y": g.y()})
            if len(out) >= limit:
                return out
    return out


def _rss_kb() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return None
