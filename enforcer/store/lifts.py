"""Lift requests and approvals. Rows only: whether the approvals suffice is decided by
the policy (a later issue); nothing here lifts a ban."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from enforcer.domain.model import OrderState
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import Conflict, NotFound
from enforcer.store.ids import new_lift_id
from enforcer.store.records import LiftRequestRecord

DECISIONS = ("approve", "refuse")
_LIFTABLE = {OrderState.ACCEPTED.value, OrderState.ENFORCING.value, OrderState.ENFORCED.value,
             OrderState.VERIFIED.value}


def _load(session: Session, lift_id: str) -> LiftRequestRecord:
    row = session.get(s.LiftRequest, lift_id)
    if row is None:
        raise NotFound(f"no lift request {lift_id}")
    approvals = session.scalars(select(s.Approval).where(s.Approval.lift_request_id == lift_id))
    return convert.lift_request(row, list(approvals))


class LiftsMixin(StoreBase):
    def request_lift(self, order_id: str, *, requested_by: str, reason: str,
                     ttl: timedelta = timedelta(days=7)) -> LiftRequestRecord:
        """Open a lift request and move the order to ``lift_pending`` (the ban stays in
        force). Raises :class:`Conflict` if the order is not active or one is open."""
        with self.write_session() as session:
            order = session.get(s.Order, order_id)
            if order is None:
                raise NotFound(f"no order {order_id}")
            if order.state not in _LIFTABLE:
                raise Conflict(f"order {order_id} is {order.state}; it cannot be lifted now")
            now = self.clock()
            row = s.LiftRequest(id=new_lift_id(now), order_id=order_id,
                                requested_by=requested_by, reason=reason, state="open",
                                created_at=now, expires_at=now + ttl)
            session.add(row)
            before, order.state, order.updated_at = order.state, OrderState.LIFT_PENDING.value, now
            order.state_detail = f"lift requested ({row.id})"
            session.flush()
            self.audit(session, requested_by, "lift.requested", order_id, {
                "lift_request_id": row.id, "reason": reason, "expires_at": row.expires_at,
                "order_state_before": before})
            return _load(session, row.id)

    def record_approval(self, lift_id: str, *, approver: str, decision: str,
                        note: str | None = None) -> LiftRequestRecord:
        """Record one approver's decision (once per approver); :class:`Conflict` if the
        request is not open or the approver already decided. A request past its expiry
        is marked ``expired`` and returned without recording the decision."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        with self.write_session() as session:
            row = session.get(s.LiftRequest, lift_id)
            if row is None:
                raise NotFound(f"no lift request {lift_id}")
            now = self.clock()
            if row.state == "open" and row.expires_at <= now:
                row.state = "expired"
                session.flush()
                self.audit(session, "system", "lift.expired", row.order_id,
                           {"lift_request_id": lift_id})
                return _load(session, lift_id)
            if row.state != "open":
                raise Conflict(f"lift request {lift_id} is {row.state}")
            dup = session.scalar(select(s.Approval.id).where(
                s.Approval.lift_request_id == lift_id, s.Approval.approver == approver))
            if dup is not None:
                raise Conflict(f"{approver} has already decided on {lift_id}")
            session.add(s.Approval(lift_request_id=lift_id, approver=approver,
                                   decision=decision, note=note, created_at=now))
            session.flush()
            self.audit(session, approver, "lift.approval", row.order_id, {
                "lift_request_id": lift_id, "decision": decision, "note": note})
            return _load(session, lift_id)

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
