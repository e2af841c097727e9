"""Orders end to end: signed webhook and CLI -> daemon -> lab devices over real SNMP and
SSH -> verified, with the ground truth checked through the lab, net-snmp and OpenSSH."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from enforcer.mib import dotted
from lab.demo import send_webhook, story_body
from lab.testing import LabHandle
from tests.conftest import Daemon

pytestmark = pytest.mark.lab


def _sub(lab: LabHandle, account: str) -> Any:
    return next(s for s in lab.topology.subscribers if s.account == account)


def test_story_ban_verified_through_webhook(lab: LabHandle, daemon: Daemon) -> None:
    body = story_body(lab)
    r = send_webhook(daemon.base, daemon.secret, body)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/orders/{r.json()['order_id']}"
    order = daemon.wait_state(r.json()["order_id"], "verified", timeout=40)
    assert order["reason"] == "threat_of_violence" and order["scope"] == "footprint"
    # The set-top's eCM is learnt from the headend before any layer waits on another:
    # no stall until engine.layer_wait_s / full_scan_s (about 2 s on the lab, not 30).
    assert order["time_to_verified_s"] < 15, order["time_to_verified_s"]
    devices = {t["device"] for t in order["targets"]}
    assert "cbr8-1" in devices and "dncs-1" in devices
    assert all(t["state"] == "verified" for t in order["targets"] if t["state"] != "removed")
    modem, stb = body["devices"][0]["mac"], body["devices"][1]["mac"]
    truth = lab.truth(modem)
    assert truth["forwarding"] is False, truth
    box = lab.truth(stb)
    assert box["headend"]["decoding"] is False, box
    # The set-top's eCM cannot forward either.
    ecm = box["headend"]["ecm_mac"]
    assert lab.truth(ecm)["forwarding"] is False


@pytest.mark.parametrize("account,device", [
    ("ACC-50001", "e6000-1"), ("ACC-50002", "casa-1"), ("ACC-50003", "generic-1")])
def test_ban_each_dialect_via_cli(lab: LabHandle, daemon: Daemon, account: str,
                                  device: str) -> None:
    sub = _sub(lab, account)
    args = ["ban", "--account", account, "--ticket", f"T-{account}", "--reason", "harassment",
            "--scope", "cmts", "--node", sub.devices[0].node, "--json"]
    for d in sub.devices:
        args += ["--mac", f"{d.mac}:{d.kind}"]
    out = daemon.cli(*args, token=daemon.tokens["engineer"])
    order_id = json.loads(out.stdout)["order_id"]
    order = daemon.wait_state(order_id, "verified", timeout=40)
    assert any(t["device"] == device for t in order["targets"])
    for d in sub.devices:
        mac = str(d.ecm_mac or d.mac) if d.kind == "set_top" else str(d.mac)
        assert lab.truth(mac)["forwarding"] is False


def test_ground_truth_with_net_snmp(lab: LabHandle, daemon: Daemon) -> None:
    """The story modem's DOCS-IF status read with net-snmp: accessDenied(7) or not
    listed, never operational(8)."""
    inv = lab.inventory
    dev = inv.devices["cbr8-1"]
    snmp = inv.creds("cbr8-1").snmp
    assert snmp is not None and snmp.auth_password and snmp.priv_password
    body = story_body(lab)
    mac = body["devices"][0]["mac"]
    idx = ".".join(str(int(x, 16)) for x in mac.split(":"))
    daemon_order = send_webhook(daemon.base, daemon.secret, body)  # idempotent re-ban
    assert daemon_order.status_code == 202
    cmd = ["snmpget", "-v3", "-l", "authPriv", "-u", str(snmp.user), "-a", "SHA", "-A",
           snmp.auth_password.get_secret_value(), "-x", "AES", "-X",
           snmp.priv_password.get_secret_value(), "-On", "-t", "2", "-r", "1",
           f"{dev.host}:{dev.snmp_port}", f"{dotted('docsIfCmtsCmPtr')}.{idx}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    if "No Such Instance" in out:
        return  # not listed: cannot forward
    status_index = out.strip().rsplit(" ", 1)[-1]
    cmd[-1] = f"{dotted('docsIfCmtsCmStatusValue')}.{status_index}"
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    assert "INTEGER: 8" not in out, out


def test_ground_truth_with_openssh(lab: LabHandle, daemon: Daemon, tmp_path: Any) -> None:
    """ARRIS deny list read with OpenSSH and the pinned host key."""
    inv = lab.inventory
    dev = inv.devices["e6000-1"]
    assert dev.host_key
    known = tmp_path / "known_hosts"
    known.write_text(f"[{dev.host}]:{dev.ssh_port} {dev.host_key}\n")
    ssh = inv.creds("e6000-1").ssh
    assert ssh is not None and ssh.password
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{ssh.password.get_secret_value()}'\n")
    askpass.chmod(0o700)
    env = {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": "none",
           "PATH": "/usr/bin:/bin"}
    sub = _sub(lab, "ACC-50001")
    mac = str(sub.devices[0].mac)
    run = subprocess.run(
        ["ssh", "-p", str(dev.ssh_port), "-o", f"UserKnownHostsFile={known}",
         "-o", "StrictHostKeyChecking=yes", "-o", "PubkeyAuthentication=no",
         "-o", "PreferredAuthentications=password", f"{ssh.username}@{dev.host}",
         "show cable modem deny"], capture_output=True, text=True, timeout=30, env=env)
    dotted = mac.replace(":", "")
    dotted = f"{dotted[0:4]}.{dotted[4:8]}.{dotted[8:12]}"
    assert run.returncode == 0, run.stderr
    assert dotted in run.stdout, run.stdout + run.stderr
    assert lab.truth(mac)["forwarding"] is False
