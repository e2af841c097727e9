"""Bounded settings and unknown ``ENFORCER_*`` variables: refused with the key named, in
the settings and at the daemon's entry point; docs/configuration.md lists every numeric
key with exactly the model's bounds and every non-config variable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from enforcer.config import (
    NON_CONFIG_ENV,
    NON_CONFIG_ENV_PREFIXES,
    Settings,
    default_config,
    env_key,
    load_settings,
    unknown_env,
)
from enforcer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("ENFORCER_"):
            monkeypatch.delenv(key)


def _num(x: object) -> str:
    v = float(str(x))
    return str(int(v)) if v.is_integer() else repr(v)


def numeric_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[
        tuple[str, str, dict[str, str]]]:
    """(dotted key, type name, {"gt"/"ge"/"lt"/"le": bound}) of every int/float key."""
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from numeric_keys(ann, key + ".")
        elif ann in (int, float):
            assert isinstance(ann, type)
            bounds = {attr: _num(getattr(m, attr)) for m in info.metadata
                      for attr in ("gt", "ge", "lt", "le") if getattr(m, attr, None) is not None}
            yield key, ann.__name__, bounds


def doc_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `([a-z_.]+)` \|", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in line.strip().strip("|").split("|")]
    return rows


def test_every_numeric_key_has_a_lower_and_an_upper_bound() -> None:
    keys = list(numeric_keys())
    assert len(keys) > 30  # the walk found the sections' keys
    for key, _type, bounds in keys:
        assert {"gt", "ge"} & set(bounds), f"{key}: no lower bound"
        assert {"lt", "le"} & set(bounds), f"{key}: no upper bound"


def test_the_doc_lists_every_numeric_key_with_its_bounds() -> None:
    rows = doc_rows()
    symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    for key, type_name, bounds in numeric_keys():
        assert key in rows, f"docs/configuration.md has no row for {key}"
        want = f"{type_name}, " + ", ".join(f"{symbols[a]} {v}" for a, v in bounds.items())
        assert rows[key][1] == want, f"{key}: doc says {rows[key][1]!r}, model {want!r}"
        assert rows[key][3] == f"`ENFORCER_{key.upper().replace('.', '__')}`", key


@pytest.mark.parametrize(("var", "value", "key", "why"), [
    ("ENFORCER_ENGINE__RECONCILE_INTERVAL_S", "-5", "engine.reconcile_interval_s",
     "greater than or equal to 1"),
    ("ENFORCER_ENGINE__VERIFY_POLL_S", "0", "engine.verify_poll_s",
     "greater than or equal to 0.05"),
    ("ENFORCER_ENGINE__JITTER", "7", "engine.jitter", "less than or equal to 1"),
    ("ENFORCER_ENGINE__WATCH_INTERVAL_S", "0", "engine.watch_interval_s", "greater than"),
    ("ENFORCER_WEBHOOK__TOLERANCE_S", "999999", "webhook.tolerance_s", "less than"),
    ("ENFORCER_API__INTAKE_BURST", "0", "api.intake_burst", "greater than 0"),
])
def test_out_of_bounds_env_values_are_refused_naming_the_key(
        monkeypatch: pytest.MonkeyPatch, var: str, value: str, key: str, why: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as e:
        default_config()
    assert f"{key}: " in str(e.value) and why in str(e.value)


def test_out_of_bounds_file_values_are_refused_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "enforcer.yaml"
    path.write_text("engine: {reconcile_interval_s: -5, jitter: 7}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    text = str(e.value)
    assert text.startswith(str(path))
    assert "engine.reconcile_interval_s: " in text and "engine.jitter: " in text


def test_bounds_are_inclusive_where_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_ENGINE__JITTER", "1")
    monkeypatch.setenv("ENFORCER_ENGINE__VERIFY_POLL_S", "0.05")
    monkeypatch.setenv("ENFORCER_ENGINE__RECONCILE_INTERVAL_S", "86400")
    s = default_config()
    assert (s.engine.jitter, s.engine.verify_poll_s) == (1, 0.05)
    assert s.engine.reconcile_interval_s == 86400


@pytest.mark.parametrize("var", ["ENFORCER_BOGUS", "ENFORCER_HTTP_LISTEN",
                                 "ENFORCER_ENGINE__NOPE", "ENFORCER_AUDIT__ANCHOR__FILES"])
def test_unknown_enforcer_variables_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                var: str) -> None:
    monkeypatch.setenv(var, "1")
    with pytest.raises(ConfigError) as e:
        default_config()
    assert f"environment variable {var}: unknown key" in str(e.value)


def test_unknown_variable_is_refused_with_a_file_too(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "enforcer.yaml"
    path.write_text("engine: {jitter: 0.2}\n")
    monkeypatch.setenv("ENFORCER_BOGUS", "1")
    with pytest.raises(ConfigError, match=r"enforcer\.yaml: environment variable ENFORCER_BOGUS"):
        load_settings(path)


def test_variables_that_are_not_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in NON_CONFIG_ENV:
        monkeypatch.setenv(var, "x")
    monkeypatch.setenv("ENFORCER_HOOK_BOARD_SECRET", "whsec_x")
    assert default_config().engine.jitter == 0.1
    assert unknown_env({"ENFORCER_HOOK_NOC_SECRET": "1", "PATH": "/bin", "HOME": "/"}) == []


def test_env_key_names_nested_keys_and_aliases() -> None:
    assert env_key("ENFORCER_ENGINE__JITTER") == "engine.jitter"
    assert env_key("ENFORCER_AUDIT__ANCHOR__SYSLOG") == "audit.anchor.syslog"
    assert env_key("ENFORCER_LOG__JSON") == "log.json"
    assert env_key("ENFORCER_ENGINE") == "engine"  # a whole section as JSON
    assert env_key("ENFORCER_ENGINE__JITTER__X") is None  # jitter has no sub-keys
    assert env_key("ENFORCER_BOGUS") is None


def test_the_doc_lists_every_variable_that_is_not_a_setting() -> None:
    text = DOC.read_text()
    for var in [*NON_CONFIG_ENV, *(p + "*" for p in NON_CONFIG_ENV_PREFIXES)]:
        assert f"`{var}`" in text, var


def test_every_enforcer_variable_the_repository_uses_is_allowed() -> None:
    """A variable read by the CLI, the lab, the scripts or the tests that is neither a key
    nor listed as a non-config variable would make the daemon refuse to start."""
    here = Path(__file__).resolve()
    skip = {here, ROOT / "enforcer" / "config.py"}  # they name refused examples
    found: set[str] = set()
    for folder in ("enforcer", "lab", "scripts", "tests", "bench", "deploy"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".sh", ".yaml", ".yml", ".service", ".env"} \
                    or path.resolve() in skip or ".venv" in path.parts:
                continue
            found |= set(re.findall(r"\bENFORCER_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    for name in ("compose.yaml", "Dockerfile"):
        found |= set(re.findall(r"\bENFORCER_[A-Z0-9_]*[A-Z0-9]", (ROOT / name).read_text()))
    assert "ENFORCER_URL" in found and "ENFORCER_ENGINE__JITTER" in found
    stray = sorted(v for v in found if unknown_env({v: ""})
                   and not any((v + "_").startswith(p) for p in NON_CONFIG_ENV_PREFIXES))
    assert stray == []


def _enforcer_command() -> list[str]:
    script = Path(sys.executable).parent / "enforcer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "enforcer.cli.main"]


@pytest.mark.parametrize(("var", "value", "expected"), [
    ("ENFORCER_ENGINE__RECONCILE_INTERVAL_S", "-5",
     "engine.reconcile_interval_s: Input should be greater than or equal to 1"),
    ("ENFORCER_BOGUS", "1", "environment variable ENFORCER_BOGUS: unknown key"),
])
def test_the_daemon_entry_point_refuses_and_exits_12(tmp_path: Path, var: str, value: str,
                                                     expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENFORCER_")}
    env.update({var: value, "ENFORCER_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "300"})
    proc = subprocess.run([*_enforcer_command(), "serve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 12, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: configuration (defaults + environment): ")
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "state").exists()  # refused before anything started
