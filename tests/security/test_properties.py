"""Hypothesis properties of the parsers that face operators and other systems: MAC
addresses, the config file, device profiles, the inventory and the policy. Each either
returns a valid object or raises the one documented error (never a stray KeyError,
TypeError ...), and no error message repeats a secret it was given."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcer.config import load_settings
from enforcer.domain.mac import Mac
from enforcer.errors import ConfigError, MacError, ProfileError
from enforcer.inventory.model import load_inventory
from enforcer.inventory.profiles import load_profile
from enforcer.policy.loader import load_policy
from tests.reliability.harness import record

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted((ROOT / "device_profiles").glob("*.yaml"))
SECRET = "Sentinel-Secret-9f2c1a"
WHSEC = "whsec_U2VudGluZWwtU2VjcmV0LTlmMmMxYQ=="
COUNTS: dict[str, int] = {}
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    record("fuzz_properties", {"cases": dict(COUNTS), "total": sum(COUNTS.values())})


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


# ---- MAC addresses -------------------------------------------------------------------

octets = st.binary(min_size=6, max_size=6)


def _notations(raw: bytes) -> list[str]:
    h = raw.hex()
    return [":".join(h[i:i + 2] for i in range(0, 12, 2)),
            "-".join(h[i:i + 2] for i in range(0, 12, 2)).upper(),
            ".".join(h[i:i + 4] for i in range(0, 12, 4)), h, f"  {h.upper()}\t"]


@FAST
@given(raw=octets)
def test_mac_every_notation_parses_to_one_canonical_form(raw: bytes) -> None:
    _count("mac_notations")
    unicast = raw[0] & 1 == 0 and raw not in (b"\0" * 6, b"\xff" * 6)
    for text in _notations(raw):
        if unicast:
            m = Mac(text)
            assert m.packed == raw
            assert str(m) == ":".join(f"{b:02x}" for b in raw)
            assert Mac(str(m)) == m
        else:
            with pytest.raises(MacError):
                Mac(text)


@settings(max_examples=600, deadline=None)
@given(text=st.one_of(st.text(max_size=60),
                      st.text(alphabet="0123456789abcdefABCDEF:-. ", max_size=24)))
def test_mac_arbitrary_text_parses_or_raises_mac_error(text: str) -> None:
    _count("mac_text")
    try:
        m = Mac(text)
    except MacError as e:
        assert len(str(e)) < 300  # long input is shortened, never echoed whole
        return
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", str(m))


# ---- structured documents: mutate a valid one ------------------------------------------

leaf = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40),
                 st.floats(allow_nan=False), st.text(max_size=30),
                 st.lists(st.integers(), max_size=3), st.dictionaries(
                     st.text(max_size=5), st.integers(), max_size=2))


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    doc = copy.deepcopy(base)
    paths = _paths(doc)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent = doc
        try:
            for p in path[:-1]:
                parent = parent[p]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(leaf)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    return doc


def _write(tmp: Path, name: str, doc: Any) -> Path:
    p = tmp / name
    p.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return p


INVENTORY: dict[str, Any] = {
    "credentials": {"lab": {
        "snmp": {"version": "3", "user": "enforcer", "auth_password": SECRET,
                 "priv_password": SECRET + "-p"},
        "ssh": {"username": "enforcer", "password": SECRET, "enable_secret": SECRET}}},
    "devices": {"cmts-1": {"kind": "cmts", "profile": "cisco-cbr8", "host": "127.0.0.1",
                           "credentials": "lab"}},
    "nodes": {"n1": {"serving": [{"device": "cmts-1", "interfaces": [1001]}]}},
}


@FAST
@given(doc=mutated(INVENTORY))
def test_inventory_loads_or_raises_config_error_without_secrets(
        tmp_path: Path, doc: Any) -> None:
    _count("inventory")
    try:
        inv = load_inventory(_write(tmp_path, "inventory.yaml", doc))
    except ConfigError as e:
        assert SECRET not in str(e)
        return
    assert SECRET not in repr(inv) and SECRET not in str(inv.model_dump())


@FAST
@given(text=st.text(max_size=200))
def test_inventory_arbitrary_text(tmp_path: Path, text: str) -> None:
    _count("inventory_text")
    path = _write(tmp_path, "inventory.yaml", text)
    try:
        inv = load_inventory(path)
    except ConfigError as e:
        assert str(e).startswith(str(path))  # names the file
        return
    assert isinstance(inv.devices, dict)


@pytest.mark.parametrize(("section", "key"), [("snmp", "auth_password"),
                                              ("snmp", "priv_password"), ("ssh", "password")])
@pytest.mark.parametrize("bad", ["Sh0rt!!", 12345678, ["Sentinel-in-a-list"]])
def test_a_bad_secret_value_is_never_echoed(tmp_path: Path, section: str, key: str,
                                            bad: Any) -> None:
    doc = copy.deepcopy(INVENTORY)
    doc["credentials"]["lab"][section][key] = bad
    try:
        load_inventory(_write(tmp_path, "inventory.yaml", doc))
    except ConfigError as e:
        assert str(bad).strip("[]'") not in str(e)
        assert SECRET not in str(e)
        return
    # Loaded: an SSH password has no length rule; the secret stays hidden when shown.
    assert section == "ssh" or isinstance(bad, int)
    inv = load_inventory(tmp_path / "inventory.yaml")
    assert str(bad) not in repr(inv)


CONFIG: dict[str, Any] = {
    "inventory": "inventory.yaml", "state_dir": "state",
    "http": {"listen": "127.0.0.1:8080"}, "webhook": {"secrets": [WHSEC]},
    "api": {"max_body_bytes": 65536, "intake_rate_per_s": 50, "intake_burst": 100},
    "engine": {"verify_poll_s": 1.0, "orders_per_device": 16, "retry_base_s": 2.0},
    "database_url": f"postgresql+psycopg://enforcer:{SECRET}@db/enforcer",
    "log": {"level": "INFO", "json": True},
}


@FAST
@given(doc=mutated(CONFIG))
def test_config_loads_or_raises_config_error_without_secrets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, doc: Any) -> None:
    _count("config")
    for k in [k for k in __import__("os").environ if k.startswith("ENFORCER_")]:
        monkeypatch.delenv(k)
    try:
        s = load_settings(_write(tmp_path, "enforcer.yaml", doc))
    except ConfigError as e:
        assert SECRET not in str(e) and WHSEC not in str(e)
        return
    assert SECRET not in repr(s) and WHSEC not in repr(s)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_profiles_load_or_raise_profile_error_with_a_line(
        tmp_path: Path, profile: Path, data: st.DataObject) -> None:
    _count("profiles")
    doc = data.draw(mutated(yaml.safe_load(profile.read_text())))
    path = _write(tmp_path, profile.name, doc)
    try:
        load_profile(path)
    except ProfileError as e:
        assert re.match(rf"{re.escape(str(path))}(:\d+)?: ", str(e)), str(e)


POLICY = yaml.safe_load((ROOT / "enforcer" / "policy" / "default.yaml").read_text())


@FAST
@given(doc=mutated(POLICY))
def test_policy_loads_or_raises_config_error(tmp_path: Path, doc: Any) -> None:
    _count("policy")
    try:
        load_policy(_write(tmp_path, "policy.yaml", doc))
    except ConfigError as e:
        assert str(e)


def test_the_valid_documents_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The base documents the mutations start from are valid (else every mutation
    would only exercise the error path)."""
    for k in [k for k in __import__("os").environ if k.startswith("ENFORCER_")]:
        monkeypatch.delenv(k)
    assert load_inventory(_write(tmp_path, "inv.yaml", INVENTORY)).devices
    assert load_settings(_write(tmp_path, "cfg.yaml", json.loads(json.dumps(CONFIG))))
    assert load_policy(_write(tmp_path, "policy.yaml", POLICY))
    for p in PROFILES:
        assert load_profile(p).platform == p.stem
