"""The DHCP layer end to end, through the daemon: a real ``kea-dhcp4`` in a server
namespace (lab.kea), a tiny lab (one cisco-cbr8, two subscriber modems) and
``enforcer serve`` on the lab's inventory plus a ``kea-1`` device of kind dhcp.

A threat-of-violence ban (policy layers ``[dhcp, cmts, headend]``) filed through the
signed webhook puts the modem MAC in Kea's DROP class and blocks it on the CMTS: the
order is verified with both layers holding, a DISCOVER with the banned MAC from the
client namespace gets no OFFER while an unbanned MAC gets one. The hs-board lifts it
unanimously: the order is lifted, the DROP class no longer holds the MAC and the MAC
is served again. A fraud ban (layers ``[cmts, headend]``) never touches Kea.

DHCP broadcasts only travel on the veth pair between the test's two namespaces; the
daemon, the lab and Kea's control socket (a unix socket) are reached on loopback or
the file system.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from enforcer.domain.mac import Mac
from enforcer.inventory.model import Credentials, Device, dump_inventory, load_inventory
from lab.demo import send_webhook
from lab.kea import (
    DhcpNet,
    KeaLabConfig,
    dhcp_namespaces,
    in_netns,
    kea_binary,
    netns_available,
    running_kea,
)
from lab.kea import write as write_config
from lab.kea.runner import control_call
from lab.testing import LabHandle, running_lab
from tests.conftest import STARTED, Daemon, start_daemon, stop_daemon


def _why_skip() -> str | None:
    why = netns_available()
    if why is not None:
        return why
    if kea_binary() is None:
        return "kea-dhcp4 is not installed (apt-get install kea-dhcp4-server)"
    return None


_WHY = _why_skip()
pytestmark = [pytest.mark.slow, pytest.mark.lab, pytest.mark.timeout(150),
              pytest.mark.skipif(_WHY is not None, reason=f"DHCP layer e2e: {_WHY}")]

BANNED = Mac("00:1d:cf:e2:e0:01")  # the threat-of-violence subscriber's modem
FRAUD = Mac("00:1d:cf:e2:e0:02")   # the fraud subscriber's modem
FREE = Mac("00:1d:cf:e2:e0:99")    # never banned
TOPOLOGY = f"""\
name: dhcp-e2e
devices:
  - name: cbr8-1
    dialect: cisco-cbr8
    nodes:
      - {{name: node-a1, modems: 2}}
subscribers:
  - account: ACC-DHCP-1
    devices:
      - {{kind: cable_modem, mac: "{BANNED}", cmts: cbr8-1, node: node-a1}}
  - account: ACC-DHCP-2
    devices:
      - {{kind: cable_modem, mac: "{FRAUD}", cmts: cbr8-1, node: node-a1}}
"""
BOARD = ("board-ann", "board-ben", "board-cat")


@dataclass
class Rig:
    net: DhcpNet
    kea: KeaLabConfig
    lab: LabHandle
    daemon: Daemon
    board: dict[str, str]  # approver name -> token


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "enforcer.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    # Kea's control socket path must fit sun_path (108 bytes): a short private dir.
    kea_dir = Path(tempfile.mkdtemp(prefix="enf-kea-", dir="/tmp"))
    try:
        with dhcp_namespaces(f"e{os.getpid() % 100000}") as net:
            kea = KeaLabConfig(work=kea_dir, interface=net.server_if)
            write_config(kea)
            topo = tmp_path / "topology.yaml"
            topo.write_text(TOPOLOGY)
            with running_kea(net, kea), running_lab(topo, state_dir=tmp_path / "lab") as lab:
                inv = load_inventory(lab.inventory_path)
                combined = inv.model_copy(update={
                    "credentials": {**inv.credentials, "none": Credentials()},
                    "devices": {**inv.devices, "kea-1": Device(
                        kind="dhcp", profile="kea-dhcp4", host=str(kea.socket_path),
                        credentials="none", description="lab Kea (test namespace)")}})
                inv_path = tmp_path / "inventory.yaml"
                inv_path.touch(mode=0o600)
                inv_path.write_text(dump_inventory(combined))
                assert load_inventory(inv_path).devices["kea-1"].kind == "dhcp"

                work = tmp_path / "daemon"
                env = {**os.environ, "ENFORCER_INVENTORY": str(inv_path),
                       "ENFORCER_STATE_DIR": str(work / "state")}
                board = {name: _cli(env, "users", "add", name, "--role", "approver",
                                    "--group", "hs-board", "--json")["token"]
                         for name in BOARD}
                d = start_daemon(lab, work, ENFORCER_INVENTORY=str(inv_path))
                STARTED[-1][1].extend(board.values())  # the log scan looks for these too
                try:
                    yield Rig(net, kea, lab, d, board)
                finally:
                    stop_daemon(d)
    finally:
        shutil.rmtree(kea_dir, ignore_errors=True)


def offer(net: DhcpNet, mac: Mac, timeout: float = 1.5) -> dict[str, Any] | None:
    """One DISCOVER as ``mac`` from the client namespace; the OFFER or None."""
    done = in_netns(net.client_ns, "tests.dhcp.client", "--interface", net.client_if,
                    "--mac", str(mac), "--timeout", str(timeout))
    assert done.returncode == 0, done.stderr
    got: dict[str, Any] | None = json.loads(done.stdout.strip().splitlines()[-1])["offer"]
    return got


def drop_test(kea: KeaLabConfig) -> str:
    """The DROP class's test as Kea holds it now ('' without a DROP class)."""
    answer = control_call(kea.socket_path, "config-get")
    args = answer.get("arguments")
    assert answer.get("result") == 0 and isinstance(args, dict), answer
    classes = args["Dhcp4"].get("client-classes", [])
    return next((str(c.get("test", "")) for c in classes if c.get("name") == "DROP"), "")


def post(d: Daemon, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(d.base + path, json=body, headers={"authorization": f"Bearer {token}"},
                   timeout=30)
    assert r.status_code in (201, 202), r.text
    out: dict[str, Any] = r.json()
    return out


def file_ban(d: Daemon, mac: Mac, *, account: str, reason: str) -> str:
    body = {"ticket": f"ESC-DHCP-{time.monotonic_ns()}", "account": account,
            "reason": reason, "node": "node-a1",
            "devices": [{"mac": str(mac), "kind": "cable_modem"}],
            "requested_by": "dhcp layer e2e"}
    r = send_webhook(d.base, d.secret, body)
    assert r.status_code == 202, r.text
    order_id: str = r.json()["order_id"]
    return order_id


def test_dhcp_layer_bans_and_lifts_through_the_daemon(rig: Rig) -> None:
    d, net, kea = rig.daemon, rig.net, rig.kea
    started = time.monotonic()
    assert offer(net, BANNED) is not None  # served before the ban

    order_id = file_ban(d, BANNED, account="ACC-DHCP-1", reason="threat_of_violence")
    order = d.wait_state(order_id, "verified", timeout=40)
    by_device = {(t["device"], t["mac"]): t for t in order["targets"]}
    on_kea = by_device.get(("kea-1", str(BANNED)))
    assert on_kea is not None, order["targets"]
    assert on_kea["mechanism"] == "dhcp-drop" and on_kea["state"] == "verified", on_kea
    on_cmts = by_device.get(("cbr8-1", str(BANNED)))
    assert on_cmts is not None and on_cmts["state"] == "verified", order["targets"]
    # Layer order: the DHCP refusal was in place before the CMTS block was pushed.
    assert on_kea["applied_at"] <= on_cmts["applied_at"], (on_kea, on_cmts)
    layers = order["layers"]
    for name in ("dhcp", "cmts"):
        assert layers[name]["holds"] and layers[name]["verified_all"], layers
    assert BANNED.packed.hex() in drop_test(kea)
    assert BANNED.packed.hex() in kea.config_path.read_text()  # config-write: durable
    assert rig.lab.truth(str(BANNED))["forwarding"] is False

    assert offer(net, BANNED) is None  # Kea drops the banned modem's DISCOVER
    free = offer(net, FREE)
    assert free is not None and free["server_id"] == net.server_addr

    # A fraud ban: layers [cmts, headend], nothing on the DHCP server.
    fraud_id = file_ban(d, FRAUD, account="ACC-DHCP-2", reason="fraud")
    fraud = d.wait_state(fraud_id, "verified", timeout=40)
    assert not [t for t in fraud["targets"] if t["device"] == "kea-1"], fraud["targets"]
    assert "dhcp" not in fraud["layers"], fraud["layers"]
    assert any(t["device"] == "cbr8-1" for t in fraud["targets"]), fraud["targets"]
    assert FRAUD.packed.hex() not in drop_test(kea)
    assert offer(net, FRAUD) is not None

    # The lift: requested by an engineer, approved unanimously by the hs-board.
    lift = post(d, f"/v1/orders/{order_id}/lift", d.tokens["engineer"],
                {"reason": "board hearing held; risk resolved"})
    assert sorted(lift["lift_request"]["electorate"]) == sorted(BOARD), lift
    outcomes = [post(d, f"/v1/orders/{order_id}/approvals", rig.board[name],
                     {"decision": "approve"})["outcome"] for name in BOARD]
    assert outcomes == ["recorded", "recorded", "approved"], outcomes
    lifted = d.wait_state(order_id, "lifted", timeout=40)
    assert all(t["state"] == "removed" for t in lifted["targets"]), lifted["targets"]
    assert BANNED.packed.hex() not in drop_test(kea)
    assert BANNED.packed.hex() not in kea.config_path.read_text()
    assert offer(net, BANNED) is not None  # served again
    rig.lab.wait_truth(str(BANNED), lambda t: t["forwarding"] is True, timeout=20)
    assert time.monotonic() - started < 90
