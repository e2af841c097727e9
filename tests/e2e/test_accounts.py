"""Account bans through the provisioning feed, on the lab: a device provisioned to a
banned account later is blocked within seconds (by the signed event, or by the export
when the event is lost); unlinking never unbans; bad feed input changes nothing; the
dry run matches what filing pushes and changes nothing; a CSV files all or nothing.
Ground truth from the lab, sampled throughout where a guarantee is judged."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from enforcer.api.signature import sign
from lab.demo import send_webhook
from lab.testing import LabHandle, running_lab
from tests.conftest import Daemon, start_daemon, stop_daemon
from tests.e2e.test_consent import Sampler

pytestmark = [pytest.mark.lab, pytest.mark.slow]

TOPOLOGY = """
name: accounts
timings: {retry_s: 0.3, reboot_s: 0.8, reboot_spread_s: 0.3, offline_retention_s: 5,
          stb_check_s: 0.3}
devices:
  - name: cbr8-1
    dialect: cisco-cbr8
    nodes: [{name: node-a1, modems: 6}, {name: node-a2, modems: 4}]
  - name: casa-1
    dialect: casa-c100g
    nodes: [{name: node-c1, modems: 6}]
  - name: dncs-1
    dialect: dncs-headend
subscribers:
  - account: ACC-1
    headend: dncs-1
    devices:
      - {kind: cable_modem, mac: "00:1d:cf:a1:00:01", cmts: cbr8-1, node: node-a1}
      - {kind: set_top, mac: "00:02:de:a1:00:02", ecm_mac: "00:02:de:a1:00:03",
         cmts: cbr8-1, node: node-a1}
  - account: ACC-2
    devices: [{kind: cable_modem, mac: "00:1d:cf:a2:00:01", cmts: casa-1, node: node-c1}]
  - account: ACC-3
    devices: [{kind: cable_modem, mac: "00:1d:cf:a3:00:01", cmts: cbr8-1, node: node-a2}]
"""
EXPORT_S = 5.0
PROV_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabHandle, Daemon]]:
    work = tmp_path_factory.mktemp("accounts")
    topo = work / "topology.yaml"
    topo.write_text(TOPOLOGY)
    with running_lab(topo, state_dir=work / "lab") as lab:
        export = lab.links()["export"]
        d = start_daemon(lab, work,
                         ENFORCER_PROVISIONING__SECRETS=json.dumps([PROV_SECRET]),
                         ENFORCER_PROVISIONING__EXPORT=export,
                         ENFORCER_PROVISIONING__EXPORT_INTERVAL_S=str(EXPORT_S),
                         ENFORCER_ENGINE__RECONCILE_INTERVAL_S="3",
                         ENFORCER_ENGINE__WATCH_INTERVAL_S="3")
        lab.provisioning_target(d.base, PROV_SECRET)
        try:
            yield lab, d
        finally:
            stop_daemon(d)


def _ban(d: Daemon, body: dict[str, Any]) -> str:
    r = send_webhook(d.base, d.secret, body)
    assert r.status_code == 202, r.text
    return str(r.json()["order_id"])


def _wait(pred: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not pred():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - start


def _macs(d: Daemon, oid: str) -> set[str]:
    return {x["mac"] for x in d.get(f"/v1/orders/{oid}")["devices"]}


def test_account_ban_follows_new_devices(env: tuple[LabHandle, Daemon]) -> None:
    lab, d = env
    oid = _ban(d, {"ticket": "T-ACC-1", "account": "ACC-1", "reason": "threat_of_violence",
                   "all_devices": True, "devices": []})
    # The export (pulled every EXPORT_S) brings the account's current devices.
    _wait(lambda: {"00:1d:cf:a1:00:01", "00:02:de:a1:00:02"} <= _macs(d, oid),
          EXPORT_S * 3 + 10, "the account's linked devices on the order")
    d.wait_state(oid, "verified", timeout=45)
    assert lab.truth("00:1d:cf:a1:00:01")["forwarding"] is False
    # A new modem provisioned to the account (signed device.linked delivered).
    new = "00:1d:cf:a1:00:99"
    out = lab.provision("ACC-1", new, cmts="casa-1", node="node-c1")
    assert out["delivery"]["delivered"] is True, out
    assert out["delivery"]["answer"]["orders_extended"] == [oid]
    online = time.monotonic()
    _wait(lambda: any(t["mac"] == new and t["state"] == "verified"
                      for t in d.get(f"/v1/orders/{oid}")["targets"]), 15,
          "the new modem's block verified")
    order = d.wait_state(oid, "verified", timeout=30)
    assert lab.truth(new)["forwarding"] is False
    [added] = [x for x in order["devices"] if x["mac"] == new]
    assert added["origin"]["source"] == "provisioning feed", added
    assert any(t["mac"] == new and t["state"] == "verified" for t in order["targets"])
    verified_in = time.monotonic() - online
    print(f"new modem blocked and verified {verified_in:.2f} s after coming online")
    assert verified_in < 5.0, f"verified {verified_in:.1f} s after coming online"
    account = d.get("/v1/accounts/ACC-1")
    assert any(e["action"] == "order.amended" for e in account["timeline"])
    assert any(x["mac"] == new and x["source"] == "event" for x in account["links"])
    # Unlinking does not unban.
    with Sampler(lab, [new]) as s:
        out = lab.unlink(new)
        assert out["delivery"]["delivered"] is True
        time.sleep(EXPORT_S + 3)  # an export pull and a reconcile pass meanwhile
    s.assert_held()
    assert new in _macs(d, oid)


def test_lost_event_repaired_by_the_export(env: tuple[LabHandle, Daemon]) -> None:
    lab, d = env
    oid = _ban(d, {"ticket": "T-ACC-2", "account": "ACC-2", "reason": "fraud",
                   "all_devices": True, "node": "node-c1", "scope": "footprint"})
    _wait(lambda: "00:1d:cf:a2:00:01" in _macs(d, oid), EXPORT_S * 3 + 10, "export")
    lost = "00:1d:cf:a2:00:77"
    out = lab.provision("ACC-2", lost, cmts="cbr8-1", node="node-a2", deliver=False)
    assert out["delivery"]["delivered"] is False
    took = _wait(lambda: lab.truth(lost).get("forwarding") is False
                 and lost in _macs(d, oid), EXPORT_S * 2 + 15, "repair by the export")
    print(f"lost event repaired by the export in {took:.2f} s (export every {EXPORT_S} s)")
    d.wait_state(oid, "verified", timeout=30)


def _signed(body: bytes, *, ts: int | None = None, key: str = PROV_SECRET,
            wid: str | None = None) -> dict[str, str]:
    wid = wid or f"msg_{secrets.token_hex(8)}"
    stamp = ts if ts is not None else int(time.time())
    k = base64.b64decode(key.removeprefix("whsec_"))
    return {"webhook-id": wid, "webhook-timestamp": str(stamp),
            "webhook-signature": sign(k, wid, stamp, body), "content-type": "application/json"}


def test_bad_provisioning_input_changes_nothing(env: tuple[LabHandle, Daemon]) -> None:
    lab, d = env
    oid = _ban(d, {"ticket": "T-ACC-3", "account": "ACC-3", "reason": "harassment",
                   "all_devices": True})
    _wait(lambda: "00:1d:cf:a3:00:01" in _macs(d, oid), EXPORT_S * 3 + 10, "export")
    d.wait_state(oid, "verified", timeout=45)
    before = d.get(f"/v1/orders/{oid}")
    url = d.base + "/v1/hooks/provisioning"

    def event(**data: Any) -> bytes:
        base = {"account": "ACC-3", "mac": "00:1d:cf:a3:00:55", "kind": "cable_modem",
                "at": "2026-12-03T10:00:00+00:00"}
        return json.dumps({"type": "device.linked", "data": {**base, **data}}).encode()

    with Sampler(lab, ["00:1d:cf:a3:00:01"]) as s:
        good = event()
        assert httpx.post(url, content=good, headers={"content-type": "application/json"},
                          timeout=10).status_code == 401  # unsigned
        assert httpx.post(url, content=good, headers=_signed(good, ts=int(time.time()) - 3600),
                          timeout=10).status_code == 401  # stale
        wrong = "whsec_" + base64.b64encode(b"x" * 32).decode()
        assert httpx.post(url, content=good, headers=_signed(good, key=wrong),
                          timeout=10).status_code == 401
        other_secret = _signed(good)
        other_secret["webhook-signature"] = sign(
            base64.b64decode(d.secret.removeprefix("whsec_")), other_secret["webhook-id"],
            other_secret["webhook-timestamp"], good)
        assert httpx.post(url, content=good, headers=other_secret,
                          timeout=10).status_code == 401  # the escalation secret is not it
        for bad in (event(kind="fridge"), event(mac="00:1d:cf:zz:00:01"),
                    event(at="yesterday"), event(mac="ff:ff:ff:ff:ff:ff"),
                    json.dumps({"type": "device.exploded", "data": {}}).encode(), b"{"):
            r = httpx.post(url, content=bad, headers=_signed(bad), timeout=10)
            assert r.status_code == 422, (bad, r.text)
        # An account with more devices than the limit: refused, nothing linked. Dated an
        # hour ahead: the lab's periodic full export (stamped now, without ACC-MANY)
        # would otherwise unlink them mid-loop on a slow machine (an older event never
        # overrides a newer one).
        ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        for i in range(40):
            body = event(account="ACC-MANY", mac=f"00:1d:cf:ee:00:{i:02x}", at=ahead)
            r = httpx.post(url, content=body, headers=_signed(body), timeout=10)
            assert r.status_code == (202 if i < 32 else 409), r.text
        time.sleep(2)
    s.assert_held()
    after = d.get(f"/v1/orders/{oid}")
    assert after["devices"] == before["devices"] and after["state"] == "verified"
    many = d.get("/v1/accounts/ACC-MANY")
    assert sum(1 for x in many["links"] if x["linked"]) == 32


def test_dry_run_matches_filing_and_changes_nothing(env: tuple[LabHandle, Daemon]) -> None:
    lab, d = env
    body = {"ticket": "T-DRY", "account": "ACC-DRY", "reason": "threat_of_violence",
            "devices": [{"mac": "00:1d:cf:a1:00:01", "kind": "cable_modem"},
                        {"mac": "1c:1b:0d:00:00:07", "kind": "cable_modem"}]}
    token = {"authorization": f"Bearer {d.tokens['engineer']}"}
    blocks_before = {n: lab.blocks(n) for n in ("cbr8-1", "casa-1")}
    r = httpx.post(d.base + "/v1/plans", json=body, headers=token, timeout=60)
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["consent"]["rule"] == "unanimous"
    assert {n: lab.blocks(n) for n in ("cbr8-1", "casa-1")} == blocks_before
    assert d.get("/v1/orders?account=ACC-DRY")["orders"] == []
    oid = _ban(d, body)
    order = d.wait_state(oid, "verified", timeout=45)
    filed = {(t["device"], t["mac"], t["mechanism"]) for t in order["targets"]}
    planned = {(t["device"], t["mac"], t["mechanism"]) for t in plan["targets"]}
    assert planned == filed, (planned, filed)


def test_csv_all_or_nothing(env: tuple[LabHandle, Daemon], tmp_path: Path) -> None:
    _lab, d = env
    bad = tmp_path / "bad.csv"
    bad.write_text("account,ticket,reason,mac\n"
                   "A-CSV-1,T1,fraud,00:1d:cf:c0:00:01\n"
                   "A-CSV-2,T2,fraud,00:1d:cf:zz:00:02\n"
                   "A-CSV-3,T3,weather,00:1d:cf:c0:00:03\n")
    out = d.cli("ban", "--from-csv", str(bad), token=d.tokens["engineer"], check=False)
    assert out.returncode == 7, out.stdout + out.stderr
    assert "line 3" in out.stderr and "line 4" in out.stderr and "nothing filed" in out.stderr
    assert d.get("/v1/orders?account=A-CSV-1")["orders"] == []
    good = tmp_path / "good.csv"
    rows = ["account,ticket,reason,scope,mac"]
    for i in range(1000):
        # Modems not registered anywhere: each CMTS in the footprint looks and finds none.
        rows.append(f"A-BULK-{i:04d},T-BULK-{i},fraud,footprint,"
                    f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}")
    good.write_text("\n".join(rows) + "\n")
    out = d.cli("ban", "--from-csv", str(good), "--wait", "--timeout", "600", "--json",
                token=d.tokens["engineer"], check=False, timeout=660)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert len(doc["orders"]) == 1000 and {o["state"] for o in doc["orders"]} == {"verified"}
    again = d.cli("ban", "--from-csv", str(good), "--json", token=d.tokens["engineer"])
    assert {o["order_id"] for o in json.loads(again.stdout)["orders"]} == {
        o["order_id"] for o in doc["orders"]}  # the same file again files nothing new
