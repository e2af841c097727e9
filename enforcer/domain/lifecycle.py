"""The order and block lifecycle as pure functions: which states an order passes
through, which devices' answers it waits for, and how its state follows from those
answers and from its targets (blocks). No I/O, no store, no asyncio: the store
persists what these functions decide, the engine acts on it.

An order is banned while it is in ``BAN_STATES``; each device relevant to it records a
*scan* (its answer for the order: phase ``ban`` or ``lift``, ok or not). The order is
``verified`` once every relevant device answered ``ban`` ok; ``lifted`` once every
device holding one of its blocks answered ``lift`` ok. Which blocks an order needs on
which device is :func:`enforcer.domain.coverage.needs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from enforcer.domain.coverage import OrderLike, Topology, box_macs, effective_layers
from enforcer.domain.model import OrderState, TargetState

#: States in which an order's blocks are to be in place (device loops scan it for a ban).
BAN_STATES: tuple[OrderState, ...] = (OrderState.ACCEPTED, OrderState.ENFORCING,
                                      OrderState.ENFORCED, OrderState.VERIFIED)
#: States a device loop looks at for a ban pass (a lift waiting for approvals keeps
#: its blocks, and keeps them enforced).
SCANNED_FOR_BAN: tuple[OrderState, ...] = (*BAN_STATES, OrderState.LIFT_PENDING)
#: States in which the order's blocks are being removed.
LIFT_STATES: tuple[OrderState, ...] = (OrderState.LIFTING,)
#: Target states whose next attempt is scheduled (pushed when due).
DUE_TARGET_STATES: tuple[TargetState, ...] = (TargetState.PENDING, TargetState.RETRYING)
#: Target states of a block known to be on the device.
APPLIED_TARGET_STATES: tuple[TargetState, ...] = (TargetState.APPLIED, TargetState.VERIFIED)

#: A device's answer for an order: for a ban pass, or for a lift pass.
Phase = Literal["ban", "lift"]
BAN: Phase = "ban"
LIFT: Phase = "lift"


class ScanLike(Protocol):
    """One device's recorded answer for an order (a store row has these)."""

    @property
    def device(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...


class TargetLike(Protocol):
    """A block of the order (``TargetRecord``, or a store row whose state is text)."""

    @property
    def state(self) -> str: ...


def is_live(target: TargetLike) -> bool:
    """The block is (or is to be) on the device: not removed."""
    return TargetState(target.state) is not TargetState.REMOVED


def relevant_devices(order: OrderLike, targets: Iterable[tuple[str, TargetState]],
                     topo: Topology, policy_layers: Iterable[str]) -> list[str]:
    """Devices whose answer the order's state waits for. While lifting: the devices
    holding its blocks (``targets``: (device, state) of each). Otherwise, by the order's
    layers: the CMTSes in its scope, every headend when it names a set-top, every DHCP
    server; plus every device already holding a live block of it."""
    held = list(targets)
    if OrderState(order.state) in (*LIFT_STATES, OrderState.LIFTED):
        return sorted({d for d, _ in held})
    layers = effective_layers(order, policy_layers)
    devices: set[str] = set()
    if "cmts" in layers:
        devices |= set(topo.scope_devices(order.scope, order.node))
    if "headend" in layers and box_macs(order):
        devices |= set(topo.headends)
    if "dhcp" in layers:
        devices |= set(topo.dhcp)
    devices |= {d for d, st in held if st is not TargetState.REMOVED}
    return sorted(devices)


def derive(state: OrderState | str, relevant: Sequence[str], scans: Mapping[str, ScanLike],
           targets: Sequence[TargetLike]) -> tuple[OrderState | None, str]:
    """The order's state (and its one-line detail) from the relevant devices' scans
    (by device) and its targets; None when this state is not derived from scans
    (``lift_pending``, ``lifted``: set by the lift workflow)."""
    current = OrderState(state)
    n = len(relevant)
    if current in BAN_STATES:
        answered = [scans[d] for d in relevant if d in scans and scans[d].phase == BAN]
        bad = [x for x in answered if not x.ok]
        if len(answered) == n and not bad:
            return OrderState.VERIFIED, f"blocked or absent on all {n} device(s) in scope"
        applied = all(TargetState(t.state) in APPLIED_TARGET_STATES
                      for t in targets if is_live(t))
        if len(answered) == n:
            first = bad[0]
            why = str(first.detail.get("why", "not confirmed"))
            return (OrderState.ENFORCED if applied else OrderState.ENFORCING), \
                f"{len(bad)} device(s) not confirmed yet; {first.device}: {why}"
        return OrderState.ENFORCING, f"{len(answered)} of {n} device(s) answered"
    if current in LIFT_STATES:
        done = [scans[d] for d in relevant if d in scans and scans[d].phase == LIFT]
        bad = [x for x in done if not x.ok]
        # With no target at all, some device must still have answered for the lift:
        # only a lift the audit trail proves gets a lift scan (``LiftGate``).
        any_lift = bool(n) or any(x.phase == LIFT for x in scans.values())
        if len(done) == n and not bad and any_lift:
            return OrderState.LIFTED, f"every block removed; service confirmed on {n} device(s)"
        if bad:
            return OrderState.LIFTING, \
                f"{bad[0].device}: {bad[0].detail.get('why', 'not restored yet')}"
        return OrderState.LIFTING, f"{len(done)} of {n} device(s) restored"
    return None, ""
