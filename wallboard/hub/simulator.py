"""Demo simulator: scenarios as data files (``scenarios/*.toml``), deterministic by seed.

A :class:`Simulator` turns a scenario into events::

    sim = Simulator(load_scenario("launch-928"), seed=928, speed=1.0)
    events = sim.advance(0.1)     # what happened in the next 0.1 real seconds

At t = 0 every store and device exists (devices may still be provisioning), KPIs and
voice flow continuously, the story's beats (``[[beats]]`` in the file, in story seconds,
divided by ``speed`` to get real seconds) play over minutes, and afterwards the scenario
keeps living: from ``living_start`` on, every ``living_every`` story seconds one of its
``[[living]]`` episodes (small stories: a change, a fault, an incident, its recovery) plays
on stores picked by the seeded RNG, with ``$n`` (the episode number), ``$store``,
``$store2``, ``$city``, ``$store_en`` (its English name) filled in, for as long as it runs. Event timestamps are real wall-clock times (``t0`` + elapsed real
seconds), so the wall's age displays make sense. Same scenario + seed + ``t0`` + the
same sequence of ``advance`` steps give the same events.

Drive it with :func:`run_in_hub` (in-process, the hub's own ingest) or
:func:`run_to_url` (a producer on ``/publish``).
"""
from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("wallboard.hub.simulator")

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIOS = ("launch-928", "double-11", "scale")
KINDS = ("pos", "self_checkout", "scale", "esl_gateway", "camera", "gate", "printer", "ap", "router")
_METRICS = {"pos": ("cpu", 20, 60), "self_checkout": ("cpu", 15, 55), "scale": ("drift_g", 0, 3),
            "esl_gateway": ("tags_online_pct", 96, 100), "camera": ("fps", 20, 25), "gate": ("opens_per_min", 0, 20),
            "printer": ("paper_pct", 30, 100), "ap": ("clients", 5, 60), "router": ("latency_ms", 3, 30)}


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and key."""


def load_scenario(name_or_path: str) -> dict[str, Any]:
    """Load ``scenarios/NAME.toml`` (or a path to a TOML file) plus the city table."""
    p = Path(name_or_path)
    if not p.suffix:
        p = SCENARIO_DIR / f"{name_or_path}.toml"
    if not p.exists():
        raise ScenarioError(f"unknown scenario {name_or_path!r}: expected one of {', '.join(SCENARIOS)} "
                            "or a path to a .toml file")
    try:
        sc = tomllib.loads(p.read_text(encoding="utf-8"))
        cities = tomllib.loads((SCENARIO_DIR / "cities.toml").read_text(encoding="utf-8"))["cities"]
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{p}: {e}") from None
    table = {c["id"]: c for c in cities}
    for cid in sc.get("cities", []):
        if cid not in table:
            raise ScenarioError(f"{p}: cities: unknown city {cid!r} (expected one of {', '.join(table)})")
    sc["_cities"] = [table[c] for c in sc.get("cities", [])]
    sc["_file"] = str(p)
    beats = [(f"beats[{i}]", b) for i, b in enumerate(sc.get("beats", []))]
    for j, ep in enumerate(sc.get("living", [])):
        if not isinstance(ep, dict) or not ep.get("beats"):
            raise ScenarioError(f"{p}: living[{j}]: expected a table with [[living.beats]]")
        beats += [(f"living[{j}].beats[{i}]", b) for i, b in enumerate(ep["beats"])]
    for where, b in beats:
        if b.get("action") not in _ACTIONS:
            raise ScenarioError(f"{p}: {where}.action: {b.get('action')!r} is not one of {', '.join(_ACTIONS)}")
        if not isinstance(b.get("at"), (int, float)):
            raise ScenarioError(f"{p}: {where}.at: expected story seconds (a number)")
    every = sc.get("living_every", 90)
    if isinstance(every, bool) or not isinstance(every, (int, float)) or every < 1:
        raise ScenarioError(f"{p}: living_every: expected story seconds >= 1, got {every!r}")
    return sc


@dataclass
class _Device:
    id: str
    store: str
    kind: str
    name: str
    status: str = "maint"
    msg: str = ""
    failed: bool = False
    phase: float = 0.0


class Simulator:
    """Deterministic event source for one scenario (see the module docstring)."""

    def __init__(self, scenario: dict[str, Any], seed: int = 928, speed: float = 1.0,
                 t0: float | None = None, options: dict[str, Any] | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.sc = scenario
        self.speed = speed
        self.rng = random.Random(seed)
        self.t0 = time.time() if t0 is None else t0
        self.real = 0.0
        opts = dict(scenario.get("generate", {}))
        for k, v in (options or {}).items():
            if k not in ("stores", "devices_per_store", "rate"):
                raise ValueError(f"unknown simulator option {k!r}: expected stores, devices_per_store or rate")
            opts[k] = v
        self.gen = opts
        self.ttl = float(scenario.get("device_ttl_s", 60))
        self.refresh = float(scenario.get("refresh_s", 15))
        self.kpi_every = float(scenario.get("kpi_every_s", 2))
        self.open_at = float(scenario.get("open_at", 0))
        self.cities = {c["id"]: c for c in scenario["_cities"]}
        self.stores: dict[str, dict[str, Any]] = {}
        self.devices: list[_Device] = []
        self._build()
        self.by_store: dict[str, list[_Device]] = {}
        for d in self.devices:
            self.by_store.setdefault(d.store, []).append(d)
        self.beats = sorted(scenario.get("beats", []), key=lambda b: b["at"])
        self._beat_i = 0
        self.living: list[dict[str, Any]] = list(scenario.get("living", []))
        self.living_every = float(scenario.get("living_every", 90))
        self._next_life = float(scenario.get("living_start", scenario.get("duration", 0)))
        self.episodes = 0  # living episodes started so far
        self._timers: list[tuple[float, int, Callable[[], list[dict]]]] = []  # (real time, n, fn)
        self._timer_n = 0
        self._shifts: list[dict[str, Any]] = []
        self._spikes: list[dict[str, Any]] = []
        self._next_kpi = 0.0
        self._started = False
        self._rate_acc = 0.0
        self.state_lookup: Callable[[str, str], dict | None] | None = None

    # ------------------------------------------------------------------ world
    def _build(self) -> None:
        sc, rng = self.sc, self.rng
        if "stores" in sc:
            for s in sc["stores"]:
                self.stores[s["id"]] = dict(s)
        else:
            n = int(self.gen.get("stores", 100))
            cities = list(self.cities.values())
            weights = [c.get("weight", 1.0) for c in cities]
            counts: dict[str, int] = {c["id"]: 0 for c in cities}
            for i in range(n):
                c = cities[i] if i < len(cities) else rng.choices(cities, weights)[0]
                counts[c["id"]] += 1
                k = counts[c["id"]]
                sid = f"{c['id']}-{k:04d}"
                self.stores[sid] = {
                    "id": sid, "city": c["id"],
                    "name": f"{self.gen.get('brand', '鲜达超市')}·{c['name']}{k}号店",
                    "name_en": f"{self.gen.get('brand_en', 'FreshDa')} {c['name_en']} #{k}",
                    "lat": round(c["lat"] + rng.uniform(-0.12, 0.12), 4),
                    "lon": round(c["lon"] + rng.uniform(-0.15, 0.15), 4),
                }
        per_store = self.gen.get("devices_per_store")
        mix: dict[str, list[int]] = self.sc.get("devices", {})
        for sid in self.stores:
            if per_store:
                kinds = [KINDS[i % len(KINDS)] for i in range(int(per_store))]
            else:
                kinds = [k for k, (lo, hi) in mix.items() for _ in range(rng.randint(lo, hi))]
            seen: dict[str, int] = {}
            for kind in kinds:
                seen[kind] = seen.get(kind, 0) + 1
                did = f"{sid}/{kind}-{seen[kind]:02d}"
                status = "maint" if self.sc.get("beats") and any(
                    b["action"] == "provision" for b in self.sc["beats"]) else "ok"
                self.devices.append(_Device(did, sid, kind, f"{kind} {seen[kind]}", status,
                                            "provisioning" if status == "maint" else "",
                                            phase=rng.uniform(0, max(self.refresh, 1.0))))

    def _store_status(self) -> str:
        return self.gen.get("status") or ("open" if self._opened() else "opening")

    def _opened(self) -> bool:
        return self.open_at <= 0 or self.real * self.speed >= self.open_at

    def _now(self) -> float:
        return self.t0 + self.real

    def _store_event(self, s: dict[str, Any]) -> dict[str, Any]:
        c = self.cities[s["city"]]
        ev = {"type": "store", "id": s["id"], "name": s["name"], "name_en": s["name_en"],
              "city": {"id": c["id"], "name": c["name"], "name_en": c["name_en"]},
              "lat": s["lat"], "lon": s["lon"], "status": self._store_status(), "ts": self._now()}
        if self.open_at > 0:
            ev["opens_at"] = self.t0 + self.open_at / self.speed
        return ev

    def _device_event(self, d: _Device, full: bool = False) -> dict[str, Any]:
        m, lo, hi = _METRICS.get(d.kind, ("load", 0, 100))
        ev: dict[str, Any] = {"type": "device", "id": d.id, "status": d.status,
                              "metrics": {m: round(self.rng.uniform(lo, hi), 1)}, "msg": d.msg, "ts": self._now()}
        if full:
            ev.update(store=d.store, kind=d.kind, name=d.name, ttl_s=self.ttl)
        return ev

    # ------------------------------------------------------------------ stepping
    def advance(self, dt: float) -> list[dict[str, Any]]:
        """Events of the next ``dt`` real seconds (the first call also emits the world)."""
        out: list[dict[str, Any]] = []
        if not self._started:
            self._started = True
            out.extend(self._store_event(s) for s in self.stores.values())
            out.extend(self._device_event(d, full=True) for d in self.devices)
            out.extend(self._kpis())
            self._next_kpi = self.kpi_every
        prev = self.real
        self.real += dt
        story = self.real * self.speed
        while self._beat_i < len(self.beats) and self.beats[self._beat_i]["at"] <= story:
            out.extend(self._beat(self.beats[self._beat_i]))
            self._beat_i += 1
        while self.living and story >= self._next_life:
            self._start_episode(self._next_life)
            self._next_life += max(1.0, self.living_every)
        while self._timers and self._timers[0][0] <= self.real:
            _, _, fn = self._timers.pop(0)
            out.extend(fn())
        if self.refresh > 0:
            out.extend(self._refresh(prev, self.real))
        rate = float(self.gen.get("rate", 0) or 0)
        if rate > 0:
            out.extend(self._random_updates(rate * dt))
        if self.real >= self._next_kpi:
            self._next_kpi += self.kpi_every
            out.extend(self._kpis())
        out.extend(self._voice(dt))
        return out

    def _later(self, delay_real: float, fn: Callable[[], list[dict]]) -> None:
        self._timer_n += 1
        self._timers.append((self.real + delay_real, self._timer_n, fn))
        self._timers.sort(key=lambda t: (t[0], t[1]))

    def _refresh(self, a: float, b: float) -> list[dict[str, Any]]:
        """Heartbeat every device once per ``refresh`` real seconds (spread by phase)."""
        r = self.refresh
        lo, hi = a % r, b % r
        wrapped = (b - a) >= r or hi < lo
        out = []
        for d in self.devices:
            p = d.phase % r
            if (lo < p <= hi) if not wrapped else (p > lo or p <= hi):
                out.append(self._device_event(d))
        return out

    def _random_updates(self, n_float: float) -> list[dict[str, Any]]:
        self._rate_acc += n_float
        n = int(self._rate_acc)
        self._rate_acc -= n
        out = []
        rng = self.rng
        for _ in range(n):
            d = self.devices[rng.randrange(len(self.devices))]
            x = rng.random()
            d.status = "ok" if x < 0.96 else "warn" if x < 0.99 else "crit" if x < 0.997 else "down"
            d.msg = "" if d.status == "ok" else f"{d.kind} {d.status} (load test)"
            out.append(self._device_event(d))
        return out

    # ------------------------------------------------------------------ KPIs / voice
    def _curve(self, k: dict[str, Any], story: float) -> float:
        curve = k.get("curve", "flat")
        level = float(k.get("level", 0))
        if curve == "opening":
            if story < self.open_at:
                return float(k.get("pre", 0))
            x = story - self.open_at
            return level * (1 + (float(k.get("surge", 1)) - 1) * math.exp(-x / float(k.get("decay", 300))))
        if curve == "peak":
            peak, at = float(k["peak"]), float(k["peak_at"])
            x = story - at
            w = math.exp(-(x * x) / (2 * float(k.get("rise", 60)) ** 2)) if x < 0 else \
                math.exp(-x / float(k.get("decay", 300)))
            return level + (peak - level) * w
        return level

    def _shifted(self, metric: str, value: float, store: str | None, city: str | None, story: float) -> float:
        for sh in self._shifts:
            if sh["metric"] != metric or not (sh["from"] <= story < sh["to"]):
                continue
            if (store and store in sh["stores"]) or (city and city in sh["cities"]) or (
                    store is None and city is None and sh.get("global")):
                value = float(sh["set"]) if "set" in sh else value * float(sh.get("factor", 1))
        return value

    def _kpis(self) -> list[dict[str, Any]]:
        story = self.real * self.speed
        now = self._now()
        rng = self.rng
        out = []
        n_stores = max(1, len(self.stores))
        for k in self.sc.get("kpis", []):
            metric, unit, scopes = k["metric"], k.get("unit", ""), k.get("scopes", ["global"])
            base = self._curve(k, story)
            mean = k.get("aggregate", "sum") == "mean"
            noise = float(k.get("noise", 0))
            cap = k.get("max")

            def sample(v: float) -> float:
                v = max(0.0, v * (1 + rng.gauss(0, noise)))
                return round(min(v, cap) if cap is not None else v, 3)

            per_store = base if mean or "store" in scopes else base / n_stores
            store_vals: dict[str, float] = {}
            for sid, s in self.stores.items():
                store_vals[sid] = self._shifted(metric, per_store, sid, s["city"], story)
            if "store" in scopes:
                for sid, v in store_vals.items():
                    out.append({"type": "kpi", "metric": metric, "scope": f"store:{sid}", "value": sample(v),
                                "unit": unit, "ts": now})
            if "city" in scopes:
                for cid in self.cities:
                    vals = [v for sid, v in store_vals.items() if self.stores[sid]["city"] == cid]
                    if not vals:
                        continue
                    v = sum(vals) / len(vals) if mean else sum(vals)
                    v = self._shifted(metric, v, None, cid, story) if mean else v
                    out.append({"type": "kpi", "metric": metric, "scope": f"city:{cid}", "value": sample(v),
                                "unit": unit, "ts": now})
            if "global" in scopes:
                if mean:
                    vals = []
                    for cid in self.cities:
                        cv = [v for sid, v in store_vals.items() if self.stores[sid]["city"] == cid]
                        if cv:
                            vals.extend([self._shifted(metric, sum(cv) / len(cv), None, cid, story)] * len(cv))
                    v = sum(vals) / len(vals) if vals else base
                else:
                    v = sum(store_vals.values())
                out.append({"type": "kpi", "metric": metric, "scope": "global", "value": sample(v),
                            "unit": unit, "ts": now})
        return out

    def _voice_event(self, pool: str, store: str) -> dict[str, Any]:
        v = self.sc.get("voice", {})
        text, text_en, sentiment, topic = self.rng.choice(v["pools"][pool])
        return {"type": "voice", "channel": self.rng.choice(v.get("channels", ["app_review"])), "text": text,
                "x_text_en": text_en, "sentiment": float(sentiment), "topic": topic, "store": store,
                "city": self.stores[store]["city"], "ts": self._now()}

    def _voice(self, dt: float) -> list[dict[str, Any]]:
        v = self.sc.get("voice")
        if not v:
            return []
        out = []
        story = self.real * self.speed
        rate = float(v.get("per_store_per_min", 0)) * dt / 60  # per store, real time
        if rate > 0 and self._opened():
            for sid in self.stores:
                if self.rng.random() < rate:
                    out.append(self._voice_event(v.get("normal_pool", "normal"), sid))
        for sp in self._spikes:
            if sp["from"] <= story < sp["to"]:
                expect = sp["per_min"] * dt * self.speed / 60 / max(1, len(sp["stores"]))
                for sid in sp["stores"]:
                    n = int(expect) + (self.rng.random() < expect - int(expect))
                    out.extend(self._voice_event(sp["pool"], sid) for _ in range(n))
        return out

    # ------------------------------------------------------------------ living
    def _start_episode(self, at_story: float) -> None:
        """Schedule the next ``[[living]]`` episode's beats from story time ``at_story``."""
        ep = self.living[self.episodes % len(self.living)]
        self.episodes += 1
        sids = sorted(self.stores)
        store, store2 = self.rng.sample(sids, 2) if len(sids) > 1 else (sids[0], sids[0])
        s = self.stores[store]
        fill = {"$store_en": s["name_en"], "$store2": store2, "$store": store, "$city": s["city"],
                "$n": str(self.episodes)}
        story = self.real * self.speed
        for beat in ep.get("beats", []):
            b = _substitute(beat, fill)
            b["at"] = at_story + float(beat["at"])
            self._later(max(0.0, (b["at"] - story) / self.speed), lambda b=b: self._beat(b))

    # ------------------------------------------------------------------ beats
    def _select(self, b: dict[str, Any]) -> list[str]:
        stores = list(b.get("stores", []))
        if "store" in b:
            stores.append(b["store"])
        for cid in b.get("cities", []) + ([b["city"]] if "city" in b else []):
            stores.extend(s for s, v in self.stores.items() if v["city"] == cid)
        return stores

    def _beat(self, b: dict[str, Any]) -> list[dict[str, Any]]:
        return _ACTIONS[b["action"]](self, b)

    def _a_provision(self, b: dict[str, Any]) -> list[dict]:
        span = max(1.0, (float(b.get("until", b["at"] + 60)) - b["at"]) / self.speed)
        sids = list(self.stores)
        index = {id(d): i for i, d in enumerate(self.devices)}
        failing = set(self.rng.sample(range(len(self.devices)), min(int(b.get("fail", 0)), len(self.devices))))
        for idx, sid in enumerate(sids):
            devs = self.by_store[sid]
            start = span * idx / len(sids)
            for j, d in enumerate(devs):
                gi = index[id(d)]
                delay = start + span / len(sids) * j / max(1, len(devs))

                def up(d: _Device = d, fail: bool = gi in failing) -> list[dict]:
                    d.status, d.msg, d.failed = ("crit", b.get("fail_msg", "provisioning failed"), True) if fail \
                        else ("ok", "", False)
                    return [self._device_event(d)]

                self._later(delay, up)
        inc = b.get("incident")
        if inc and failing:
            def report() -> list[dict]:
                failed = [d for d in self.devices if d.failed]
                if not failed:
                    return []
                stores = sorted({d.store for d in failed})
                return [{"type": "incident", "id": inc["id"], "severity": inc.get("severity", "P3"),
                         "title": inc.get("title", "devices failed provisioning").replace("$count", str(len(failed))),
                         "status": "open", "stores": stores, "owner": inc.get("owner", ""),
                         "opened_at": self._now(), "ts": self._now()}]

            self._later(span + 0.5, report)
        return []

    def _a_open_stores(self, b: dict[str, Any]) -> list[dict]:
        return [self._store_event(s) for s in self.stores.values()]

    def _a_voice_spike(self, b: dict[str, Any]) -> list[dict]:
        self._spikes.append({"stores": self._select(b), "pool": b["pool"], "per_min": float(b.get("per_min", 10)),
                             "from": b["at"], "to": b["at"] + float(b.get("duration", 120))})
        return []

    def _a_kpi_shift(self, b: dict[str, Any]) -> list[dict]:
        sh = {"metric": b["metric"], "stores": set(b.get("stores", [])), "cities": set(b.get("cities", [])),
              "global": bool(b.get("global")), "from": b["at"], "to": b["at"] + float(b.get("duration", 120))}
        for key in ("set", "factor"):
            if key in b:
                sh[key] = b[key]
        self._shifts.append(sh)
        return []

    def _a_device_fault(self, b: dict[str, Any]) -> list[dict]:
        devs = [d for sid in self._select(b) for d in self.by_store.get(sid, []) if d.kind == b.get("kind", d.kind)]
        frac = float(b.get("fraction", 1.0))
        devs = [d for d in devs if self.rng.random() < frac] if frac < 1 else devs
        spread = float(b.get("spread", 0)) / self.speed
        for i, d in enumerate(devs):
            def fail(d: _Device = d) -> list[dict]:
                d.status, d.msg = b.get("status", "crit"), b.get("msg", "")
                return [self._device_event(d)]
            self._later(spread * i / max(1, len(devs)), fail)
        return []

    def _a_device_recover(self, b: dict[str, Any]) -> list[dict]:
        devs = [d for sid in self._select(b) for d in self.by_store.get(sid, [])
                if d.kind == b.get("kind", d.kind) and d.status != "ok" and not d.failed]
        spread = float(b.get("spread", 0)) / self.speed
        for i, d in enumerate(devs):
            def ok(d: _Device = d) -> list[dict]:
                d.status, d.msg = "ok", ""
                return [self._device_event(d)]
            self._later(spread * i / max(1, len(devs)), ok)
        return []

    def _a_recover_failed(self, b: dict[str, Any]) -> list[dict]:
        """Fix ``count`` failed devices; ``resolve`` names an incident resolved once none is left."""
        out = []
        failed = [d for d in self.devices if d.failed]
        for d in failed[: int(b.get("count", 1))]:
            d.status, d.msg, d.failed = "ok", "", False
            out.append(self._device_event(d))
        if b.get("resolve") and failed and not any(d.failed for d in self.devices):
            out.append({"type": "incident", "id": b["resolve"], "status": "resolved", "resolved_at": self._now(),
                        "ts": self._now()})
        return out

    def _a_emit(self, b: dict[str, Any]) -> list[dict]:
        ev = {k: self._fill(v) for k, v in b["event"].items()}
        if "only_if_status" in b and self.state_lookup is not None:
            cur = self.state_lookup(ev["type"], ev.get("id", ""))
            if cur is not None and cur.get("status") != b["only_if_status"]:
                return []
        ev["ts"] = self._now()
        return [ev]

    def _fill(self, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: self._fill(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self._fill(x) for x in v]
        if v == "$null":
            return None
        if v == "$now":
            return self._now()
        if isinstance(v, str) and v.startswith("$now+"):
            return self._now() + float(v[5:]) / self.speed
        if isinstance(v, str) and v.startswith("$stores:"):
            return [s for s, x in self.stores.items() if x["city"] == v[8:]]
        return v


def _substitute(v: Any, fill: dict[str, str]) -> Any:
    """A living episode's beat with ``$store``, ``$n``... replaced."""
    if isinstance(v, dict):
        return {k: _substitute(x, fill) for k, x in v.items()}
    if isinstance(v, list):
        return [_substitute(x, fill) for x in v]
    if isinstance(v, str) and "$" in v:
        return _FILL_NAMES.sub(lambda m: fill.get(m.group(0), m.group(0)), v)
    return v


#: The names a living episode may use (whole words: ``$now`` is not ``$n`` + "ow").
_FILL_NAMES = re.compile(r"\$(?:store_en|store2|store|city|n)\b")


_ACTIONS: dict[str, Callable[[Simulator, dict[str, Any]], list[dict]]] = {
    "provision": Simulator._a_provision, "open_stores": Simulator._a_open_stores,
    "voice_spike": Simulator._a_voice_spike, "kpi_shift": Simulator._a_kpi_shift,
    "device_fault": Simulator._a_device_fault, "device_recover": Simulator._a_device_recover,
    "recover_failed": Simulator._a_recover_failed, "emit": Simulator._a_emit,
}

TICK_S = 0.1


async def _drive(sim: Simulator, sink: Callable[[list[dict]], Any], stop_after: float | None = None) -> None:
    """Call ``sink(events)`` (awaited) every ``TICK_S`` real seconds, chunks of <= 5,000."""
    start = time.monotonic()
    done = 0.0
    first = True
    while stop_after is None or done < stop_after:
        elapsed = time.monotonic() - start
        step = 0.0 if first else max(0.0, elapsed - done)
        first = False
        done += step
        events = sim.advance(step)
        for i in range(0, len(events), 5000):
            await sink(events[i:i + 5000])
        await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - start - done)))


async def run_in_hub(hub: Any, scenario: str, *, speed: float = 1.0, seed: int = 928,
                     options: dict[str, Any] | None = None) -> None:
    """Feed a scenario into a running :class:`~wallboard.hub.server.Hub` (its own ingest)."""
    from wallboard import protocol as P

    sim = Simulator(load_scenario(scenario), seed=seed, speed=speed, options=options)
    sim.state_lookup = lambda t, i: getattr(hub.state, t + "s", {}).get(i) if t in ("incident", "change") else None
    log.info("demo %s: %d stores, %d devices, speed %g", scenario, len(sim.stores), len(sim.devices), speed)

    async def sink(events: list[dict]) -> None:
        good = []
        for i, ev in enumerate(events):
            try:
                good.append(P.validate_event(ev, i, require_seq=False, op="publish"))
            except P.ProtocolError as e:  # a scenario bug: say where, keep going
                hub.reject(e.code)
                log.error("demo %s produced a bad event: %s", scenario, e)
        if good:
            await hub.submit_retrying(good)  # resent after a journal failure (retry_after)

    await _drive(sim, sink)


async def run_to_url(url: str, scenario: str, *, speed: float = 1.0, seed: int = 928, token: str | None = None,
                     options: dict[str, Any] | None = None, duration: float | None = None) -> int:
    """Publish a scenario to a hub's ``/publish`` URL (reconnects and resends unacked)."""
    from .record import Publisher

    sim = Simulator(load_scenario(scenario), seed=seed, speed=speed, options=options)
    async with Publisher(url, token=token, producer=f"demo-{scenario}") as pub:
        await _drive(sim, pub.publish, stop_after=duration)
        await pub.flush()
        return pub.rejected
