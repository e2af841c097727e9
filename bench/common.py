"""Shared benchmark helpers: machine description, net-snmp walks with client CPU, lab
credentials and scaled-down topologies for smoke runs."""

from __future__ import annotations

import functools
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from enforcer.drivers.transport_args import snmp_auth
from enforcer.transport.params import Secret, SnmpAuth
from lab.testing import LabHandle

ROOT = Path(__file__).resolve().parents[1]


def rel(path: str | Path) -> str:
    """``path`` relative to the repository when it is inside it (recorded results name
    no machine's directories)."""
    p = Path(path)
    # unresolved first: .venv/bin/python is a symlink to the system's interpreter
    for candidate in (p.absolute(), p.resolve()):
        try:
            return str(candidate.relative_to(ROOT))
        except ValueError:
            continue
    return str(path)

TOPOLOGIES = ROOT / "lab" / "topologies"
WALK_TIMEOUT_S = 120.0
_NETSNMP_HOME = Path(tempfile.gettempdir()) / "enforcer-bench-netsnmp"
# no MIB loading, no user config, persistent state (v3 engine boots) kept out of /var/lib
NETSNMP_ENV = {**os.environ, "MIBS": "", "SNMPCONFPATH": str(_NETSNMP_HOME),
               "SNMP_PERSISTENT_DIR": str(_NETSNMP_HOME), "HOME": str(_NETSNMP_HOME)}


def python_speed_s(n: int = 5_000_000) -> float:
    """Seconds for a fixed pure-Python loop (best of 3): machines of one kind differ
    (seen here: 2.5x between two sessions' machines of the same name), and figures
    with absolute targets (ban latency, intake) scale with it."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        acc = 0
        for i in range(n):
            acc += i
        best = min(best, time.perf_counter() - t0)
    return round(best, 2)


@functools.cache
def machine() -> dict[str, Any]:
    """CPU model, nproc, memory, Python and net-snmp versions, platform, and a
    single-thread Python speed probe (``python_loop_5M_s``)."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    ver = subprocess.run(["snmpget", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu_model": model,
        "nproc": os.cpu_count() or 0,
        "memory_gib": round(mem_kb / 1048576, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "net_snmp": (ver.stdout + ver.stderr).strip(),
        "python_loop_5M_s": python_speed_s(),
    }


def children_cpu() -> float:
    """CPU seconds (user + system) of waited-for child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass(frozen=True)
class NetSnmpTarget:
    """How net-snmp tools reach one lab device; ``secrets`` are redacted from records."""

    args: tuple[str, ...]
    secrets: tuple[str, ...]

    def redact(self, cmd: list[str]) -> str:
        out = [("***" if a in self.secrets else a) for a in cmd]
        return " ".join(out)


def netsnmp_target(creds: SnmpAuth, host: str, port: int) -> NetSnmpTarget:
    addr = f"udp6:[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if creds.version == "2c":
        assert creds.community is not None
        c = creds.community.reveal()
        return NetSnmpTarget(("-v2c", "-c", c, addr), (c,))
    assert creds.user and creds.auth_password and creds.priv_password
    a, x = creds.auth_password.reveal(), creds.priv_password.reveal()
    return NetSnmpTarget(("-v3", "-l", "authPriv", "-u", creds.user, "-a", creds.auth_protocol,
                          "-A", a, "-x", creds.priv_protocol, "-X", x, addr), (a, x))


def bulkwalk_cmd(target: NetSnmpTarget, oid: tuple[int, ...], reps: int) -> list[str]:
    return ["snmpbulkwalk", "-On", "-t", "5", "-r", "1", f"-Cr{reps}",
            *target.args, "." + ".".join(map(str, oid))]


def count_varbinds(stdout: str) -> int:
    return sum(1 for line in stdout.splitlines()
               if " = " in line and "No more variables" not in line)


def run_bulkwalks(cmds: list[list[str]]) -> tuple[float, float, list[str]]:
    """Run the walks one after the other: (wall s, children CPU s, stdouts)."""
    outs: list[str] = []
    c0 = children_cpu()
    t0 = time.perf_counter()
    for cmd in cmds:
        p = subprocess.run(cmd, env=NETSNMP_ENV, capture_output=True, text=True, check=False,
                           timeout=WALK_TIMEOUT_S)
        if p.returncode != 0:
            raise RuntimeError(f"snmpbulkwalk failed rc={p.returncode}: {p.stderr[:300]}")
        outs.append(p.stdout)
    return time.perf_counter() - t0, children_cpu() - c0, outs


def lab_credentials(lab: LabHandle, device: str) -> dict[str, SnmpAuth]:
    """The lab's v3 authPriv credential (from the inventory) and its read-only v2c
    community (lab state file; the inventory carries v3 only)."""
    v3 = lab.inventory.creds(device).snmp
    assert v3 is not None
    community = json.loads((lab.state_dir / "credentials.json").read_text())["community_ro"]
    v2c = SnmpAuth(version="2c", community=Secret(community), allow_v2c=True)
    return {"v2c": v2c, "v3": snmp_auth(v3)}


def scaled_topology(name: str, devices: int, modems: int, work: Path) -> Path:
    """A topology of ``devices`` docsis3-generic CMTSes with ``modems`` each (no SSH)."""
    dev: dict[str, Any] = {"name": "cmts", "dialect": "docsis3-generic", "ssh": False,
                           "nodes": [{"name": "node", "modems": modems}]}
    if devices > 1:
        dev["count"] = devices
    path = work / f"{name}.yaml"
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": name, "v2c": True, "devices": [dev]}))
    return path


def topology_size(path: Path) -> tuple[int, int]:
    """(CMTS count, modems per CMTS) of a single-spec scale topology file."""
    raw = yaml.safe_load(path.read_text())
    spec = raw["devices"][0]
    return int(spec.get("count", 1)), sum(int(n["modems"]) for n in spec["nodes"])
