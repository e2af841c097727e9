"""Amending an order (the story: "the non-payment disconnect is upgraded").

An amendment names what changes: the reason, the scope (and node), devices added or
removed, layers added or removed. It is split (``domain.coverage.classify``) into
upgrades, written at once and enforced like a new order, and downgrades, which are a
lift of that part: they wait in a lift request that needs the consent of the policy
governing the order *after* the upgrades (a ``non_payment`` order upgraded to
``threat_of_violence`` and narrowed in one go needs the whole board for the narrowing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from enforcer.domain.coverage import LAYERS, Classified, Definition, classify
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Scope
from enforcer.lifts import LiftError, LiftWorkflow
from enforcer.policy import Policy
from enforcer.store import LiftRequestRecord, OrderRecord, UserRecord
from enforcer.store.errors import Conflict, IdempotencyConflict

_UNSET: Any = object()


@dataclass(frozen=True)
class Changes:
    """What an amendment asks for (``None`` / empty: unchanged)."""

    reason: Reason | None = None
    scope: Scope | None = None
    node: str | None = _UNSET  # _UNSET: unchanged; None: no node
    add_devices: tuple[tuple[Mac, DeviceKind, Mac | None], ...] = ()
    remove_macs: tuple[Mac, ...] = ()
    add_layers: tuple[str, ...] = ()
    remove_layers: tuple[str, ...] = ()
    note: str | None = None
    ticket: str | None = None


@dataclass
class Amended:
    order: OrderRecord
    applied: list[tuple[str, object, object]]
    pending: LiftRequestRecord | None
    superseded: list[str] = field(default_factory=list)
    replayed: bool = False


def _ordered(layers: set[str]) -> tuple[str, ...]:
    return tuple(layer for layer in LAYERS if layer in layers)


def apply_changes(before: Definition, ch: Changes, policy: Policy) -> Definition:
    """The order's definition with ``ch`` applied. A reason change brings the new
    reason's layers and drops those only the old reason brought (unless the amendment
    names layers itself)."""
    reason = ch.reason or before.reason
    layers = set(before.layers)
    if reason is not before.reason:
        old, new = set(policy.for_reason(before.reason).layers), \
            set(policy.for_reason(reason).layers)
        layers = (layers - (old - new)) | new
    layers = (layers | set(ch.add_layers)) - set(ch.remove_layers)
    if not layers:
        raise LiftError(422, "invalid", "the amendment would leave the order no layer")
    unknown = [m for m in ch.remove_macs if m not in before.macs()]
    if unknown:
        raise LiftError(422, "invalid", f"remove_macs: {', '.join(map(str, unknown))} "
                        "not on the order")
    dup = [m for m, _k, _e in ch.add_devices if m in before.macs()]
    if dup:
        raise LiftError(422, "invalid", f"add_devices: {', '.join(map(str, dup))} already "
                        "on the order")
    devices = tuple(d for d in before.devices if d[0] not in set(ch.remove_macs)) + \
        tuple(ch.add_devices)
    if not devices:
        raise LiftError(422, "invalid", "the amendment would leave the order no device; "
                        "lift the order instead")
    scope = ch.scope or before.scope
    node = before.node if ch.node is _UNSET else ch.node
    return Definition(reason, scope, node, devices, _ordered(layers))


def upgrades_only(before: Definition, after: Definition, cls: Classified) -> Definition:
    """``before`` with only the upgrading part of ``before -> after``."""
    kinds = {c[0] for c in cls.upgrades}
    return Definition(
        reason=after.reason if "reason" in kinds else before.reason,
        scope=after.scope if "scope" in kinds else before.scope,
        node=after.node if "scope" in kinds else before.node,
        devices=before.devices + tuple(d for d in after.devices if d[0] not in before.macs()),
        layers=_ordered(set(before.layers) | set(after.layers)))


@dataclass
class AmendWorkflow:
    store: Any  # enforcer.store.Store
    policy: Policy
    lifts: LiftWorkflow

    def amend(self, order_id: str, user: UserRecord, ch: Changes, *,
              may_downgrade: bool, idempotency: tuple[str, str] | None = None) -> Amended:
        """Apply the upgrades of ``ch`` now and open a lift request for its downgrades.
        ``may_downgrade``: the caller may ask for a lift (else a downgrade is 403 and
        nothing is changed). Raises :class:`LiftError` (4xx)."""
        if idempotency is not None:
            try:
                done = self.store.replayed(idempotency)
            except IdempotencyConflict as e:
                raise LiftError(409, "idempotency_conflict", str(e)) from None
            if done is not None:
                return Amended(self.store.get_order(done), [], None, replayed=True)
        order: OrderRecord = self.store.get_order(order_id)
        policy_layers = list(self.policy.for_reason(order.reason).layers)
        before = Definition.of(order, policy_layers)
        after = apply_changes(before, ch, self.policy)
        cls = classify(before, after, lambda r: self.policy.for_reason(r).lift)
        if not cls.upgrades and not cls.downgrades:
            raise LiftError(422, "invalid", "the amendment changes nothing")
        if cls.downgrades and not may_downgrade:
            raise LiftError(403, "forbidden", "the amendment weakens the ban ("
                            + ", ".join(c[0] for c in cls.downgrades) + "): that is a lift of "
                            "that part and needs a role that may request lifts")
        mid = upgrades_only(before, after, cls) if cls.upgrades else before
        superseded: list[str] = []
        replayed = False
        if cls.upgrades:
            try:
                order, applied, superseded = self.store.amend_order(
                    order_id, before=before, after=mid, policy_layers=policy_layers,
                    changes=[list(c) for c in cls.upgrades], actor=user.name, note=ch.note,
                    ticket=ch.ticket, idempotency=idempotency)
            except IdempotencyConflict as e:
                raise LiftError(409, "idempotency_conflict", str(e)) from None
            except Conflict as e:
                raise LiftError(409, "conflict", str(e)) from None
            replayed = not applied
        pending = None
        if cls.downgrades and not replayed:
            down = classify(mid, after, lambda r: self.policy.for_reason(r).lift)
            pending = self.lifts.request(
                order_id, user, reason=ch.note or "amendment: " + ", ".join(
                    c[0] for c in cls.downgrades),
                amendment={"before": mid.to_json(), "after": after.to_json(),
                           "changes": [list(c) for c in down.downgrades]})
            if idempotency is not None and not cls.upgrades:
                self.store.record_receipt(idempotency, order_id)
            order = self.store.get_order(order_id)
        return Amended(order, [] if replayed else list(cls.upgrades), pending, superseded,
                       replayed)
