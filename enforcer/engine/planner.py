"""Which devices and MACs an order concerns: the CMTSes in its scope, the CMTS-side MACs
(modems, set-top eCMs) and the set-top boxes for the headend.

A footprint ban does not push every ban to every CMTS (deny lists hold 100-1000
entries): each CMTS in scope looks the MAC up and places a block only where the MAC is
registered (or where the order's node is served); the watcher blocks it wherever it
shows up later (docs/profiles.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Scope
from enforcer.inventory.model import Inventory
from enforcer.store.records import OrderRecord


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

