"""Settings: defaults, YAML file, environment precedence, unknown keys, secrets."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from enforcer.config import Settings, default_config, load_settings
from enforcer.errors import ConfigError

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    for key in list(os.environ):
        if key.startswith("ENFORCER_"):
            monkeypatch.delenv(key)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "enforcer.yaml"
    p.write_text(text)
    return p


def test_defaults() -> None:
    s = default_config()
    assert s.http.listen == "127.0.0.1:8470" and s.http.port == 8470
    assert s.state_dir == Path("state") and s.policy is None
    assert s.resolved_database_url() == "sqlite:///state/enforcer.db"
    assert s.webhook.tolerance_s == 300 and s.webhook.secrets == []
    assert s.api.max_body_bytes == 65536
    assert (s.api.intake_rate_per_s, s.api.intake_burst) == (50, 100)
    assert s.engine.reconcile_interval_s == 300 and s.engine.verify_timeout_s == 120
    assert s.log.level == "INFO" and s.log.json_lines is False
    assert s.instance_id


def test_file_then_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, f"""
inventory: inv.yaml
http: {{listen: "0.0.0.0:9000"}}
log: {{level: debug, json: true}}
engine: {{jitter: 0.2, verify_poll_s: 2}}
webhook: {{secrets: ["{SECRET}"], tolerance_s: 60}}
""")
    s = load_settings(path)
    assert s.inventory == Path("inv.yaml")
    assert s.http.listen == "0.0.0.0:9000" and s.log.level == "DEBUG" and s.log.json_lines
    assert s.engine.jitter == 0.2 and s.engine.verify_poll_s == 2
    monkeypatch.setenv("ENFORCER_HTTP__LISTEN", "127.0.0.1:9100")
    monkeypatch.setenv("ENFORCER_ENGINE__JITTER", "0.5")
    monkeypatch.setenv("ENFORCER_LOG__JSON", "false")
    s = load_settings(path)
    assert s.http.listen == "127.0.0.1:9100"  # env beats file
    assert s.engine.jitter == 0.5
    assert s.engine.verify_poll_s == 2  # nested merge keeps the file's other keys
    assert s.log.json_lines is False and s.log.level == "DEBUG"
    assert s.webhook.tolerance_s == 60


def test_env_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_DATABASE_URL", "postgresql+psycopg://u:pw12345@db/enf")
    monkeypatch.setenv("ENFORCER_STATE_DIR", "/var/lib/enforcer")
    s = default_config()
    assert s.resolved_database_url() == "postgresql+psycopg://u:pw12345@db/enf"
    assert s.state_dir == Path("/var/lib/enforcer")
    assert "pw12345" in s.secret_values()
    assert "pw12345" not in repr(s)


def test_cli_env_vars_do_not_upset_the_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_URL", "http://x:1")
    monkeypatch.setenv("ENFORCER_TOKEN", "t")
    monkeypatch.setenv("ENFORCER_CONFIG", "/nowhere.yaml")
    assert default_config().http.listen == "127.0.0.1:8470"


@pytest.mark.parametrize(("text", "key"), [
    ("bogus: 1\n", "bogus"),
    ("http: {listen: '1.2.3.4:1', port: 5}\n", "http.port"),
    ("engine: {reconcile_every: 5}\n", "engine.reconcile_every"),
])
def test_unknown_keys_are_named(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert str(path) in str(e.value)
    assert f"{key}: unknown key" in str(e.value)


def test_unknown_nested_env_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_ENGINE", '{"nope": 1}')
    with pytest.raises(ConfigError, match=r"engine\.nope: unknown key"):
        default_config()


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("http: {listen: 'nope'}\n", "http.listen", "host:port"),
    ("webhook: {secrets: ['abc']}\n", "webhook.secrets", "whsec_"),
    ("webhook: {secrets: ['whsec_!!!']}\n", "webhook.secrets", "base64"),
    ("api: {max_body_bytes: 0}\n", "api.max_body_bytes", "greater than or equal to 256"),
    ("log: {level: loud}\n", "log.level", "DEBUG"),
])
def test_bad_values_name_key_and_reason(tmp_path: Path, text: str, key: str,
                                        reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(_write(tmp_path, text))
    assert key in str(e.value) and reason in str(e.value)


def test_bad_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_ENGINE__JITTER", "lots")
    with pytest.raises(ConfigError, match=r"engine\.jitter"):
        default_config()


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(_write(tmp_path, "http: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(_write(tmp_path, "- a\n- b\n"))
    assert load_settings(_write(tmp_path, "")).http.listen == "127.0.0.1:8470"


def test_secrets_are_redacted_when_printed(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, f"webhook: {{secrets: ['{SECRET}']}}\n"))
    for text in (str(s), repr(s), s.model_dump_json()):
        assert SECRET not in text
    assert s.webhook.keys() == [b"k" * 24]
    assert s.secret_values() == [SECRET]


def test_ipv6_listen() -> None:
    s = Settings(http={"listen": "[::1]:8470"})
    assert (s.http.host, s.http.port) == ("::1", 8470)
