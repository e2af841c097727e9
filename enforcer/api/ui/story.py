"""What the pages show, gathered from the store (the same reads the HTTP API makes):
an order's story, its timeline from the audit trail, and the lift requests waiting
for a decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from enforcer.domain.model import OrderState, Role
from enforcer.store import AuditRecord, LiftRequestRecord, OrderRecord, Store, TargetRecord
from enforcer.store.records import UserRecord

#: Audit actions that tell an order's story on a page (everything else is in the bundle).
SIGHTING, BREACH = "ban.sighting", "target.drift"


@dataclass
class Story:
    """Imposed, verified, sightings (the banned MAC seen elsewhere) and breaches (a block
    found missing and repaired), with the targets' progress."""

    imposed_at: datetime
    verified_at: datetime | None
    targets: int
    verified: int
    sightings: list[AuditRecord] = field(default_factory=list)
    breaches: list[AuditRecord] = field(default_factory=list)


@dataclass
class Vote:
    member: str
    decision: str | None
    note: str | None
    at: datetime | None


@dataclass
class LiftCard:
    order: OrderRecord
    lift: LiftRequestRecord
    votes: list[Vote]
    approvals: int
    story: Story
    can_decide: bool


def story(order: OrderRecord, targets: list[TargetRecord],
          entries: list[AuditRecord]) -> Story:
    live = [t for t in targets if t.state.value != "removed"]
    return Story(order.created_at, order.verified_at, len(live),
                 sum(1 for t in live if t.state.value == "verified"),
                 [e for e in entries if e.action == SIGHTING],
                 [e for e in entries if e.action == BREACH])


def votes(lift: LiftRequestRecord) -> list[Vote]:
    """Each member of the frozen electorate and their decision so far (None: waiting);
    decisions by anyone else are not counted and not listed here."""
    by = {a.approver: a for a in lift.approvals}
    return [Vote(m, by[m].decision if m in by else None, by[m].note if m in by else None,
                 by[m].created_at if m in by else None) for m in (lift.electorate or ())]


def may_decide(user: UserRecord, lift: LiftRequestRecord) -> bool:
    """Whether to offer ``user`` the buttons. Only a hint for the page: the lift workflow
    decides (and refuses, audited) whatever is posted."""
    return (user.role is Role.APPROVER and lift.state == "open"
            and user.name in (lift.electorate or ())
            and all(a.approver != user.name for a in lift.approvals))


def lift_card(store: Store, user: UserRecord, order: OrderRecord,
              lift: LiftRequestRecord) -> LiftCard:
    targets = store.targets_for_order(order.id)
    entries = store.audit_entries(order_id=order.id, limit=100_000)
    return LiftCard(order, lift, votes(lift),
                    sum(1 for a in lift.approvals if a.decision == "approve"),
                    story(order, targets, entries), may_decide(user, lift))


def open_lifts(store: Store, user: UserRecord) -> list[LiftCard]:
    """Every open lift request (orders in ``lift_pending``), those waiting for ``user``
    first, then the soonest to expire."""
    cards = []
    for order in store.list_orders(OrderState.LIFT_PENDING, None, 1000, 0):
        lift = store.open_lift_request(order.id)
        if lift is not None:
            cards.append(lift_card(store, user, order, lift))
    return sorted(cards, key=lambda c: (not c.can_decide, c.lift.expires_at))


def describe(e: AuditRecord) -> str:
    """One line for a timeline entry: the payload's short scalar fields."""
    p: dict[str, Any] = e.payload or {}
    if e.action == "order.state":
        return f"{p.get('from')} → {p.get('to')}" + (
            f" ({p['detail']})" if p.get("detail") else "")
    keep = ("device", "mac", "mechanism", "decision", "note", "why", "message", "reason",
            "state", "verdict", "lift_request_id", "rule", "needed", "error", "last_error")
    parts = [f"{k}={p[k]}" for k in keep if isinstance(p.get(k), str | int | float)
             and not isinstance(p.get(k), bool)]
    text = ", ".join(parts)
    return text if len(text) <= 200 else text[:199] + "…"


def by_device(targets: list[TargetRecord]) -> list[tuple[str, list[TargetRecord]]]:
    out: dict[str, list[TargetRecord]] = {}
    for t in targets:
        out.setdefault(t.device, []).append(t)
    return sorted(out.items())
