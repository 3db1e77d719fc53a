"""Roles and tokens (pure parts): role sets, implications, constant-time match, open roles
only on loopback, both token-file formats, token strength, refusal log and refusal cap."""
import pytest

from wallboard.hub.auth import (MIN_TOKEN, Auth, AuthConfigError, PeerLimiter, RefusalLog, bearer, empty_bearer, expand,
                                is_loopback, origin_allowed, printable, read_token_file)

P1, S1, C1, M1 = "p1-token-0123456789", "s1-token-0123456789", "c1-token-0123456789", "m1-token-0123456789"


def test_roles_for_tokens():
    a = Auth({"publish": P1, "subscribe": S1, "control": None})
    assert a.roles_for(P1) == {"publish", "control"}
    assert a.roles_for(S1) == {"subscribe", "metrics", "control"}
    assert a.roles_for("nope") == {"control"}
    assert a.roles_for(None) == {"control"}
    assert a.open_roles() == ["control"]


def test_control_implies_subscribe_and_metrics_but_leaves_subscribe_open():
    assert expand(["control"]) == {"control", "subscribe", "metrics"}
    a = Auth({"publish": P1, "control": C1})
    assert a.roles_for(C1) == {"control", "subscribe", "metrics"}
    assert a.open_roles() == ["subscribe", "metrics"]  # a control token alone keeps walls without one working
    a = Auth({"subscribe": S1})
    assert "metrics" not in a.open_roles()  # a subscribe token closes metrics too


def test_one_token_many_roles_and_the_union_of_lines(tmp_path):
    f = tmp_path / "tokens"
    f.write_text(f"# ops wall\n{C1} = subscribe, control\n{P1}== = publish\npublish = {C1}\n\nmetrics = {M1}\n",
                 encoding="utf-8")
    grants = read_token_file(f)
    assert grants == {C1: {"subscribe", "control", "publish"}, P1 + "==": {"publish"}, M1: {"metrics"}}
    a = Auth.from_env({}, token_file=f)
    assert a.roles_for(C1) == {"publish", "subscribe", "control", "metrics"}
    assert a.roles_for(P1 + "==") == {"publish"}  # base64 padding stays part of the token
    assert a.roles_for(M1) == {"metrics"}
    assert a.open_roles() == [] and a.known(M1) and not a.known("x" * 20) and not a.known(None)
    a.check_bind("0.0.0.0")  # every role has a token: any bind is fine


def test_env_tokens_and_file_union(tmp_path):
    f = tmp_path / "tokens"
    f.write_text(f"# comment\ncontrol = {C1}\n", encoding="utf-8")
    a = Auth.from_env({"WALLBOARD_PUBLISH_TOKEN": P1, "WALLBOARD_SUBSCRIBE_TOKEN": S1}, token_file=f)
    assert a.roles_for(P1) == {"publish"} and a.roles_for(C1) == {"control", "subscribe", "metrics"}
    assert a.granted() == {"publish": 1, "subscribe": 2, "control": 1, "metrics": 2}
    a.check_bind("0.0.0.0")


def test_open_roles_refuse_non_loopback_bind():
    a = Auth.from_env({"WALLBOARD_PUBLISH_TOKEN": P1})
    a.check_bind("127.0.0.1")
    a.check_bind("::1")
    a.check_bind("localhost")
    with pytest.raises(AuthConfigError, match=r"refusing to bind 0\.0\.0\.0: role\(s\) subscribe, control, metrics "
                       "have no token"):
        a.check_bind("0.0.0.0")
    assert not is_loopback("10.0.0.5") and not is_loopback("") and is_loopback("127.1.2.3")


@pytest.mark.parametrize("token,msg", [
    (" ", "publish token: blank token: use a random token of at least 16 characters"),
    ("\t\n", "publish token: blank token"),
    ("short-token", "publish token: token of 11 characters is too short: at least 16"),
    ("has a space in the middle", "publish token: token contains whitespace"),
])
def test_weak_tokens_are_refused(token, msg):
    with pytest.raises(AuthConfigError, match=msg):
        Auth({"publish": token})


def test_weak_tokens_from_env_and_file_are_refused(tmp_path):
    with pytest.raises(AuthConfigError, match="WALLBOARD_CONTROL_TOKEN is set but empty"):
        Auth.from_env({"WALLBOARD_CONTROL_TOKEN": ""})
    with pytest.raises(AuthConfigError, match="WALLBOARD_CONTROL_TOKEN: blank token"):
        Auth.from_env({"WALLBOARD_CONTROL_TOKEN": " "})
    f = tmp_path / "t"
    f.write_text("subscribe = abc\n", encoding="utf-8")
    with pytest.raises(AuthConfigError, match=rf"t:1: token of 3 characters is too short: at least {MIN_TOKEN}"):
        read_token_file(f)
    with pytest.raises(AuthConfigError, match="unknown role 'admin'"):
        Auth({"admin": P1})
    with pytest.raises(AuthConfigError, match="unknown role 'root'"):
        Auth(grants={P1: ["root"]})


@pytest.mark.parametrize("text,msg", [
    ("publish p\n", r":1: expected 'role = token' \(role one of publish, subscribe, control, metrics\) or "
                    r"'token = role,role'; got a line without '='"),
    ("some-long-token-123 = admin\n", r":1: unknown role 'admin' in 'token = roles': roles are publish, subscribe, "
                                      "control, metrics"),
    ("some-long-token-123 =\n", r":1: expected 'role = token' with role one of publish, subscribe, control, "
                                r"metrics or 'token = role,role'"),
    ("\n\npublish =\n", r":3: empty token for role 'publish'"),
])
def test_token_file_errors_name_line_and_expectation(tmp_path, text, msg):
    f = tmp_path / "t"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(AuthConfigError, match=msg):
        read_token_file(f)


def test_token_file_errors_never_show_the_token(tmp_path):
    f = tmp_path / "t"
    f.write_text("secret-but-broken-token = root\n", encoding="utf-8")
    with pytest.raises(AuthConfigError) as info:
        read_token_file(f)
    assert "secret-but-broken" not in str(info.value)


def test_missing_token_file(tmp_path):
    with pytest.raises(AuthConfigError, match="cannot read token file"):
        read_token_file(tmp_path / "missing")


def test_bearer():
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer(None) is None and bearer("Bearer ") is None
    assert empty_bearer("Bearer ") and empty_bearer("bearer") and empty_bearer(" Bearer  ")
    assert not empty_bearer(None) and not empty_bearer("") and not empty_bearer("Bearer abc")
    assert not empty_bearer("Basic ")


def test_origin_allowed():
    assert not origin_allowed("https://evil.example", [])  # no --origin: no browser page is allowed
    assert origin_allowed("https://Wall.example/", ["https://wall.example"])
    assert not origin_allowed("https://wall.example.evil", ["https://wall.example"])
    assert origin_allowed("null", ["*"])


def test_printable_escapes_peer_strings():
    assert printable("wall-3") == "wall-3"
    assert printable("w\nINFO forged line") == "w\\nINFO forged line"
    assert printable("\x1b[31mred") == "\\x1b[31mred"
    assert printable("x" * 200, 10) == "x" * 10 + "..."


def test_refusal_log_once_per_address_per_interval():
    now = [0.0]
    lines: list[str] = []
    rl = RefusalLog(lines.append, interval=60, clock=lambda: now[0])
    assert rl.log("10.0.0.1:5000", "bad token")
    for port in range(5001, 5100):  # a flood from one address: counted, not written
        assert not rl.log(f"10.0.0.1:{port}", "bad token")
    assert rl.log("10.0.0.2:5000", "bad\ntoken")  # another address has its own line
    now[0] = 61
    assert rl.log("10.0.0.1:6000", "bad token")
    assert lines == ["refused 10.0.0.1:5000: bad token", "refused 10.0.0.2:5000: bad\\ntoken",
                     "refused 10.0.0.1:6000: bad token (+99 more refusals from this address, not logged, in the 60 s "
                     "after its previous line)"]


def test_refusal_log_forgets_the_oldest_address():
    rl = RefusalLog(lambda m: None, interval=60, max_peers=3, clock=lambda: 0.0)
    for i in range(10):
        rl.log(f"10.0.0.{i}:1", "x")
    assert len(rl._peers) == 3


def test_peer_limiter_blocks_after_repeated_refusals():
    now = [0.0]
    gate = PeerLimiter(limit=3, window=10, block=30, clock=lambda: now[0])
    assert not gate.refused("10.0.0.1:1") and not gate.refused("10.0.0.1:2")
    assert gate.blocked("10.0.0.1:9") == 0
    assert gate.refused("10.0.0.1:3")  # the third within 10 s blocks the address
    assert gate.blocked("10.0.0.1:9") == 30 and gate.blocked("10.0.0.2:1") == 0
    now[0] = 29.5
    assert gate.blocked("10.0.0.1:9") == pytest.approx(0.5)
    now[0] = 31
    assert gate.blocked("10.0.0.1:9") == 0
    # refusals spread wider than the window never block
    for k in range(10):
        now[0] = 100 + k * 11
        assert not gate.refused("10.0.0.3:1")


def test_peer_limiter_rejects_bad_settings():
    with pytest.raises(ValueError, match="expected limit >= 1"):
        PeerLimiter(limit=0)
