"""Run a lab: every device's SNMP agent and SSH CLI in one asyncio process, the
registration scheduler, and the loopback control API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.clients import ClientLog, overlaps
from lab.credentials import LabCredentials, load_or_create
from lab.fleetbuild import BuiltLab, build_fleet
from lab.inventory_out import write_inventory
from lab.provisioning import LinkRecord, ProvisioningSystem
from lab.snmp.agent import AgentFaults, SnmpAgent, UsmUser
from lab.ssh.server import SshDevice
from lab.topology import HEADEND_DIALECTS, Topology
from lab.views import build_tree


@dataclass
class Knobs:
    """Fault knobs an operator or test sets through the control API."""

    unreachable: bool = False
    slow_s: float = 0.0
    snmp_gen_err: bool = False
    too_big_bytes: int | None = None
    wrong_credentials: bool = False
    cli_error: str | None = None


@dataclass
class DeviceRuntime:
    name: str
    dialect: str
    host: str
    agent: SnmpAgent | None = None
    ssh: SshDevice | None = None
    knobs: Knobs = field(default_factory=Knobs)
    rebooting: bool = False

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "dialect": self.dialect, "host": self.host,
                             "snmp_port": self.agent.port if self.agent else None,
                             "ssh_port": self.ssh.port if self.ssh else None,
                             "knobs": self.knobs.__dict__, "rebooting": self.rebooting}
        if self.agent:
            d["snmp_stats"] = self.agent.stats.as_dict()
        if self.ssh:
            d["ssh_sessions"] = {"active": self.ssh.active_sessions,
                                 "max_concurrent": self.ssh.max_concurrent_sessions}
        return d


class Lab:
    """A running lab."""

    def __init__(self, topo: Topology, state_dir: Path, *, host: str = "127.0.0.1",
                 snmp_base: int = 0, ssh_base: int = 0, hosts: list[str] | None = None) -> None:
        self.topo = topo
        self.hosts = hosts or []
        self.state_dir = state_dir
        self.host = host
        self.snmp_base = snmp_base
        self.ssh_base = ssh_base
        self.built: BuiltLab = build_fleet(topo)
        self.fleet = self.built.fleet
        self.creds: LabCredentials = load_or_create(state_dir)
        self.devices: dict[str, DeviceRuntime] = {}
        self._ticker: asyncio.Task[None] | None = None
        state_dir.mkdir(parents=True, exist_ok=True)
        self.provisioning = ProvisioningSystem(state_dir / "links.csv")
        for sub in topo.subscribers:
            for sd in sub.devices:
                self.provisioning.links[str(sd.mac)] = LinkRecord(
                    sub.account, str(sd.mac), sd.kind,
                    str(sd.ecm_mac) if sd.kind == "set_top" and sd.ecm_mac else None)
        self.provisioning.write_export()

    def provision(self, *, account: str, mac: bytes, kind: str, cmts: str, node: str,
                  ecm_mac: bytes | None = None, headend: str | None = None) -> LinkRecord:
        """A new device for ``account``, plugged in on ``node`` of ``cmts`` and brought
        online (a set-top: its eCM on the CMTS and its box on the headend), and linked
        in the provisioning system's export."""
        from lab.fleetbuild import _modem
        from lab.model.headend import Dhct

        plan = self.built.nodes.get(node)
        if plan is None or plan.device != cmts:
            raise ValueError(f"node {node!r} is not served by {cmts!r}")
        cm = (ecm_mac or mac) if kind == "set_top" else mac
        if cm in self.fleet.modems or mac in self.fleet.modems:
            raise ValueError(f"{mac.hex(':')} is in the fleet already")
        self.fleet.add_modem(_modem(cm, cmts, node, plan, 0, True, kind, account=account))
        if kind == "set_top":
            he = headend or next(iter(self.fleet.headends), None)
            if he is None:
                raise ValueError("a set-top needs a headend in the topology")
            self.fleet.headends[he].add(Dhct(mac=mac, ecm_mac=cm, account=account))
        rec = LinkRecord(account, mac.hex(":"), kind,
                         cm.hex(":") if kind == "set_top" else None)
        self.provisioning.link(rec)
        return rec

    def snmp_users(self, scrambled: bool = False) -> list[UsmUser]:
        c = self.creds
        x = "-wrong" if scrambled else ""
        return [
            UsmUser(c.snmp_user, "SHA", c.snmp_auth + x, "AES", c.snmp_priv + x, access="rw"),
            UsmUser(c.ro_user, "SHA-256", c.ro_auth + x, "AES", c.ro_priv + x, access="ro"),
        ]

    def communities(self) -> dict[str, Any]:
        return {self.creds.community_ro: "ro"} if self.topo.v2c else {}

    async def start(self) -> None:
        keys = self.state_dir / "host_keys"
        keys.mkdir(parents=True, exist_ok=True)
        if self.hosts and len(self.hosts) < len(self.built.devices):
            raise SystemExit(f"{len(self.built.devices)} devices need as many --hosts")
        for i, spec in enumerate(self.built.devices):
            # With one address per device (--netns) every device uses standard ports.
            host = self.hosts[i] if self.hosts else self.host
            snmp_port = 161 if self.hosts else (self.snmp_base + i if self.snmp_base else 0)
            ssh_port = 22 if self.hosts else (self.ssh_base + i if self.ssh_base else 0)
            rt = DeviceRuntime(spec.name, spec.dialect, host)
            if spec.dialect in HEADEND_DIALECTS:
                backend: Any = self.fleet.headends[spec.name]
            else:
                backend = self.fleet.cmtses[spec.name]
                rt.agent = SnmpAgent(build_tree(backend), communities=self.communities(),
                                     users=self.snmp_users(),
                                     engine_id=_engine_id(i), faults=AgentFaults(),
                                     name=spec.name)
                rt.agent.clients = ClientLog()
                await rt.agent.start(host, snmp_port)
            if spec.ssh:
                rt.ssh = SshDevice(spec.name, spec.dialect, backend=backend,
                                   users={self.creds.ssh_user: self.creds.ssh_password},
                                   authorized_keys=None,
                                   enable_secret=self.creds.enable_secret,
                                   host_key_path=keys / f"{spec.name}.key")
                await rt.ssh.start(host, ssh_port)
            self.devices[spec.name] = rt
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for rt in self.devices.values():
            if rt.agent:
                await rt.agent.stop()
            if rt.ssh:
                await rt.ssh.stop()

    async def _tick(self) -> None:
        sched = self.fleet.sched
        while True:
            sched.run_due()
            nxt = sched.next_due()
            delay = 0.02 if nxt is None else min(0.02, max(0.0, nxt - sched.now()))
            await asyncio.sleep(delay)

    # ---- knobs -----------------------------------------------------------------------

    def apply_knobs(self, name: str) -> None:
        rt = self.devices[name]
        k = rt.knobs
        down = k.unreachable or rt.rebooting
        if rt.agent:
            f = rt.agent.faults
            f.unreachable = down
            f.delay_s = k.slow_s
            f.gen_err = k.snmp_gen_err
            f.too_big_bytes = k.too_big_bytes
            rt.agent.set_users(self.snmp_users(scrambled=k.wrong_credentials))
        if rt.ssh:
            f2 = rt.ssh.faults
            f2.unreachable = down
            f2.slow_s = k.slow_s
            f2.command_error = k.cli_error

    def set_knobs(self, name: str, **changes: Any) -> Knobs:
        rt = self.devices[name]
        for key, value in changes.items():
            if not hasattr(rt.knobs, key):
                raise KeyError(key)
            setattr(rt.knobs, key, value)
        self.apply_knobs(name)
        return rt.knobs

    def reboot(self, name: str) -> None:
        rt = self.devices[name]
        cmts = self.fleet.cmtses.get(name)
        if cmts is None:
            raise KeyError(name)
        cmts.reboot()
        if rt.agent:
            rt.agent.reboot()
        rt.rebooting = True
        self.apply_knobs(name)

        def back() -> None:
            rt.rebooting = False
            self.apply_knobs(name)

        asyncio.get_running_loop().call_later(self.fleet.timings.reboot_s, back)

    def clients(self, name: str) -> dict[str, Any]:
        """Who talked to this device and when; overlapping intervals from different
        source addresses are reported as ``concurrent``."""
        rt = self.devices[name]
        intervals: list[tuple[str, float, float]] = []
        runs: list[dict[str, Any]] = []
        if rt.agent is not None and rt.agent.clients is not None:
            for r in list(rt.agent.clients.runs):
                intervals.append((r.source, r.first, r.last))
                runs.append(r.as_dict())
        sessions: list[dict[str, Any]] = []
        if rt.ssh is not None:
            for sess in list(rt.ssh.sessions):
                src = sess.peer.rsplit(":", 1)[0].strip("[]")
                end = sess.end if sess.end is not None else time.time()
                intervals.append((src, sess.start, end))
                sessions.append({"source": src, "start": sess.start, "end": sess.end})
        return {"device": name, "snmp_runs": runs, "ssh_sessions": sessions,
                "sources": sorted({i[0] for i in intervals}),
                "concurrent": overlaps(intervals)}

    def endpoints(self) -> list[dict[str, Any]]:
        return [rt.describe() for rt in self.devices.values()]


def _engine_id(i: int) -> bytes:
    # RFC 3411 SnmpEngineID, enterprise-specific octets format: 0x80 | enterprise,
    # format 4 (text). Enterprise 8072 (net-snmp) is used for lab engines.
    return bytes([0x80, 0x00, 0x1F, 0x88, 0x04]) + f"enforcer-lab-{i:04d}".encode()


async def serve(topo: Topology, *, state_dir: Path, inventory_out: Path | None,
                host: str, snmp_base: int, ssh_base: int, control_port: int,
                on_ready: Any = None, hosts: list[str] | None = None,
                control_host: str = "127.0.0.1") -> None:
    """Start the lab, write inventory and lab.json, and run until SIGINT/SIGTERM."""
    from lab.control import serve_control

    lab = Lab(topo, state_dir, host=host, snmp_base=snmp_base, ssh_base=ssh_base, hosts=hosts)
    await lab.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    control_task, control_url = await serve_control(lab, host=control_host, port=control_port)
    if inventory_out:
        write_inventory(lab, inventory_out)
    info = {"control_url": control_url, "pid": os.getpid(),
            "inventory": str(inventory_out) if inventory_out else None,
            "devices": lab.endpoints(), "story_account": topo.story_account}
    tmp = state_dir / "lab.json.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str))
    tmp.replace(state_dir / "lab.json")
    if on_ready:
        on_ready(lab, control_url)
    try:
        await stop.wait()
    finally:
        control_task.cancel()
        await lab.stop()
        (state_dir / "lab.json").unlink(missing_ok=True)
