"""``enforcer serve`` as a subprocess for benchmarks (no pytest dependency), signed
webhooks, and a lab topology of the four CMTS dialects with generated modems.

The start-up mirrors ``tests/conftest.py::start_daemon`` (same engine timings as the test
suite and the demo: the lab's modems re-register in well under a second).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from enforcer.api.signature import sign
from enforcer.domain.mac import Mac
from lab.model.modem import Timings
from lab.testing import LabHandle, free_port, wait_ready
from lab.topology import CMTS_DIALECTS, Topology, generated_mac

#: Engine timings of the test suite and the demo (tests/conftest.py, lab/demo.py).
ENGINE_ENV = {
    "ENFORCER_ENGINE__VERIFY_SETTLE_S": "5",
    "ENFORCER_ENGINE__VERIFY_POLL_S": "0.2",
    "ENFORCER_ENGINE__VERIFY_TIMEOUT_S": "20",
    "ENFORCER_ENGINE__RETRY_BASE_S": "0.5",
    "ENFORCER_ENGINE__MAX_RETRY_BACKOFF_S": "3",
}
READY_TIMEOUT_S = 30.0


@dataclass
class BenchDaemon:
    base: str
    secret: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    token: str  # an auditor's bearer token (reads orders)

    @property
    def key(self) -> bytes:
        return base64.b64decode(self.secret.removeprefix("whsec_"))

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_daemon(lab: LabHandle, work: Path, **extra_env: str) -> BenchDaemon:
    """Start ``enforcer serve`` on 127.0.0.1 against the lab's inventory, with a fresh
    webhook secret and an auditor token; wait until /readyz says ready."""
    return start_daemon_within(lab, work, READY_TIMEOUT_S, extra_env)


def start_daemon_within(lab: LabHandle, work: Path, ready_timeout: float,
                        extra_env: dict[str, str]) -> BenchDaemon:
    """``start_daemon``, waiting at most ``ready_timeout`` seconds for /readyz."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ,
           "ENFORCER_INVENTORY": str(lab.inventory_path),
           "ENFORCER_STATE_DIR": str(work / "state"),
           "ENFORCER_HTTP__LISTEN": f"127.0.0.1:{port}",
           "ENFORCER_WEBHOOK__SECRETS": json.dumps([secret]),
           **ENGINE_ENV, **extra_env}
    out = subprocess.run([sys.executable, "-m", "enforcer.cli.main", "users", "add",
                          "bench-auditor", "--role", "auditor", "--json"], env=env,
                         check=True, capture_output=True, text=True, timeout=60).stdout
    token = str(json.loads(out)["token"])
    log_path = work / "enforcer.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "enforcer.cli.main", "serve"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log_path, ready_timeout)
    except TimeoutError:
        proc.terminate()
        proc.wait(15)
        raise
    return BenchDaemon(base, secret, env, proc, log_path, token)


def webhook_headers(key: bytes, raw: bytes, webhook_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers for one body (a fresh webhook-id unless given)."""
    wid = webhook_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time())
    return {"webhook-id": wid, "webhook-timestamp": str(ts),
            "webhook-signature": sign(key, wid, ts, raw), "content-type": "application/json"}


@dataclass(frozen=True)
class LabModem:
    mac: str
    device: str
    dialect: str
    node: str


def four_dialect_topology(name: str, modems_per_cmts: int, work: Path,
                          nodes_per_cmts: int = 2) -> Path:
    """One CMTS of each dialect (cisco-cbr8, arris-e6000, casa-c100g, docsis3-generic),
    ``modems_per_cmts`` generated modems each over ``nodes_per_cmts`` nodes, the lab's
    default (fast) timings, deny lists large enough for every modem, no headend."""
    per_node = -(-modems_per_cmts // nodes_per_cmts)
    devices: list[dict[str, Any]] = []
    for i, dialect in enumerate(CMTS_DIALECTS, start=1):
        dev: dict[str, Any] = {
            "name": f"{dialect.split('-')[-1]}-{i}", "dialect": dialect,
            "deny_capacity": max(1000, modems_per_cmts + 10),
            "nodes": [{"name": f"node-{i}{chr(ord('a') + n)}", "modems": per_node}
                      for n in range(nodes_per_cmts)]}
        if dialect == "docsis3-generic":
            dev["ssh"] = False
        devices.append(dev)
    path = work / f"{name}.yaml"
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": name, "v2c": True, "devices": devices}))
    return path


def generated_modems(topology: Topology) -> list[LabModem]:
    """Every generated cable modem of a topology (lab/fleetbuild.py numbering: devices
    and nodes count from 1 in topology order)."""
    out: list[LabModem] = []
    for dev_no, d in enumerate(topology.expanded_devices(), start=1):
        if d.dialect not in CMTS_DIALECTS:
            continue
        for node_no, n in enumerate(d.nodes, start=1):
            out.extend(LabModem(str(Mac(generated_mac(dev_no, node_no, i))), d.name,
                                d.dialect, n.name) for i in range(n.modems))
    return out


def interleaved(modems: list[LabModem]) -> list[LabModem]:
    """Modems round-robin over devices (consecutive bans hit different CMTSes)."""
    by_dev: dict[str, list[LabModem]] = {}
    for m in modems:
        by_dev.setdefault(m.device, []).append(m)
    queues = list(by_dev.values())
    out: list[LabModem] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def rereg_s(topology: Topology) -> float:
    """The lab's simulated re-registration time (reset to operational, BPI+ modem)."""
    return Timings(**topology.timings.model_dump()).registration_total_s


def ban_body(i: int, m: LabModem, tag: str) -> dict[str, Any]:
    """A valid ban of one real lab modem, scope ``cmts`` with the modem's node (so the
    order involves exactly one CMTS), reason ``fraud``."""
    return {"ticket": f"{tag}-{i:05d}", "account": f"ACC-{tag}-{i:05d}", "reason": "fraud",
            "scope": "cmts", "node": m.node,
            "devices": [{"mac": m.mac, "kind": "cable_modem"}],
            "requested_by": "benchmark"}
