"""Lift requests and approvals.

``request_lift`` freezes the policy's rule and electorate on the request; ``decide_lift``
records one approver's decision, evaluates the rule (a callback from the workflow,
``enforcer.lifts``) and applies the outcome to the order in the same transaction, so
two approvers deciding at once cannot both miss (or both trigger) the lift. Nothing
here removes a block: an approved request moves the order to ``lifting`` and the engine
does the rest. Every rejected decision is audited (``lift.approval_rejected``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enforcer.domain.model import ACTIVE_ORDER_STATES, OrderState
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import Conflict, NotFound
from enforcer.store.ids import new_lift_id
from enforcer.store.records import LiftRequestRecord

DECISIONS = ("approve", "refuse")
_LIFTABLE = {OrderState.ACCEPTED.value, OrderState.ENFORCING.value, OrderState.ENFORCED.value,
             OrderState.VERIFIED.value}
_ACTIVE = {st.value for st in ACTIVE_ORDER_STATES}
#: Outcomes of ``decide_lift`` that recorded nothing (the attempt is audited).
REJECTIONS = frozenset({"expired", "closed", "duplicate", "not_eligible", "requester",
                        "no_rule"})
Evaluate = Callable[[LiftRequestRecord], str | None]


@dataclass(frozen=True, slots=True)
class Decided:
    """What ``decide_lift`` did: ``outcome`` is ``recorded`` (request still open),
    ``approved`` (order -> lifting), ``refused`` (order back), or a rejection."""

    lift: LiftRequestRecord
    outcome: str
    message: str


def _load(session: Session, lift_id: str) -> LiftRequestRecord:
    row = session.get(s.LiftRequest, lift_id)
    if row is None:
        raise NotFound(f"no lift request {lift_id}")
    approvals = session.scalars(select(s.Approval).where(s.Approval.lift_request_id == lift_id))
    return convert.lift_request(row, list(approvals))


class LiftsMixin(StoreBase):
    def request_lift(self, order_id: str, *, requested_by: str, reason: str,
                     ttl: timedelta = timedelta(days=7), on_behalf_of: str | None = None,
                     group: str | None = None, rule: str | None = None,
                     needed: int | None = None,
                     electorate: Sequence[str] | None = None,
                     amendment: dict[str, Any] | None = None) -> LiftRequestRecord:
        """Open a lift request and move the order to ``lift_pending`` (the ban stays in
        force). ``group``, ``rule``, ``needed`` and ``electorate`` freeze the policy on
        the request. ``amendment`` (a downgrade: ``before``, ``after``, ``changes``):
        approving the request applies it instead of lifting the whole order. Raises
        :class:`Conflict` if the order is not active or one is open."""
        with self.write_session() as session:
            order = session.get(s.Order, order_id)
            if order is None:
                raise NotFound(f"no order {order_id}")
            if order.state not in _LIFTABLE:
                raise Conflict(f"order {order_id} is {order.state}; it cannot be lifted now")
            now = self.clock()
            row = s.LiftRequest(
                id=new_lift_id(now), order_id=order_id, requested_by=requested_by,
                reason=reason, state="open", created_at=now, expires_at=now + ttl,
                on_behalf_of=on_behalf_of, policy_group=group, rule=rule, needed=needed,
                electorate=list(electorate) if electorate is not None else None,
                order_state_before=order.state, amendment=amendment)
            session.add(row)
            before, order.state, order.updated_at = order.state, OrderState.LIFT_PENDING.value, now
            order.state_detail = (f"amendment requested ({row.id})" if amendment
                                  else f"lift requested ({row.id})")
            session.flush()
            self.audit(session, requested_by, "lift.requested", order_id, {
                "lift_request_id": row.id, "reason": reason, "expires_at": row.expires_at,
                "order_state_before": before, "on_behalf_of": on_behalf_of, "group": group,
                "rule": rule, "needed": needed,
                "electorate": list(electorate) if electorate is not None else None,
                "amendment": amendment})
            lift = _load(session, row.id)
            if getattr(self, "outbox_enabled", False):  # notified in this transaction
                from enforcer.lifts import _event_payload as event_payload
                self.outbox_add(session, "lift.requested",  # type: ignore[attr-defined]
                                event_payload(lift, order.reason), reason=order.reason)
            return lift

    def record_approval(self, lift_id: str, *, approver: str, decision: str,
                        note: str | None = None) -> LiftRequestRecord:
        """Record one decision without evaluating any rule (low level; the workflow uses
        :meth:`decide_lift`). :class:`Conflict` if the request is not open or the
        approver already decided; a request past its expiry is marked ``expired``."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        with self.write_session() as session:
            row = session.get(s.LiftRequest, lift_id)
            if row is None:
                raise NotFound(f"no lift request {lift_id}")
            now = self.clock()
            if row.state == "open" and row.expires_at <= now:
                close_lift(self, session, row, "expired", "system", now)
                return _load(session, lift_id)
            if row.state != "open":
                raise Conflict(f"lift request {lift_id} is {row.state}")
            if self._decided(session, lift_id, approver):
                raise Conflict(f"{approver} has already decided on {lift_id}")
            self._add_decision(session, row, approver, decision, note, now)
            return _load(session, lift_id)

    def decide_lift(self, lift_id: str, *, approver: str, decision: str,
                    note: str | None, evaluate: Evaluate) -> Decided:
        """Check, record and evaluate one approver's decision in one transaction."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        with self.write_session() as session:
            row = session.get(s.LiftRequest, lift_id)
            if row is None:
                raise NotFound(f"no lift request {lift_id}")
            now = self.clock()
            if row.state == "open" and row.expires_at <= now:
                close_lift(self, session, row, "expired", "system", now)
            why = self._rejection(session, row, approver)
            if why is not None:
                outcome, message = why
                self.audit(session, approver, "lift.approval_rejected", row.order_id, {
                    "lift_request_id": lift_id, "decision": decision, "why": outcome,
                    "message": message})
                return Decided(_load(session, lift_id), outcome, message)
            self._add_decision(session, row, approver, decision, note, now)
            verdict = evaluate(_load(session, lift_id))
            if verdict in ("approved", "refused"):
                close_lift(self, session, row, verdict, approver, now)
                return Decided(_load(session, lift_id), verdict, f"lift request {verdict}")
            return Decided(_load(session, lift_id), "recorded", f"{decision} recorded")

    def expire_open_lifts(self, now: datetime | None = None) -> list[LiftRequestRecord]:
        """Mark every open request whose expiry is at or before ``now`` (default: the
        store's clock) ``expired`` (the order goes back to its state before the
        request); returns them."""
        now = now or self.clock()
        with self.write_session() as session:
            rows = list(session.scalars(select(s.LiftRequest).where(
                s.LiftRequest.state == "open", s.LiftRequest.expires_at <= now)
                .order_by(s.LiftRequest.expires_at)))
            for row in rows:
                close_lift(self, session, row, "expired", "system", now)
            return [_load(session, r.id) for r in rows]

    def get_lift_request(self, lift_id: str) -> LiftRequestRecord:
        with self.read_session() as session:
            return _load(session, lift_id)

    def lift_requests_for_order(self, order_id: str) -> list[LiftRequestRecord]:
        with self.read_session() as session:
            ids = session.scalars(select(s.LiftRequest.id).where(
                s.LiftRequest.order_id == order_id).order_by(s.LiftRequest.created_at)).all()
            return [_load(session, i) for i in ids]

    def open_lift_request(self, order_id: str) -> LiftRequestRecord | None:
        reqs = [r for r in self.lift_requests_for_order(order_id) if r.state == "open"]
        return reqs[-1] if reqs else None

    # ---- helpers (inside a write transaction) ------------------------------------------

    @staticmethod
    def _decided(session: Session, lift_id: str, approver: str) -> bool:
        return session.scalar(select(s.Approval.id).where(
            s.Approval.lift_request_id == lift_id, s.Approval.approver == approver)) is not None

    def _rejection(self, session: Session, row: s.LiftRequest,
                   approver: str) -> tuple[str, str] | None:
        if row.state == "expired":
            return "expired", f"lift request {row.id} has expired"
        if row.state != "open":
            return "closed", f"lift request {row.id} is {row.state}"
        if row.rule is None or row.electorate is None:
            return "no_rule", (f"lift request {row.id} was made before the policy; "
                               "let it expire and request again")
        if self._decided(session, row.id, approver):
            return "duplicate", f"{approver} has already decided on {row.id}"
        if approver not in row.electorate:
            if approver in (row.requested_by, row.on_behalf_of):
                return "requester", f"{approver} asked for this lift and may not approve it"
            where = f"group {row.policy_group}" if row.policy_group else "the approvers"
            return "not_eligible", (f"{approver} is not one of the approvers of {row.id} "
                                    f"({where} when it was requested)")
        return None

    def _add_decision(self, session: Session, row: s.LiftRequest, approver: str,
                      decision: str, note: str | None, now: datetime) -> None:
        session.add(s.Approval(lift_request_id=row.id, approver=approver, decision=decision,
                               note=note, created_at=now))
        session.flush()
        self.audit(session, approver, "lift.approval", row.order_id, {
            "lift_request_id": row.id, "decision": decision, "note": note})


def close_lift(store: StoreBase, session: Session, row: s.LiftRequest, state: str,
               actor: str, now: datetime) -> None:
    """Close ``row`` (inside the caller's transaction), audited: ``approved`` moves the
    order to ``lifting`` -- or, for an amendment, back to where it was with the
    amendment applied; ``refused``, ``expired`` and ``superseded`` (an upgrade changed
    the order) put the order back where it was before the request."""
    from enforcer.domain.coverage import Definition
    from enforcer.store.amendments import AmendmentsMixin

    row.state, row.decided_at = state, now
    order = session.get(s.Order, row.order_id)
    before = order.state if order is not None else None
    amended = state == "approved" and row.amendment is not None
    if order is not None and state == "approved" and not amended and order.state in _ACTIVE:
        order.state = OrderState.LIFTING.value
        order.state_detail = f"lift approved ({row.id}); removing blocks"
    elif order is not None and order.state == OrderState.LIFT_PENDING.value:
        back = row.order_state_before
        order.state = back if back in _LIFTABLE else OrderState.ACCEPTED.value
        order.state_detail = (f"amendment approved ({row.id})" if amended else
                              f"lift {state} ({row.id}); the ban stays in force")
    session.flush()
    store.audit(session, actor, f"lift.{state}", row.order_id,
                {"lift_request_id": row.id, "rule": row.rule, "needed": row.needed})
    if order is not None and order.state != before:
        order.updated_at = now
        session.flush()
        store.audit(session, actor, "order.state", row.order_id,
                    {"from": before, "to": order.state, "detail": order.state_detail})
    if amended and order is not None and row.amendment is not None:
        assert isinstance(store, AmendmentsMixin)
        store._apply_definition(
            session, row.order_id, Definition.from_json(row.amendment["before"]),
            Definition.from_json(row.amendment["after"]), actor=actor, kind="downgrade",
            changes=list(row.amendment.get("changes", [])), note=row.reason, ticket=None,
            lift_request_id=row.id)
