"""Example configs, compose file, inventory and systemd unit: they load with the real
loaders, use only documented keys, reference files that exist, and the unit passes
``systemd-analyze verify``; the daemon runs and verifies a ban with writable+executable
memory refused (what the unit's MemoryDenyWriteExecute= enforces)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from enforcer.config import Settings, load_settings
from enforcer.inventory.model import load_inventory
from lab.testing import LabHandle
from tests.conftest import start_daemon, stop_daemon
from tests.ops.conftest import ROOT, ban, casa_modem

EXAMPLES = [ROOT / "examples" / "lab.yaml", ROOT / "examples" / "production.yaml"]
UNIT = ROOT / "deploy" / "systemd" / "enforcer.service"


def documented_keys() -> set[str]:
    table = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"^\| `([a-z_.]+)` \|", table, flags=re.M))


def _leaf_keys(doc: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= _leaf_keys(v, key + ".")
        else:
            out.add(key)
    return out


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("ENFORCER_"):
            monkeypatch.delenv(k)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_loads_with_documented_keys_only(path: Path) -> None:
    settings = load_settings(path)
    assert isinstance(settings, Settings)
    keys = _leaf_keys(yaml.safe_load(path.read_text()))
    documented = documented_keys()
    assert len(documented) > 20  # the table was found
    assert keys <= documented, f"undocumented keys: {keys - documented}"


def test_production_example_keeps_secrets_out_and_logs_json() -> None:
    s = load_settings(ROOT / "examples" / "production.yaml")
    assert s.webhook.secrets == [] and s.database_url is None
    assert "whsec_" not in (ROOT / "examples" / "production.yaml").read_text().replace(
        "whsec_<", "")
    assert s.log.json_lines is True
    assert s.state_dir == Path("/var/lib/enforcer")
    assert s.profiles_dir == Path("/usr/share/enforcer/device_profiles")


def test_lab_example_points_at_the_lab_inventory() -> None:
    s = load_settings(ROOT / "examples" / "lab.yaml")
    assert s.inventory == Path(".lab/inventory.yaml")
    assert s.http.host == "127.0.0.1"


def _host_path(spec: str) -> str:
    src = spec.split(":")[0] if not spec.startswith("${") else spec[:spec.index("}") + 1]
    m = re.fullmatch(r"\$\{[A-Z_]+:-([^}]+)\}", src)
    return m.group(1) if m else src


def test_compose_file_parses_and_references_existing_files() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert {"enforcer", "postgres", "prometheus"} <= services.keys()
    assert (ROOT / services["enforcer"]["build"] / "Dockerfile").is_file()
    mounts: dict[str, str] = {}
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            host = _host_path(vol)
            target = vol.rsplit(":", 2)[-2] if vol.endswith((":ro", ":rw")) else \
                vol.rsplit(":", 1)[-1]
            if host.startswith("./"):
                assert (ROOT / host).exists(), f"{name}: {host} does not exist"
                mounts[target] = host
            else:
                assert host in doc["volumes"], f"{name}: unknown volume {host}"
    # The daemon's config and inventory are the repository's examples and load as such.
    settings = load_settings(ROOT / mounts["/etc/enforcer/enforcer.yaml"])
    assert str(settings.inventory) == "/etc/enforcer/inventory.yaml"
    inv = load_inventory(ROOT / mounts["/etc/enforcer/inventory.yaml"])
    profiles = {p.stem for p in (ROOT / "device_profiles").glob("*.yaml")}
    assert {d.profile for d in inv.devices.values()} <= profiles
    # PostgreSQL: the URL the daemon gets names the compose service.
    env = services["enforcer"]["environment"]
    assert "@postgres:5432/" in env["ENFORCER_DATABASE_URL"]
    assert "healthcheck" in services["postgres"]
    # Prometheus scrapes the daemon's service on the port the config listens on, and
    # loads the alert rules from where they are mounted.
    prom = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    targets = [t for sc in prom["scrape_configs"] for c in sc["static_configs"]
               for t in c["targets"]]
    assert targets == [f"enforcer:{settings.http.port}"]
    assert prom["rule_files"] == ["/etc/prometheus/enforcer-alerts.yml"]
    assert mounts["/etc/prometheus/enforcer-alerts.yml"] == "./deploy/prometheus/alerts.yml"


REQUIRED_HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "ReadWritePaths": "/var/lib/enforcer", "SystemCallArchitectures": "native",
}


def _unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_systemd_unit_has_the_hardening_options() -> None:
    unit = _unit_settings()
    for key, val in REQUIRED_HARDENING.items():
        assert val in unit.get(key, []), f"{key}={val} missing (have {unit.get(key)})"
    assert "@system-service" in unit["SystemCallFilter"]
    assert unit["User"] == ["enforcer"]
    assert unit["ExecStart"][0].startswith("/opt/enforcer/bin/enforcer serve --config ")
    config = unit["ExecStart"][0].split("--config ")[1]
    assert config == "/etc/enforcer/enforcer.yaml"  # examples/production.yaml, installed


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart exists: point it at this venv's console script.
    enforcer = Path(sys.executable).parent / "enforcer"
    unit = tmp_path / "enforcer.service"
    unit.write_text(UNIT.read_text().replace("/opt/enforcer/bin/enforcer", str(enforcer)))
    r = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True,
                       timeout=60, check=False)
    findings = [ln for ln in (r.stdout + r.stderr).splitlines()
                if "enforcer.service" in ln or "Unknown" in ln or "Failed" in ln]
    assert r.returncode == 0 and not findings, r.stdout + r.stderr


PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
MDWE_WRAPPER = """\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({set}, {flag}, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE failed: errno %d" % ctypes.get_errno())
os.execv({real!r}, [{real!r}] + sys.argv[1:])
"""


def _mdwe_supported() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run([sys.executable, "-c", (
        "import ctypes,sys; l=ctypes.CDLL(None); "
        f"sys.exit(0 if l.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) == 0 "
        "else 1)")], check=False)
    return probe.returncode == 0


@pytest.mark.lab
@pytest.mark.slow
def test_daemon_runs_with_write_execute_memory_refused(lab: LabHandle, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3)")
    wrapper = tmp_path / "python-mdwe"
    wrapper.write_text(f"#!{sys.executable}\n" + MDWE_WRAPPER.format(
        set=PR_SET_MDWE, flag=PR_MDWE_REFUSE_EXEC_GAIN, real=sys.executable))
    wrapper.chmod(0o755)
    check = subprocess.run([str(wrapper), "-c", (
        "import mmap\ntry:\n mmap.mmap(-1, 4096, prot=7)\nexcept OSError:\n print('refused')")],
        capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "refused"  # W+X really is refused under the wrapper
    monkeypatch.setattr(sys, "executable", str(wrapper))  # start_daemon runs sys.executable
    d = start_daemon(lab, tmp_path)
    try:
        order_id = ban(d, casa_modem(42))  # SNMP push, verify, store, API: all under MDWE
        assert d.get(f"/v1/orders/{order_id}")["state"] == "verified"
        assert d.process.poll() is None
    finally:
        stop_daemon(d)
