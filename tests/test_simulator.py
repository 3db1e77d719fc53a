"""Demo scenarios: data files, deterministic by seed, valid events, the stories they tell."""
import collections

import pytest

from wallboard import protocol as P
from wallboard.hub.simulator import SCENARIOS, ScenarioError, Simulator, load_scenario
from wallboard.state import LiveState

T0 = 1_700_000_000.0


def run(name, seconds, step=0.5, speed=1.0, seed=928, **opts):
    sim = Simulator(load_scenario(name), seed=seed, speed=speed, t0=T0, options=opts or None)
    out = []
    for _ in range(int(seconds / step)):
        out.extend(sim.advance(step))
    return sim, out


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_event_is_valid_and_timestamped_in_real_time(name):
    sim, events = run(name, 30, speed=20.0)
    for i, ev in enumerate(events):
        P.validate_event(ev, i, require_seq=False)
        assert T0 <= ev["ts"] <= T0 + 31
    st = LiveState()
    for i, ev in enumerate(events):
        ev["seq"] = i + 1
    st.apply(events, T0 + 30)
    assert len(st.stores) == len(sim.stores) and len(st.devices) == len(sim.devices)


def test_same_seed_same_events_other_seed_differs():
    _, a = run("launch-928", 60, speed=5)
    _, b = run("launch-928", 60, speed=5)
    _, c = run("launch-928", 60, speed=5, seed=1)
    assert a == b
    assert a != c


def test_world_exists_at_t0_and_data_flows_continuously():
    sim = Simulator(load_scenario("launch-928"), t0=T0)
    first = sim.advance(0.0)
    kinds = collections.Counter(e["type"] for e in first)
    assert kinds["store"] == 10 and kinds["device"] == len(sim.devices) and kinds["kpi"] > 0
    later = [sim.advance(0.5) for _ in range(10)]
    assert all(batch for batch in later)  # something every half second


def test_launch_928_story():
    sim, events = run("launch-928", 300, step=1.0)
    stores = sim.stores
    assert len(stores) == 10
    assert {s["city"] for s in stores.values()} == {"shanghai", "hangzhou", "nanjing", "suzhou", "chengdu"}
    assert all(s["name"] and s["name_en"] and s["name"] != s["name_en"] for s in stores.values())
    per_store = collections.Counter(d.store for d in sim.devices)
    assert all(30 <= n <= 60 for n in per_store.values()), per_store
    assert {d.kind for d in sim.devices} == {"pos", "self_checkout", "scale", "esl_gateway", "camera", "gate",
                                             "printer", "ap", "router"}
    st = applied(events, T0 + 300)
    failed = [d for d in st.devices.values() if "provisioning failed" in (d.get("msg") or "")]
    assert 1 <= len(failed) <= 4  # a few fail provisioning (fixed later, one by one)
    assert st.incidents["INC-0928-00"]["severity"] == "P3"  # and that is an incident, not a silent crit
    opened = [e for e in events if e["type"] == "store" and e["status"] == "open"]
    assert len(opened) == 10 and all(abs(e["ts"] - (T0 + 20)) < 1.5 for e in opened)
    assert all(s["opens_at"] == T0 + 20 for s in st.stores.values())
    inc = st.incidents["INC-0928-01"]
    assert inc["status"] == "resolved" and inc["suspect_changes"] == ["CHG-928-07"]
    assert st.changes["CHG-928-07"]["status"] == "rolled_back"
    sco = [e for e in events if e["type"] == "device" and "self_checkout" in e["id"] and "SDK" in e["msg"]]
    assert {e["id"].split("/")[0] for e in sco} == {"nj-xinjiekou", "cd-chunxi"}
    assert all(st.devices[d]["status"] == "ok" for d in st.devices if "/self_checkout" in d
               and d.split("/")[0] in ("nj-xinjiekou", "cd-chunxi"))
    queue_voice = [e for e in events if e["type"] == "voice" and e.get("topic") == "queue" and e["ts"] < T0 + 200]
    assert len(queue_voice) >= 15 and {e["store"] for e in queue_voice} == {"sh-xuhui"}
    surge = [e["value"] for e in events if e["type"] == "kpi" and e["metric"] == "orders_per_s"
             and e["scope"] == "global"]
    assert max(surge) > 8 and surge[0] == 0.0  # nothing before 09:28, a surge after


def applied(events, now):
    st = LiveState()
    for i, ev in enumerate(events):
        ev["seq"] = i + 1
    st.apply(events, now)
    return st


def first(events, pred):
    """Seconds after start of the first event matching ``pred`` (None when none does)."""
    return next((e["ts"] - T0 for e in events if pred(e)), None)


def test_launch_928_tells_its_story_within_the_first_minute():
    """A newcomer who watches `wallboard` for 60 s at speed 1 sees every act of the story."""
    sim, events = run("launch-928", 60, step=0.1)
    is_dev = lambda e: e["type"] == "device"  # noqa: E731
    provisioning_done = first(events, lambda e: is_dev(e) and e["status"] == "ok" and "metrics" in e and
                              e["ts"] > T0)
    assert provisioning_done is not None and provisioning_done < 20  # devices come up
    opening = first(events, lambda e: e["type"] == "store" and e["status"] == "open")
    assert opening is not None and opening <= 25  # the stores go live
    banner = first(events, lambda e: e["type"] == "control" and e["command"] == "banner")
    assert banner is not None and banner <= 25
    failure = first(events, lambda e: is_dev(e) and e["status"] == "crit" and "SDK" in e.get("msg", ""))
    assert failure is not None and failure <= 40  # a device failure
    suspect_at = first(events, lambda e: e["type"] == "change" and e["id"] == "CHG-928-07")
    incident = next(e for e in events if e["type"] == "incident" and e["id"] == "INC-0928-01")
    assert incident["ts"] - T0 <= 45 and incident["suspect_changes"] == ["CHG-928-07"]
    assert suspect_at is not None and suspect_at < incident["ts"] - T0  # its suspect change is on the wall first
    voice = [e for e in events if e["type"] == "voice"]
    assert len(voice) >= 10 and min(e["ts"] for e in voice) - T0 <= 30  # voice items flowing
    assert len({e["topic"] for e in voice}) >= 2
    orders = [(e["ts"] - T0, e["value"]) for e in events if e["type"] == "kpi"
              and e["metric"] == "orders_per_s" and e["scope"] == "global"]
    after = [v for t, v in orders if t > 25]
    assert max(v for t, v in orders if t < 20) == 0.0 and min(after) > 0  # KPIs move at the opening
    assert len(set(after)) >= 10  # and keep moving
    st = applied(events, T0 + 60)
    assert st.suspects("INC-0928-01")[0][0] == "CHG-928-07"
    assert {s["status"] for s in st.stores.values()} == {"open"}


def test_launch_928_whole_story_within_five_minutes_then_it_keeps_living():
    sim, events = run("launch-928", 1200, step=1.0)
    resolved = first(events, lambda e: e["type"] == "incident" and e["id"] == "INC-0928-01"
                     and e.get("status") == "resolved")
    rollback = first(events, lambda e: e["type"] == "change" and e["id"] == "CHG-928-07"
                     and e.get("status") == "rolled_back")
    assert rollback is not None and rollback < 120 and resolved is not None and resolved <= 300
    late = [e for e in events if e["ts"] - T0 > 300]
    new_incidents = {e["id"] for e in late if e["type"] == "incident" and e.get("status") == "open"}
    new_changes = {e["id"] for e in late if e["type"] == "change" and e.get("status") == "running"}
    resolved_late = {e["id"] for e in late if e["type"] == "incident" and e.get("status") == "resolved"}
    assert len(new_incidents) >= 8 and len(new_changes) >= 8, (new_incidents, new_changes)
    assert len(resolved_late & new_incidents) >= 7
    faults = {e["id"] for e in late if e["type"] == "device" and e["status"] in ("warn", "crit")}
    recovered = {e["id"] for e in late if e["type"] == "device" and e["status"] == "ok" and e["id"] in faults}
    assert len(faults) >= 5 and len(recovered) >= len(faults) - 4  # recoveries follow the faults
    gaps = sorted(e["ts"] - T0 for e in late if e["type"] == "incident" and e.get("status") == "open")
    assert max(b - a for a, b in zip(gaps, gaps[1:])) <= 120  # something new every two minutes at most
    st = applied(events, T0 + 1200)
    assert st.incidents["INC-0928-00"]["status"] == "resolved"  # the last provisioning failure fixed
    assert all(inc.get("title") and "$" not in inc["title"] for inc in st.incidents.values())
    assert sim.episodes >= 12
    _, again = run("launch-928", 1200, step=1.0)
    assert [(e["type"], e.get("id"), e["ts"]) for e in again] == [(e["type"], e.get("id"), e["ts"]) for e in events]


def test_living_episode_errors_name_the_beat(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('cities = []\n[[living]]\nname = "x"\n[[living.beats]]\nat = 0\naction = "explode"\n',
                   encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"living\[0\]\.beats\[0\]\.action: 'explode' is not one of"):
        load_scenario(str(bad))
    bad.write_text('cities = []\nliving_every = 0\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match="living_every: expected story seconds >= 1, got 0"):
        load_scenario(str(bad))
    bad.write_text('cities = []\n[[living]]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"living\[0\]: expected a table with \[\[living.beats\]\]"):
        load_scenario(str(bad))


def test_double_11_story():
    sim, events = run("double-11", 900, step=1.0, speed=1.0)
    assert len(sim.stores) >= 300 and len({s["city"] for s in sim.stores.values()}) == 20
    ch = {e["id"]: e for e in events if e["type"] == "change" and "title" in e}
    assert ch["FREEZE-D11"]["x_freeze"] is True
    assert ch["CHG-1111-42"]["approved"] is False
    assert ch["FREEZE-D11"]["start"] <= ch["CHG-1111-42"]["start"] <= ch["FREEZE-D11"]["end"]
    rate = [(e["ts"], e["value"]) for e in events if e["type"] == "kpi"
            and e["metric"] == "payment_success_rate" and e["scope"] == "city:hangzhou"]
    low = [v for t, v in rate if T0 + 420 < t < T0 + 640]
    normal = [v for t, v in rate if t < T0 + 380]
    assert max(low) < 90 < min(normal)
    orders = [(e["ts"], e["value"]) for e in events if e["type"] == "kpi" and e["metric"] == "orders_per_s"
              and e["scope"] == "global"]
    peak_t = max(orders, key=lambda x: x[1])[0]
    assert T0 + 540 < peak_t < T0 + 700
    inc = [e for e in events if e["type"] == "incident" and e.get("severity") == "P1"][0]
    assert inc["suspect_changes"] == ["CHG-1111-42"] and all(s.startswith("hangzhou-") for s in inc["stores"])


def test_scale_parameters_and_rate():
    sim, events = run("scale", 2.0, step=0.1, stores=50, devices_per_store=10, rate=2000)
    assert len(sim.stores) == 50 and len(sim.devices) == 500
    updates = len([e for e in events if e["type"] == "device"]) - 500
    assert 3900 <= updates <= 4000


def test_speed_compresses_the_story():
    _, events = run("launch-928", 20, step=0.5, speed=10.0)
    assert any(e["type"] == "store" and e["status"] == "open" for e in events)  # 09:28 at 18 s


def test_errors_name_what_was_expected(tmp_path):
    with pytest.raises(ScenarioError, match="unknown scenario 'nope': expected one of launch-928, double-11, scale"):
        load_scenario("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('cities = ["atlantis"]\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match="cities: unknown city 'atlantis'"):
        load_scenario(str(bad))
    bad.write_text('cities = []\n[[beats]]\nat = 1\naction = "explode"\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"beats\[0\]\.action: 'explode' is not one of"):
        load_scenario(str(bad))
    bad.write_text('cities = [\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match="bad.toml"):
        load_scenario(str(bad))
    with pytest.raises(ValueError, match="unknown simulator option 'walls'"):
        Simulator(load_scenario("scale"), options={"walls": 3})
    with pytest.raises(ValueError, match="speed must be > 0"):
        Simulator(load_scenario("scale"), speed=0)
