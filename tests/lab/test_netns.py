"""Multi-host lab: every device on its own address inside a network namespace the
test creates, reached with net-snmp, OpenSSH's ssh-keyscan and the control API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from enforcer.inventory.model import load_inventory

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="needs root and iproute2 for ip netns"),
]

TOPOLOGY = """
name: netns
devices:
  - {name: c1, dialect: cisco-cbr8, nodes: [{name: n1, modems: 5}]}
  - {name: a1, dialect: arris-e6000, nodes: [{name: n2, modems: 5}]}
subscribers:
  - account: X1
    devices: [{kind: cable_modem, mac: "00:1d:cf:00:00:01", cmts: c1, node: n1}]
"""


def test_devices_on_their_own_addresses(tmp_path: Path) -> None:
    topo = tmp_path / "topo.yaml"
    topo.write_text(TOPOLOGY)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "up", "--netns", "--topology", str(topo),
         "--state-dir", str(state), "--inventory-out", str(state / "inv.yaml")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (state / "lab.json").exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "lab did not start"
            time.sleep(0.1)
        info = json.loads((state / "lab.json").read_text())
        inv = load_inventory(state / "inv.yaml")
        hosts = {d.host for d in inv.devices.values()}
        assert len(hosts) == 2 and all(h.startswith("198.18.") for h in hosts)
        assert {d.snmp_port for d in inv.devices.values()} == {161}
        for name, dev in inv.devices.items():
            # Routed only through the namespace's veth: never off the machine.
            route = subprocess.run(["ip", "route", "get", dev.host], capture_output=True,
                                   text=True).stdout
            assert " dev efl" in route, route
            snmp = inv.creds(name).snmp
            assert snmp and snmp.auth_password and snmp.priv_password
            out = subprocess.run(
                ["snmpget", "-v3", "-l", "authPriv", "-u", str(snmp.user), "-a", "SHA",
                 "-A", snmp.auth_password.get_secret_value(), "-x", "AES",
                 "-X", snmp.priv_password.get_secret_value(), "-t", "2", "-r", "1",
                 f"{dev.host}:161", "1.3.6.1.2.1.1.5.0"],
                capture_output=True, text=True, timeout=20).stdout
            assert f'"{name}"' in out, out
            scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", "22", dev.host],
                                  capture_output=True, text=True, timeout=20).stdout
            assert dev.host_key and dev.host_key.split()[1] in scan
        truth = httpx.get(info["control_url"] + "/truth/00:1d:cf:00:00:01", timeout=5).json()
        assert truth["cmts"] == "c1" and truth["forwarding"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"enflab-{proc.pid}" not in left
