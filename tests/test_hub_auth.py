"""Roles and tokens (pure parts): constant-time match, open roles only on loopback, token files."""
import pytest

from wallboard.hub.auth import Auth, AuthConfigError, bearer, is_loopback, read_token_file


def test_roles_for_tokens():
    a = Auth({"publish": "p1", "subscribe": "s1", "control": None})
    assert a.roles_for("p1") == {"publish", "control"}
    assert a.roles_for("s1") == {"subscribe", "control"}
    assert a.roles_for("nope") == {"control"}
    assert a.roles_for(None) == {"control"}
    assert a.open_roles() == ["control"]


def test_env_tokens_and_file_override(tmp_path):
    f = tmp_path / "tokens"
    f.write_text("# comment\ncontrol = c9\n", encoding="utf-8")
    a = Auth.from_env({"WALLBOARD_PUBLISH_TOKEN": "p", "WALLBOARD_SUBSCRIBE_TOKEN": "s",
                       "WALLBOARD_CONTROL_TOKEN": "c"}, token_file=f)
    assert a.tokens == {"publish": "p", "subscribe": "s", "control": "c9"}
    a.check_bind("0.0.0.0")  # every role has a token: any bind is fine


def test_open_roles_refuse_non_loopback_bind():
    a = Auth.from_env({"WALLBOARD_PUBLISH_TOKEN": "p"})
    a.check_bind("127.0.0.1")
    a.check_bind("::1")
    a.check_bind("localhost")
    with pytest.raises(AuthConfigError, match=r"refusing to bind 0\.0\.0\.0: role\(s\) subscribe, control have no token"):
        a.check_bind("0.0.0.0")
    assert not is_loopback("10.0.0.5") and not is_loopback("") and is_loopback("127.1.2.3")


@pytest.mark.parametrize("text,msg", [
    ("publish p\n", r":1: expected 'role = token' with role one of publish, subscribe, control, got 'publish p'"),
    ("admin = x\n", r":1: expected 'role = token'"),
    ("\n\npublish =\n", r":3: empty token for role 'publish'"),
])
def test_token_file_errors_name_line_and_expectation(tmp_path, text, msg):
    f = tmp_path / "t"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(AuthConfigError, match=msg):
        read_token_file(f)


def test_missing_token_file(tmp_path):
    with pytest.raises(AuthConfigError, match="cannot read token file"):
        read_token_file(tmp_path / "missing")


def test_bearer():
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer(None) is None and bearer("Bearer ") is None
