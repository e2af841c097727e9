"""Order x scope x device kind -> targets (device x MAC x mechanism).

A footprint ban does not push every ban to every CMTS (deny lists hold 100-1000
entries): it is applied where the MAC is registered now, or where its node is served,
and the watcher enforces it wherever the MAC shows up later. See docs/scope.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Scope, Verdict
from enforcer.inventory.model import Inventory
from enforcer.store.records import OrderRecord, TargetSpec


@dataclass(frozen=True)
class CmMac:
    """A MAC the CMTS side must block: a modem, a set-top's eCM, an eMTA or gateway."""

    mac: Mac
    kind: DeviceKind


def cm_macs(order: OrderRecord, ecm_lookup: Mapping[Mac, Mac | None]) -> list[CmMac]:
    """CMTS-side MACs of an order. A set-top's eCM comes from the order or, failing
    that, from the headend (``ecm_lookup``)."""
    out: list[CmMac] = []
    for d in order.devices:
        if d.kind is DeviceKind.SET_TOP:
            ecm = d.ecm_mac or ecm_lookup.get(d.mac)
            if ecm is not None:
                out.append(CmMac(ecm, d.kind))
        else:
            out.append(CmMac(d.mac, d.kind))
    return out


def box_macs(order: OrderRecord) -> list[Mac]:
    return [d.mac for d in order.devices if d.kind is DeviceKind.SET_TOP]


def scope_devices(order: OrderRecord, inv: Inventory) -> list[str]:
    """CMTSes in the order's scope."""
    if order.scope is Scope.FOOTPRINT or not order.node:
        return inv.cmtses()
    return [d for d in inv.node_devices(order.node) if d in inv.cmtses()]


def plan(order: OrderRecord, inv: Inventory, *, mechanisms: Mapping[str, list[str]],
         seen: Mapping[Mac, Mapping[str, Verdict]], ecm_lookup: Mapping[Mac, Mac | None],
         box_seen: Mapping[Mac, list[str]]) -> list[TargetSpec]:
    """Targets for an order.

    ``mechanisms``: device -> its mechanisms in preference order (first is planned;
    fallback on capacity happens at push time). ``seen``: CM MAC -> {device: verdict}
    from targeted look-ups. ``box_seen``: set-top MAC -> headends that know the box.
    """
    in_scope = set(scope_devices(order, inv))
    home = set(inv.node_devices(order.node)) & in_scope if order.node else set()
    targets: list[TargetSpec] = []
    for cm in cm_macs(order, ecm_lookup):
        where = {d for d, v in seen.get(cm.mac, {}).items()
                 if v is not Verdict.ABSENT and d in in_scope}
        for device in sorted(where | home):
            mechs = mechanisms.get(device) or []
            if mechs:
                targets.append(TargetSpec(device, cm.mac, cm.kind, mechs[0]))
    for box in box_macs(order):
        for headend in sorted(box_seen.get(box, [])):
            mechs = mechanisms.get(headend) or []
            if mechs:
                targets.append(TargetSpec(headend, box, DeviceKind.SET_TOP, mechs[0]))
    return targets
