"""Helpers for the reliability tests: a daemon that can be SIGKILLed and restarted on
the same state directory, webhooks with fixed ids (so the escalation system's retries
are real retries), the lab's generated modems, and the report the tests leave behind
(``bench/results/reliability.json`` plus a WARNING log line, and pytest properties)."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from enforcer.api.signature import sign
from enforcer.domain.mac import Mac
from enforcer.store import Store
from lab.testing import LabHandle
from lab.topology import CMTS_DIALECTS, generated_mac
from tests.conftest import Daemon

ROOT = Path(__file__).resolve().parents[2]
#: Where ``record`` writes: a temporary file, so a test run never rewrites a tracked file;
#: ``ENFORCER_RELIABILITY_REPORT=bench/results/reliability.json`` records on purpose.
REPORT = Path(os.environ.get("ENFORCER_RELIABILITY_REPORT")
              or Path(tempfile.gettempdir()) / "enforcer-reliability.json")
log = logging.getLogger("tests.reliability")

#: Engine timings for the reliability labs: short leases (a killed instance's devices
#: are free again within seconds), quick retries and a short settle (the lab's modems
#: re-register in well under a second).
FAST_ENGINE = {
    "ENFORCER_ENGINE__LEASE_TTL_S": "3",
    "ENFORCER_ENGINE__VERIFY_SETTLE_S": "1.5",
    "ENFORCER_ENGINE__VERIFY_POLL_S": "0.2",
    "ENFORCER_ENGINE__VERIFY_TIMEOUT_S": "10",
    "ENFORCER_ENGINE__RETRY_BASE_S": "0.5",
    "ENFORCER_ENGINE__MAX_RETRY_BACKOFF_S": "2",
    "ENFORCER_ENGINE__DUE_SCAN_S": "0.5",
    "ENFORCER_API__INTAKE_RATE_PER_S": "1000",
    "ENFORCER_API__INTAKE_BURST": "1000",
}


@dataclass(frozen=True)
class Modem:
    mac: str
    device: str
    node: str


def generated_modems(lab: LabHandle) -> list[Modem]:
    """Every generated cable modem of the lab's topology (lab/fleetbuild.py numbering:
    devices and nodes count from 1 in topology order)."""
    out: list[Modem] = []
    for dev_no, d in enumerate(lab.topology.expanded_devices(), start=1):
        if d.dialect not in CMTS_DIALECTS:
            continue
        for node_no, n in enumerate(d.nodes, start=1):
            out.extend(Modem(str(Mac(generated_mac(dev_no, node_no, i))), d.name, n.name)
                       for i in range(n.modems))
    return out


def order_body(i: int, m: Modem, *, tag: str) -> dict[str, Any]:
    return {"ticket": f"{tag}-{i:04d}", "account": f"ACC-{tag}-{i:04d}", "reason": "fraud",
            "scope": "node", "node": m.node,
            "devices": [{"mac": m.mac, "kind": "cable_modem"}],
            "requested_by": "reliability test"}


@dataclass
class Webhook:
    """One message of the escalation system: a fixed id and fixed bytes (a retry sends
    exactly the same), and the order id once a 2xx came back."""

    wid: str
    raw: bytes
    mac: str
    device: str
    order_id: str | None = None
    statuses: list[int] = field(default_factory=list)
    created: list[bool] = field(default_factory=list)

    def send(self, base: str, secret: str, client: httpx.Client) -> int | None:
        """POST it; the status, or None when the connection failed (daemon killed)."""
        ts = int(time.time())
        key = base64.b64decode(secret.removeprefix("whsec_"))
        headers = {"webhook-id": self.wid, "webhook-timestamp": str(ts),
                   "webhook-signature": sign(key, self.wid, ts, self.raw),
                   "content-type": "application/json"}
        try:
            r = client.post(f"{base}/v1/hooks/escalation", content=self.raw, headers=headers)
        except httpx.HTTPError:
            return None
        self.statuses.append(r.status_code)
        if 200 <= r.status_code < 300:
            oid = r.json()["order_id"]
            self.created.append(bool(r.json()["created"]))
            if self.order_id is not None and oid != self.order_id:
                raise AssertionError(f"webhook {self.wid} answered {oid}, earlier "
                                     f"{self.order_id}: a duplicate order")
            self.order_id = oid
        return r.status_code


_KINDS = [("wrong digest", "snmp auth refused"), ("genErr", "snmp genErr"),
          ("no SNMP answer", "snmp timeout"), ("no SSH", "ssh unreachable"),
          ("SSH authentication", "ssh auth"), ("rejected", "cli rejected"),
          ("still forwards", "still forwarding"), ("unknown on", "unknown state")]


def error_kind(message: str) -> str:
    """``device: kind`` for a target's last_error, to count what the faults caused."""
    device = message.split(":", 1)[0] if ":" in message else "?"
    for needle, kind in _KINDS:
        if needle in message:
            return f"{device}: {kind}"
    return f"{device}: other"


def sigkill(d: Daemon) -> None:
    """SIGKILL our own daemon subprocess, by its PID, and reap it."""
    if d.process.poll() is None:
        os.kill(d.process.pid, signal.SIGKILL)
    d.process.wait(10)


def restart(d: Daemon, n: int) -> Daemon:
    """``enforcer serve`` again on the same state directory, database and port."""
    log_path = d.log_path.with_name(f"enforcer-{n}.log")
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "enforcer.cli.main", "serve"],
                                env=d.env, stdout=out, stderr=subprocess.STDOUT)
    new = replace(d, process=proc, log_path=log_path)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError("enforcer serve exited:\n" + log_path.read_text()[-4000:])
        try:
            if httpx.get(d.base + "/readyz", timeout=1).status_code == 200:
                return new
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("enforcer serve not ready:\n" + log_path.read_text()[-4000:])
        time.sleep(0.05)


def store_of(d: Daemon) -> Store:
    """The daemon's database, with its audit keys (state_dir/audit-keys)."""
    from enforcer.store.auditkey import load_keyring

    state = Path(d.env["ENFORCER_STATE_DIR"])
    return Store.from_url(f"sqlite:///{state / 'enforcer.db'}",
                          audit_keys=load_keyring(state / "audit-keys", create=False))


def wait_all(d: Daemon, order_ids: set[str], state: str, timeout: float
             ) -> dict[str, dict[str, Any]]:
    """Poll the API until every order is in ``state``; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    last: dict[str, dict[str, Any]] = {}
    with httpx.Client(headers={"authorization": f"Bearer {d.tokens['auditor']}"},
                      timeout=30) as c:
        while True:
            r = c.get(d.base + "/v1/orders", params={"limit": 1000})
            r.raise_for_status()
            last = {o["id"]: o for o in r.json()["orders"] if o["id"] in order_ids}
            if len(last) == len(order_ids) and all(o["state"] == state for o in last.values()):
                return last
            if time.monotonic() > deadline:
                stuck = [(o["id"], o["state"], o.get("state_detail")) for o in last.values()
                         if o["state"] != state]
                missing = order_ids - set(last)
                raise AssertionError(f"not all {state} after {timeout}s: {len(stuck)} stuck "
                                     f"{stuck[:10]}, {len(missing)} missing")
            time.sleep(0.5)


def record(name: str, data: dict[str, Any]) -> None:
    """Merge ``data`` under ``name`` into ``REPORT`` and log it at
    WARNING (so the counts show in a CI log with the default ``-rA``/log capture)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    try:
        doc = json.loads(REPORT.read_text())
    except (OSError, ValueError):
        doc = {}
    doc[name] = {**data, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    REPORT.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    log.warning("reliability %s: %s", name, json.dumps(data, sort_keys=True))
