"""Bans and lifts end to end on CMTSes that list their modems in their Remote PHY views
(lab/topologies/remote-phy.yaml: a cBR-8 serving RPDs, a Casa vCCAP; lab/README.md
"Fidelity"). Real daemon (``enforcer serve``), real lab, real SNMP and SSH: the order
is verified, the lab's ground truth says the modem cannot forward, and the device's own
``show cable modem`` (read over SSH in its Remote PHY view with the profile's layout)
says blocked; after the lift is approved, the modem forwards and the view says so."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from enforcer.domain.mac import Mac
from enforcer.domain.model import Verdict
from enforcer.drivers import ProfileDriver, build_driver
from enforcer.inventory.profiles import load_profiles
from enforcer.transport.snmp import SnmpEngineHandle
from lab.demo import send_webhook
from lab.testing import LabHandle, running_lab
from tests.conftest import Daemon, start_daemon, stop_daemon

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(ROOT / "device_profiles")
TOPOLOGY = ROOT / "lab" / "topologies" / "remote-phy.yaml"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabHandle, Daemon, str]]:
    work = tmp_path_factory.mktemp("remote-phy")
    policy = work / "policy.yaml"
    ordinary = {"default_scope": "node", "lift": {"group": "billing", "rule": "any"}}
    policy.write_text(json.dumps({"reasons": {r: ordinary for r in (
        "threat_of_violence", "harassment", "fraud", "theft_of_service", "non_payment",
        "other")}}))
    with running_lab(TOPOLOGY, state_dir=work / "lab") as lab:
        d = start_daemon(lab, work, ENFORCER_POLICY=str(policy),
                         ENFORCER_ENGINE__RECONCILE_INTERVAL_S="2",
                         ENFORCER_ENGINE__WATCH_INTERVAL_S="2")
        bill = json.loads(d.cli("users", "add", "bill", "--role", "approver", "--group",
                                "billing", "--json").stdout)["token"]
        try:
            yield lab, d, bill
        finally:
            stop_daemon(d)


async def listed(lab: LabHandle, device: str, mac: Mac, want: Verdict,
                 tmp_path: Path, timeout: float = 20.0) -> tuple[str, str, dict[str, str]]:
    """The device's own listing over SSH until it lists ``mac`` meaning ``want``:
    (state word, layout, the row's added fields)."""
    handle = SnmpEngineHandle()
    driver = build_driver(device, lab.inventory, PROFILES, snmp_engine=handle,
                          state_dir=tmp_path)
    assert isinstance(driver, ProfileDriver)
    deadline = time.monotonic() + timeout
    try:
        while True:
            got = await driver.list_modems()
            row = got.rows.get(mac)
            if row is not None and row[0] is want:
                return row[1], got.layout, got.fields[mac]
            assert time.monotonic() < deadline, f"{device}: {mac} never listed {want}: {row}"
            await asyncio.sleep(0.2)
    finally:
        await driver.close()
        handle.close()


@pytest.mark.parametrize(("account", "mac", "node", "device", "layout", "blocked", "ok"), [
    ("ACC-60001", "00:1d:cf:60:00:01", "rpd-a1", "cbr8-rphy-1", "rphy", "w-online(ptd)",
     "w-online(pt)"),
    ("ACC-60002", "00:1d:cf:60:00:11", "vrpd-c1", "vccap-1", "vccap", "online(ptd)",
     "online(pt)"),
])
def test_ban_and_lift_on_a_remote_phy_view(
        env: tuple[LabHandle, Daemon, str], tmp_path: Path, account: str, mac: str,
        node: str, device: str, layout: str, blocked: str, ok: str) -> None:
    lab, d, bill = env
    r = send_webhook(d.base, d.secret, {
        "ticket": f"T-{account}", "account": account, "reason": "non_payment",
        "node": node, "devices": [{"mac": mac, "kind": "cable_modem"}]})
    assert r.status_code == 202, r.text
    oid = str(r.json()["order_id"])
    order = d.wait_state(oid, "verified", timeout=45)
    assert {t["device"] for t in order["targets"]} == {device}
    assert lab.truth(mac)["forwarding"] is False
    word, seen_layout, fields = asyncio.run(listed(lab, device, Mac(mac), Verdict.BLOCKED,
                                                   tmp_path))
    assert (word, seen_layout) == (blocked, layout)
    assert fields["rphy_node"] == node and fields["device_class"] == "CM"

    headers = {"authorization": f"Bearer {d.tokens['engineer']}"}
    r = httpx.post(f"{d.base}/v1/orders/{oid}/lift", json={"reason": "paid"},
                   headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    r = httpx.post(f"{d.base}/v1/orders/{oid}/approvals", json={},
                   headers={"authorization": f"Bearer {bill}"}, timeout=30)
    assert r.status_code == 201, r.text
    d.wait_state(oid, "lifted", timeout=45)
    lab.wait_truth(mac, lambda t: bool(t["forwarding"]), timeout=20)
    word, seen_layout, _ = asyncio.run(listed(lab, device, Mac(mac), Verdict.FORWARDING,
                                              tmp_path))
    assert (word, seen_layout) == (ok, layout)
