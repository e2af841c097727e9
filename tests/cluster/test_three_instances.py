"""Three enforcer instances on one PostgreSQL database against the lab: orders through
all three, one killed mid-enforcement, its devices taken over, every order verified, no
device ever worked on by two instances at once, and the audit chain intact."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.demo import send_webhook
from lab.testing import LabHandle, running_lab
from lab.topology import generated_mac
from tests.conftest import Daemon, start_daemon, stop_daemon

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PG = os.environ.get("ENFORCER_TEST_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
TOPOLOGY = """
name: cluster
timings: {retry_s: 0.3}
devices:
  - {name: cbr8, dialect: cisco-cbr8, count: 2, nodes: [{name: na, modems: 12}]}
  - {name: e6k, dialect: arris-e6000, count: 2, nodes: [{name: nb, modems: 12}]}
  - {name: casa, dialect: casa-c100g, count: 2, nodes: [{name: nc, modems: 12}]}
"""
SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


@pytest.fixture()
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {e}")
    name = f"enforcer_cluster_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _macs(lab: LabHandle) -> list[str]:
    """Every generated modem of the topology, in device order."""
    out: list[str] = []
    for dev_no, dev in enumerate(lab.topology.expanded_devices(), start=1):
        for node_no, node in enumerate(dev.nodes, start=1):
            out += [generated_mac(dev_no, node_no, i).hex(":") for i in range(node.modems)]
    return out


def _cluster(d: Daemon) -> dict[str, Any]:
    return dict(d.get("/v1/cluster", role="engineer"))


def test_three_instances_failover(tmp_path: Path, pg_url: str) -> None:
    topo = tmp_path / "topology.yaml"
    topo.write_text(TOPOLOGY)
    with running_lab(topo, state_dir=tmp_path / "lab") as lab:
        # One audit chain, so one set of audit keys for every instance (docs/deployment.md).
        common = {"ENFORCER_AUDIT__KEY_DIR": str(tmp_path / "audit-keys"),
                  "ENFORCER_AUDIT__EVIDENCE_KEY": str(tmp_path / "audit-keys" / "ev.pem"),
                  "ENFORCER_DATABASE_URL": pg_url, "ENFORCER_ENGINE__LEASE_TTL_S": "3",
                  "ENFORCER_ENGINE__RECONCILE_INTERVAL_S": "2",
                  "ENFORCER_ENGINE__WATCH_INTERVAL_S": "2"}
        daemons: list[Daemon] = []
        try:
            first = start_daemon(lab, tmp_path / "i1", secret=None, tokens=None,
                                 ENFORCER_INSTANCE_ID="i1",
                                 ENFORCER_ENGINE__SOURCE_ADDRESS=SOURCES[0], **common)
            daemons.append(first)
            for n in (2, 3):
                daemons.append(start_daemon(
                    lab, tmp_path / f"i{n}", secret=first.secret, tokens=first.tokens,
                    ENFORCER_INSTANCE_ID=f"i{n}",
                    ENFORCER_ENGINE__SOURCE_ADDRESS=SOURCES[n - 1], **common))
            devices = {d["name"] for d in lab.devices()}
            deadline = time.monotonic() + 30
            while True:  # every instance live, every device owned, load spread
                st = _cluster(first)
                owners = {le["device"]: le["owner"] for le in st["leases"]
                          if le["expires_in_s"] > 0}
                counts = {i["id"]: i["devices"] for i in st["instances"] if i["live"]}
                if set(owners) >= devices and len(counts) == 3 and min(counts.values()) >= 1:
                    break
                assert time.monotonic() < deadline, st
                time.sleep(0.3)

            macs = _macs(lab)[:30]
            order_ids: list[str] = []
            victim = daemons[1]
            victim_devices = {d for d, o in owners.items() if o == "i2"}
            for i, mac in enumerate(macs):
                target = daemons[i % 3] if victim.process.poll() is None else daemons[(i % 2) * 2]
                body = {"ticket": f"T-{i}", "account": f"ACC-{i}", "reason": "harassment",
                        "scope": "footprint", "devices": [{"mac": mac, "kind": "cable_modem"}]}
                r = send_webhook(target.base, target.secret, body)
                assert r.status_code == 202, r.text
                order_ids.append(r.json()["order_id"])
                if i == 14:  # mid-enforcement: orders are being pushed right now
                    victim.process.send_signal(signal.SIGKILL)
                    victim.process.wait(10)
            survivor = daemons[0]
            for oid in order_ids:
                survivor.wait_state(oid, "verified", timeout=90)
            for mac in macs:
                assert lab.truth(mac)["forwarding"] is False, mac

            st = _cluster(survivor)
            live = {i["id"] for i in st["instances"] if i["live"]}
            assert live == {"i1", "i3"}, st
            now_owners = {le["device"]: le["owner"] for le in st["leases"]
                          if le["expires_in_s"] > 0}
            assert victim_devices and all(now_owners[d] in {"i1", "i3"}
                                          for d in victim_devices), st
            epochs = {le["device"]: le["epoch"] for le in st["leases"]}
            assert all(epochs[d] >= 2 for d in victim_devices)

            for name in devices:
                c = lab.clients(name)
                assert c["concurrent"] == [], (name, c["concurrent"][:3])
                assert set(c["sources"]) <= set(SOURCES), c["sources"]
            moved = [n for n in victim_devices if len(lab.clients(n)["sources"]) >= 2]
            assert moved, "the victim's devices were never served by a survivor"

            out = survivor.cli("audit", "verify", "--json", token=survivor.tokens["auditor"])
            assert json.loads(out.stdout)["ok"] is True, out.stdout
            metrics = httpx.get(survivor.base + "/metrics", timeout=10).text
            assert "enforcer_lease_failovers_total" in metrics
        finally:
            for d in daemons:
                if d.process.poll() is None:
                    stop_daemon(d)
