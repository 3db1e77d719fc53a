"""Incident notifications to chat robots, off the ingest path.

The hub calls :meth:`Notifier.observe` with every batch it applied to its state (on its
loop, after ``state.apply``). The notifier compares each touched incident's status with
the one it saw last and, for ``open`` / ``acknowledge`` / ``resolve`` transitions that
pass a sink's filter (``events``, ``min_severity``, ``scopes``), puts a
:class:`~wallboard.hub.sinks.messages.Notification` on that sink's bounded queue
(``put_nowait``: a full queue drops it and counts it, ingest never waits). One
:class:`SinkWorker` task per sink drains its queue: a token bucket (``rate_per_min``),
then the POST, retried ``retries`` times with exponential back-off (1 s, 2 s, 4 s ...
at most 60 s) when the answer says "later" (network error, 5xx, 429, a robot's rate
limit); an answer a resend cannot fix (bad token or signature) fails at once.

Each worker's :attr:`SinkWorker.health` counts sent / retried / failed / dropped and keeps
the last error, shown on the walls' status line and in ``/metrics``.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from wallboard.hub.budget import TokenBucket
from wallboard.hub.sources.config import SinkConfig
from wallboard.hub.sources.http_task import HttpTask

from . import robots
from .messages import Notification, render

if TYPE_CHECKING:  # pragma: no cover
    from wallboard.hub.server import Hub

log = logging.getLogger("wallboard.hub.sinks")

SEVERITY_RANK = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}
#: status an incident moves to -> the transition announced
TRANSITIONS = {"open": "open", "acknowledged": "acknowledge", "resolved": "resolve"}
MAX_BACKOFF_S = 60.0
#: First retry delay (doubled at each retry); tests make it short.
BACKOFF_S = 1.0


@dataclass
class SinkHealth:
    name: str
    sent: int = 0
    retried: int = 0
    failed: int = 0       # notifications given up on (after retries, or a permanent refusal)
    dropped: int = 0      # notifications not queued: the queue was full
    queued: int = 0
    ok: bool | None = None
    error: str = ""

    def notice(self) -> str | None:
        return None if self.ok is not False else f"sink {self.name} failing: {self.error}"


class SinkWorker(HttpTask):
    """One sink's queue and delivery task (see the module docs)."""

    def __init__(self, cfg: SinkConfig, *, backoff_s: float | None = None) -> None:
        self.cfg = cfg
        self.health = SinkHealth(cfg.name)
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(cfg.queue)
        burst = max(1.0, cfg.rate_per_min / 6)  # ten seconds' worth
        self.bucket = TokenBucket(cfg.rate_per_min / 60.0, burst)
        self.backoff_s = BACKOFF_S if backoff_s is None else backoff_s

    def wants(self, n: Notification, city_of: dict[str, str]) -> bool:
        """Whether this sink's filter lets ``n`` through (``city_of``: store id -> city id)."""
        cfg = self.cfg
        if n.kind not in cfg.events:
            return False
        if SEVERITY_RANK.get(n.severity, 4) > SEVERITY_RANK[cfg.min_severity]:
            return False
        if not cfg.scopes:
            return True
        stores = [str(s) for s in n.incident.get("stores") or []]
        mine = {f"store:{s}" for s in stores} | {f"city:{city_of[s]}" for s in stores if s in city_of}
        return bool(mine.intersection(cfg.scopes))

    def offer(self, n: Notification) -> bool:
        try:
            self.queue.put_nowait(n)
        except asyncio.QueueFull:
            self.health.dropped += 1
            return False
        self.health.queued += 1
        return True

    def start(self) -> None:
        self._start(self._run(), f"sink {self.cfg.name}")

    async def _run(self) -> None:
        self._open_session(self.cfg.timeout_s)
        while True:
            n = await self.queue.get()
            while not self.bucket.take(1):  # re-checked at least once a second
                await asyncio.sleep(min(1.0, max(0.05, self.bucket.retry_after(1))))
            try:
                await self.deliver(n)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug: keep the worker alive, say so
                log.exception("sink %s: delivery failed", self.cfg.name)
                self._failed(f"internal error: {type(e).__name__}: {e}")

    async def deliver(self, n: Notification) -> bool:
        """Post one notification, retrying as the module docs say; True once delivered."""
        import aiohttp

        title, text = render(n, self.cfg.lang)
        extra = {"kind": n.kind, "incident": {k: n.incident.get(k) for k in
                                             ("id", "title", "severity", "status", "stores", "owner")}}
        why = ""
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self.health.retried += 1
                delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1))
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            # signed again at every attempt: DingTalk refuses a timestamp over an hour old
            url, body = robots.request(self.cfg.kind, self.cfg.url, title, text, secret=self.cfg.secret, extra=extra)
            try:
                async with self._session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                    verdict, why = robots.verdict(self.cfg.kind, resp.status, await resp.read())
            except asyncio.TimeoutError:
                verdict, why = "retry", f"no answer within {self.cfg.timeout_s:g} s"
            except aiohttp.ClientError as e:
                verdict, why = "retry", f"{type(e).__name__}: {e}"
            if verdict == "ok":
                if self.health.ok is False:
                    log.info("sink %s: delivering again", self.cfg.name)
                self.health.sent += 1
                self.health.ok, self.health.error = True, ""
                return True
            if verdict == "fail":
                break
        self._failed(why)
        return False

    def _failed(self, why: str) -> None:
        h = self.health
        if h.error != why:
            log.warning("sink %s: notification not delivered: %s", self.cfg.name, why)
        h.failed += 1
        h.ok, h.error = False, why[:240]


class Notifier:
    """Watches incident transitions in applied batches and hands them to the sinks."""

    def __init__(self, hub: "Hub", sinks: Iterable[SinkConfig], *, backoff_s: float | None = None) -> None:
        self.hub = hub
        self.workers = [SinkWorker(c, backoff_s=backoff_s) for c in sinks]
        self.seen: dict[str, str] = {}   # incident id -> status last seen

    def start(self) -> None:
        # incidents already in the state (from the journal) are not news
        self.seen = {iid: str(rec.get("status")) for iid, rec in self.hub.state.incidents.items()}
        for w in self.workers:
            w.start()

    async def stop(self) -> None:
        for w in self.workers:
            await w.stop()

    def observe(self, events: list[dict[str, Any]]) -> None:
        """After ``state.apply(events)``: queue the transitions (cheap when none)."""
        if not self.workers:
            return
        incidents = self.hub.state.incidents
        for ev in events:
            if ev.get("type") != "incident":
                continue
            iid = ev.get("id")
            rec = incidents.get(iid)
            if rec is None:  # deleted (or evicted)
                self.seen.pop(iid, None)
                continue
            status = str(rec.get("status"))
            before = self.seen.get(iid)
            self.seen[iid] = status
            kind = TRANSITIONS.get(status)
            if kind is None or status == before or (kind == "open" and before == "acknowledged"):
                continue
            if before is None and kind != "open":
                continue  # first heard of already acknowledged / resolved: nothing was announced
            self._announce(kind, dict(rec))
        if len(self.seen) > 4 * max(1, len(incidents)) + 1000:  # forget incidents the state dropped
            self.seen = {k: v for k, v in self.seen.items() if k in incidents}

    def _announce(self, kind: str, rec: dict[str, Any]) -> None:
        stores = self.hub.state.stores
        city_of: dict[str, str] = {}
        for s in rec.get("stores") or []:
            city = (stores.get(s) or {}).get("city")
            if isinstance(city, dict) and city.get("id"):
                city_of[s] = str(city["id"])
        for w in self.workers:
            names = {s: str((stores.get(s) or {}).get("name" if w.cfg.lang == "zh" else "name_en")
                            or (stores.get(s) or {}).get("name") or s) for s in rec.get("stores") or []}
            n = Notification(kind, rec, names, time.time())
            if w.wants(n, city_of) and not w.offer(n):
                self.hub.count("notifications_dropped")

    def notices(self) -> list[dict[str, str]]:
        return [{"kind": "sink", "name": w.health.name, "error": w.health.error}
                for w in self.workers if w.health.ok is False]


__all__ = ["Notifier", "SinkWorker", "SinkHealth", "TRANSITIONS"]
