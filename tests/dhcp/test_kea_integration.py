"""Provisioning-side bans against a real Kea DHCPv4 server (Debian's kea-dhcp4-server).

Kea runs inside a server namespace; lab modems (and a relay with option 82) send
DISCOVERs with scapy from a client namespace across a veth pair (lab.kea.runner), so no
DHCP frame ever touches the root namespace's interfaces. The KeaDriver bans and lifts
over Kea's real control socket; the sentinel (``enforcer dhcp sentinel``) reads the
server-side veth.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Verdict
from enforcer.drivers.kea import KeaDriver
from enforcer.drivers.registry import DriverRegistry
from enforcer.inventory.model import Credentials, Device, Inventory
from enforcer.inventory.profiles import load_profiles
from enforcer.transport.snmp import SnmpEngineHandle
from lab.kea import (
    DhcpNet,
    KeaLabConfig,
    dhcp_namespaces,
    in_netns,
    kea_binary,
    netns_available,
)
from lab.kea import running_kea as run_kea
from lab.kea import write as write_config

ROOT = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(ROOT / "device_profiles")
BANNED = Mac("00:1d:cf:4a:12:7e")
FREE = Mac("00:1d:cf:4a:12:01")
CPE = Mac("00:50:56:00:00:01")  # a subscriber device behind BANNED, relayed by the CMTS

_why = netns_available()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_why is not None, reason=f"Kea integration tests: {_why}")]


@pytest.fixture(scope="module")
def net() -> Iterator[DhcpNet]:
    if kea_binary() is None:
        pytest.fail("kea-dhcp4 is not installed: apt-get install kea-dhcp4-server "
                    "(.ci/run does)")
    with dhcp_namespaces(f"t{os.getpid() % 100000}") as n:
        yield n


@pytest.fixture
def kea_cfg(net: DhcpNet, tmp_path: Path) -> KeaLabConfig:
    cfg = KeaLabConfig(work=tmp_path / "kea", interface=net.server_if)
    write_config(cfg)
    return cfg


def driver_for(cfg: KeaLabConfig, tmp_path: Path) -> KeaDriver:
    inv = Inventory(credentials={"none": Credentials()}, devices={
        "kea-1": Device(kind="dhcp", profile="kea-dhcp4", host=str(cfg.socket_path),
                        credentials="none")})
    handle = SnmpEngineHandle()  # unused by a dhcp device, required by the registry
    drv = DriverRegistry().build("kea-1", inv, PROFILES, snmp_engine=handle,
                                 state_dir=tmp_path)
    assert isinstance(drv, KeaDriver)
    return drv


async def offer(net: DhcpNet, mac: Mac, *, remote_id: bytes | None = None,
                timeout: float = 1.5) -> dict[str, Any] | None:
    """One DISCOVER from the client namespace (relayed with option 82 when remote_id)."""
    args = ["--interface", net.client_if, "--mac", str(mac), "--timeout", str(timeout)]
    if remote_id is not None:
        args += ["--giaddr", net.client_addr, "--remote-id", remote_id.hex()]
    done = await asyncio.to_thread(in_netns, net.client_ns, "tests.dhcp.client", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] | None = json.loads(done.stdout.strip().splitlines()[-1])["offer"]
    return result


class SentinelProcess:
    """``enforcer dhcp sentinel`` inside the server namespace (PID tracked)."""

    def __init__(self, net: DhcpNet, bans: Path) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", net.server_ns, sys.executable, "-m", "enforcer.cli.main",
             "dhcp", "sentinel", "--interface", net.server_if, "--bans-file", str(bans),
             "--repeat-after", "0", "--duration", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        self.lines: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not any("started" in x for x in self.lines):
            assert time.monotonic() < deadline and self.proc.poll() is None, \
                self.proc.stderr.read().decode() if self.proc.stderr else "no stderr"
            assert self.proc.stdout is not None
            if select.select([self.proc.stdout], [], [], 0.5)[0]:
                self.lines.append(json.loads(self.proc.stdout.readline()))

    def stop(self) -> list[dict[str, Any]]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        self.lines += [json.loads(x) for x in out.decode().splitlines() if x.strip()]
        assert any("stopped" in x for x in self.lines), err.decode()[-2000:]
        return [x["sighting"] for x in self.lines if "sighting" in x]


async def test_ban_drops_the_modem_and_its_cpes_sentinel_sees_them_lift_restores(
        net: DhcpNet, kea_cfg: KeaLabConfig, tmp_path: Path) -> None:
    bans = tmp_path / "bans.txt"
    bans.write_text(f"{BANNED}\n")
    with run_kea(net, kea_cfg):
        drv = driver_for(kea_cfg, tmp_path)
        assert await offer(net, BANNED) is not None  # before the ban: served
        sentinel = SentinelProcess(net, bans)
        try:
            res = await drv.apply(BANNED, "dhcp-drop", kind=DeviceKind.CABLE_MODEM)
            assert not res.failed and res.changed, (res.error, res.transcript)
            again = await drv.apply(BANNED, "dhcp-drop", kind=DeviceKind.CABLE_MODEM)
            assert not again.failed and not again.changed
            assert await drv.read_back(BANNED, "dhcp-drop")
            assert (await drv.observe(BANNED)).verdict is Verdict.BLOCKED
            assert "DROP" in kea_cfg.config_path.read_text()  # config-write: durable

            assert await offer(net, BANNED) is None
            got = await offer(net, FREE)
            assert got is not None and got["server_id"] == net.server_addr
            assert await offer(net, CPE, remote_id=BANNED.packed) is None
            assert await offer(net, CPE, remote_id=FREE.packed) is not None
        finally:
            seen = sentinel.stop()
        by = {(s["mac"], tuple(s["matched"])) for s in seen}
        assert (str(BANNED), ("mac",)) in by
        assert (str(CPE), ("remote_id",)) in by
        assert not any(s["mac"] == str(FREE) for s in seen)
        assert all(s["message_type"] == "discover" for s in seen)

        lifted = await drv.remove(BANNED, "dhcp-drop")
        assert not lifted.failed and lifted.changed, lifted.error
        assert not await drv.read_back(BANNED, "dhcp-drop")
        assert await offer(net, BANNED) is not None
        assert await offer(net, CPE, remote_id=BANNED.packed) is not None
        assert "DROP" not in kea_cfg.config_path.read_text()


async def test_a_ban_survives_a_server_restart(net: DhcpNet, kea_cfg: KeaLabConfig,
                                               tmp_path: Path) -> None:
    with run_kea(net, kea_cfg):
        drv = driver_for(kea_cfg, tmp_path)
        res = await drv.apply(BANNED, "dhcp-drop-modem", kind=DeviceKind.CABLE_MODEM)
        assert not res.failed, res.error
    with run_kea(net, kea_cfg):  # started again from the file config-write wrote
        drv = driver_for(kea_cfg, tmp_path)
        assert await drv.read_back(BANNED, "dhcp-drop-modem")
        assert await offer(net, BANNED) is None
        assert await offer(net, FREE) is not None
        assert await offer(net, CPE, remote_id=BANNED.packed) is not None  # modem only
        assert not (await drv.remove(BANNED, "dhcp-drop-modem")).failed
        assert await offer(net, BANNED) is not None
