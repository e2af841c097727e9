"""Build a lab Fleet from a topology: devices, generated modems and set-tops, and the
named subscribers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lab.model import Dhct, Fleet, Modem, Timings
from lab.topology import HEADEND_DIALECTS, DeviceSpec, Topology, ecm_of, generated_mac


@dataclass
class NodePlan:
    device: str
    md_if: int
    us_ifs: list[int]
    ds_if: int


@dataclass
class BuiltLab:
    fleet: Fleet
    devices: list[DeviceSpec]
    nodes: dict[str, NodePlan] = field(default_factory=dict)


def build_fleet(topo: Topology) -> BuiltLab:
    t = Timings(**topo.timings.model_dump())
    fleet = Fleet(t)
    devices = topo.expanded_devices()
    built = BuiltLab(fleet=fleet, devices=devices)
    rng = random.Random(topo.name)
    headend_name: str | None = None
    for d in devices:
        if d.dialect in HEADEND_DIALECTS:
            fleet.add_headend(d.name)
            headend_name = headend_name or d.name
    for dev_no, d in enumerate(devices, start=topo.first_device_number):
        if d.dialect in HEADEND_DIALECTS:
            continue
        fleet.add_cmts(d.name, d.dialect, deny_capacity=d.deny_capacity, layout=d.layout)
        for node_no, n in enumerate(d.nodes, start=1):
            plan = NodePlan(device=d.name, md_if=1000 + node_no,
                            us_ifs=[2000 + node_no * 10 + j for j in range(4)],
                            ds_if=3000 + node_no * 10)
            built.nodes[n.name] = plan
            for i in range(n.modems):
                mac = generated_mac(dev_no, node_no, i)
                fleet.add_modem(_modem(mac, d.name, n.name, plan, i, rng.random() <
                                       topo.bpi_plus_ratio, "cable_modem"))
            for i in range(n.set_tops):
                stb = generated_mac(dev_no, node_no, i, set_top=True)
                ecm = ecm_of(stb)
                fleet.add_modem(_modem(ecm, d.name, n.name, plan, i, True, "set_top"))
                if headend_name:
                    fleet.headends[headend_name].add(Dhct(mac=stb, ecm_mac=ecm))
    for sub in topo.subscribers:
        for sd in sub.devices:
            plan = built.nodes[sd.node]
            if plan.device != sd.cmts:
                raise SystemExit(f"subscriber {sub.account}: node {sd.node} is on "
                                 f"{plan.device}, not {sd.cmts}")
            if sd.kind == "cable_modem":
                fleet.add_modem(_modem(sd.mac.packed, sd.cmts, sd.node, plan, 0, sd.bpi_plus,
                                       "cable_modem", account=sub.account))
            else:
                ecm = (sd.ecm_mac or sd.mac).packed
                fleet.add_modem(_modem(ecm, sd.cmts, sd.node, plan, 1, sd.bpi_plus,
                                       "set_top", account=sub.account))
                he = sub.headend or headend_name
                if he:
                    fleet.headends[he].add(Dhct(mac=sd.mac.packed, ecm_mac=ecm,
                                                account=sub.account))
    return built


def _modem(mac: bytes, cmts: str, node: str, plan: NodePlan, i: int, bpi: bool, kind: str,
           account: str = "") -> Modem:
    ip = bytes([100, 64 + (mac[2] & 0x3F), mac[4], mac[5] or 1])
    return Modem(mac=mac, cmts=cmts, node=node, md_if=plan.md_if,
                 us_if=plan.us_ifs[i % len(plan.us_ifs)], ds_if=plan.ds_if, ip=ip, kind=kind,
                 account=account, bpi_plus=bpi)
