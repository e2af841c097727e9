"""Which orders need which blocks: enforcement is a property of the MAC on the network,
not of one order record.

A *block* is (device, MAC, mechanism). It is *needed* by every active order whose
definition (reason's layers, scope, devices) puts that MAC on that device; it may be
removed only when no active order other than the one being lifted still needs the MAC
there. What stays is handed to the orders that still need it (they *own* it from then
on). Pure functions: no I/O, no store, no asyncio.

Amendments are classified here too: an *upgrade* (a stricter reason, a wider scope,
more devices, another layer) takes effect at once; a *downgrade* (the reverse) is a
lift of that part and needs the consent of the policy that governs the order now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from enforcer.domain.mac import Mac
from enforcer.domain.model import ACTIVE_ORDER_STATES, DeviceKind, OrderState, Reason, Scope

#: Enforcement layers in the order they are applied.
LAYERS: tuple[str, ...] = ("dhcp", "cmts", "headend")
#: Scopes from the narrowest to the widest (``cmts`` and ``node`` both start from the
#: subscriber's node; ``footprint`` is every CMTS).
SCOPE_RANK = {Scope.NODE: 0, Scope.CMTS: 1, Scope.FOOTPRINT: 2}
#: Reasons from the least to the most severe: the tie-break when two reasons' lift
#: policies are equally strict (a reason change is never neutral).
REASON_RANK = {Reason.NON_PAYMENT: 0, Reason.OTHER: 1, Reason.THEFT_OF_SERVICE: 2,
               Reason.FRAUD: 3, Reason.HARASSMENT: 4, Reason.THREAT_OF_VIOLENCE: 5}
RULE_RANK = {"any": 0, "n_of_m": 1, "unanimous": 2}


class DeviceLike(Protocol):
    @property
    def mac(self) -> Mac: ...
    @property
    def kind(self) -> DeviceKind: ...
    @property
    def ecm_mac(self) -> Mac | None: ...


class OrderLike(Protocol):
    """What coverage reads of an order (``OrderRecord`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def reason(self) -> Reason: ...
    @property
    def scope(self) -> Scope: ...
    @property
    def node(self) -> str | None: ...
    @property
    def state(self) -> OrderState: ...
    @property
    def devices(self) -> Sequence[DeviceLike]: ...
    @property
    def layers(self) -> tuple[str, ...] | None: ...


class ConsentLike(Protocol):
    """A lift policy (``policy.model.LiftPolicy``)."""

    @property
    def group(self) -> str | None: ...
    @property
    def n(self) -> int | None: ...
    @property
    def rule(self) -> str: ...


@dataclass(frozen=True)
class Topology:
    """The inventory as coverage needs it: which devices are CMTSes, headends and DHCP
    servers, and which devices serve each fiber node."""

    cmtses: frozenset[str]
    headends: frozenset[str] = frozenset()
    dhcp: frozenset[str] = frozenset()
    nodes: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def layer_of(self, device: str) -> str:
        if device in self.cmtses:
            return "cmts"
        if device in self.headends:
            return "headend"
        if device in self.dhcp:
            return "dhcp"
        raise KeyError(device)

    def scope_devices(self, scope: Scope, node: str | None) -> list[str]:
        """CMTSes in a scope: every CMTS for a footprint (or no known node), else the
        CMTSes serving the node."""
        if scope is Scope.FOOTPRINT or not node or node not in self.nodes:
            return sorted(self.cmtses)
        return sorted(d for d in self.nodes[node] if d in self.cmtses)


def effective_layers(order: OrderLike, policy_layers: Iterable[str]) -> list[str]:
    """The layers that hold the order, in application order: the order's own list once
    an amendment set one, else the reason's (the policy's)."""
    wanted = set(order.layers) if order.layers is not None else set(policy_layers)
    return [layer for layer in LAYERS if layer in wanted]


def definition_key(order: OrderLike) -> str:
    """A digest of what the order asks for (reason, scope, node, its own layers, devices
    with their eCMs): a device's answer computed for one definition does not count for
    another (an amendment or a learnt eCM in between). JSON, so no node name can pass
    for no node or for another part."""
    import hashlib
    import json

    parts = [order.reason.value, order.scope.value, order.node,
             list(order.layers) if order.layers is not None else None,
             sorted([str(d.mac), d.kind.value, str(d.ecm_mac or "")] for d in order.devices)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def cmts_macs(order: OrderLike) -> set[Mac]:
    """MACs the CMTS and DHCP layers block: modems, eMTAs, gateways and set-tops' eCMs."""
    out: set[Mac] = set()
    for d in order.devices:
        if d.kind is DeviceKind.SET_TOP:
            if d.ecm_mac is not None:
                out.add(d.ecm_mac)
        else:
            out.add(d.mac)
    return out


def box_macs(order: OrderLike) -> set[Mac]:
    """MACs the headend layer disconnects: set-top boxes."""
    return {d.mac for d in order.devices if d.kind is DeviceKind.SET_TOP}


def is_active(order: OrderLike) -> bool:
    return order.state in ACTIVE_ORDER_STATES


def needs(order: OrderLike, device: str, mac: Mac, topo: Topology,
          policy_layers: Iterable[str], *, held: bool = False) -> bool:
    """True when ``order`` (if active) needs ``mac`` blocked on ``device``. ``held``: the
    order already holds a target for the MAC there (a footprint sighting, a device the
    modem moved to), which counts as in scope."""
    if not is_active(order):
        return False
    try:
        layer = topo.layer_of(device)
    except KeyError:
        return held  # a device no longer in inventory: only what it already holds
    if layer not in effective_layers(order, policy_layers):
        return False
    if layer == "headend":
        return mac in box_macs(order)
    if mac not in cmts_macs(order):
        return False
    if layer == "dhcp":
        return True
    return held or device in topo.scope_devices(order.scope, order.node)


def holders(releasing: str, device: str, mac: Mac, others: Iterable[OrderLike],
            topo: Topology, layers_of: Callable[[OrderLike], Iterable[str]],
            held_by: Mapping[str, set[tuple[str, Mac]]] | None = None) -> list[str]:
    """Ids of the active orders other than ``releasing`` that still need ``mac`` on
    ``device``: while any exists, the block stays. ``held_by``: order id -> the
    (device, MAC) pairs its live targets hold."""
    out = []
    for o in others:
        if o.id == releasing:
            continue
        held = (device, mac) in (held_by or {}).get(o.id, set())
        if needs(o, device, mac, topo, layers_of(o), held=held):
            out.append(o.id)
    return sorted(out)


# ---- strictness and amendments ---------------------------------------------------------


def consent_rank(lift: ConsentLike) -> tuple[int, int, int]:
    """How hard a lift policy is to satisfy: unanimous > n of m > any; a named group
    over any approver; more approvals over fewer."""
    return (RULE_RANK[str(lift.rule)], 1 if lift.group else 0, lift.n or 0)


def reason_rank(reason: Reason, consent: Callable[[Reason], ConsentLike]) -> tuple[int, ...]:
    return (*consent_rank(consent(reason)), REASON_RANK[reason])


def strictest(reasons: Iterable[Reason],
              consent: Callable[[Reason], ConsentLike]) -> Reason | None:
    """The reason whose lift policy governs a MAC held by orders of ``reasons``."""
    rs = list(reasons)
    return max(rs, key=lambda r: reason_rank(r, consent)) if rs else None


@dataclass(frozen=True)
class Definition:
    """What an amendment may change about an order."""

    reason: Reason
    scope: Scope
    node: str | None
    devices: tuple[tuple[Mac, DeviceKind, Mac | None], ...]
    layers: tuple[str, ...]

    def macs(self) -> set[Mac]:
        return {m for m, _k, _e in self.devices}

    def to_json(self) -> dict[str, object]:
        return {"reason": self.reason.value, "scope": self.scope.value, "node": self.node,
                "devices": [{"mac": str(m), "kind": k.value,
                             "ecm_mac": str(e) if e is not None else None}
                            for m, k, e in self.devices],
                "layers": list(self.layers)}

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> Definition:
        devices = d["devices"]
        layers = d["layers"]
        if not isinstance(devices, list) or not isinstance(layers, list):
            raise ValueError("devices and layers must be lists")
        return cls(
            reason=Reason(str(d["reason"])), scope=Scope(str(d["scope"])),
            node=str(d["node"]) if d.get("node") is not None else None,
            devices=tuple((Mac(str(x["mac"])), DeviceKind(str(x["kind"])),
                           Mac(str(x["ecm_mac"])) if x.get("ecm_mac") else None)
                          for x in devices),
            layers=tuple(str(x) for x in layers))

    @classmethod
    def of(cls, order: OrderLike, policy_layers: Iterable[str]) -> Definition:
        """An order's definition now (its effective layers spelt out)."""
        return cls(order.reason, order.scope, order.node,
                   tuple((d.mac, d.kind, d.ecm_mac) for d in order.devices),
                   tuple(effective_layers(order, policy_layers)))

    def as_order(self, order_id: str) -> DefinedOrder:
        """An active order with this definition (for ``needs``)."""
        return DefinedOrder(order_id, self.reason, self.scope, self.node,
                            tuple(DefinedDevice(m, k, e) for m, k, e in self.devices),
                            self.layers)


@dataclass(frozen=True)
class DefinedDevice:
    mac: Mac
    kind: DeviceKind
    ecm_mac: Mac | None


@dataclass(frozen=True)
class DefinedOrder:
    """An active order known only by its definition (an amendment's before or after)."""

    id: str
    reason: Reason
    scope: Scope
    node: str | None
    devices: tuple[DefinedDevice, ...]
    layers: tuple[str, ...] | None
    state: OrderState = OrderState.VERIFIED


@dataclass(frozen=True)
class Classified:
    """An amendment split into what takes effect at once and what needs consent.
    Each change is ``(field, before, after)`` with plain JSON values."""

    upgrades: tuple[tuple[str, object, object], ...]
    downgrades: tuple[tuple[str, object, object], ...]


def classify(before: Definition, after: Definition,
             consent: Callable[[Reason], ConsentLike]) -> Classified:
    """Upgrades and downgrades from ``before`` to ``after``."""
    up: list[tuple[str, object, object]] = []
    down: list[tuple[str, object, object]] = []
    if after.reason is not before.reason:
        stricter = reason_rank(after.reason, consent) > reason_rank(before.reason, consent)
        (up if stricter else down).append(("reason", before.reason.value, after.reason.value))
    if after.scope is not before.scope or after.node != before.node:
        b, a = SCOPE_RANK[before.scope], SCOPE_RANK[after.scope]
        # A footprint covers every node; otherwise a node change both adds and removes.
        wider = a > b or (a == b == SCOPE_RANK[Scope.FOOTPRINT])
        if a < b or (a == b and after.node != before.node and not wider):
            down.append(("scope", [before.scope.value, before.node],
                         [after.scope.value, after.node]))
        else:
            up.append(("scope", [before.scope.value, before.node],
                       [after.scope.value, after.node]))
    added = sorted(str(m) for m in after.macs() - before.macs())
    removed = sorted(str(m) for m in before.macs() - after.macs())
    if added:
        up.append(("devices", [], added))
    if removed:
        down.append(("devices", removed, []))
    more = sorted(set(after.layers) - set(before.layers))
    fewer = sorted(set(before.layers) - set(after.layers))
    if more:
        up.append(("layers", [], more))
    if fewer:
        down.append(("layers", fewer, []))
    return Classified(tuple(up), tuple(down))
