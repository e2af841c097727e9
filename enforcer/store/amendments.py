"""Amendments: an order's definition (reason, scope, node, devices, layers) changed in
place, audited as ``order.amended`` with the whole definition before and after.

An upgrade is written at once (``amend_order``); a downgrade waits in a lift request
(``request_lift(..., amendment=...)``) and is written when that request is approved
(``store.lifts.close_lift`` calls ``_apply_definition``). Either way every device answers for
the order again (its scans are forgotten), so new blocks are pushed and verified like a
new order's and blocks the order no longer needs are released by the engine.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from enforcer.domain.coverage import Definition
from enforcer.domain.model import OrderState, TargetState
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import Conflict, IdempotencyConflict, NotFound
from enforcer.store.records import OrderRecord

#: States in which an order's blocks must hold (and so may be amended).
_AMENDABLE = {OrderState.ACCEPTED.value, OrderState.ENFORCING.value,
              OrderState.ENFORCED.value, OrderState.VERIFIED.value,
              OrderState.LIFT_PENDING.value}


def current_definition(session: Session, order_id: str, policy_layers: list[str]
                       ) -> Definition:
    from enforcer.store.orders import _load

    order = _load(session, order_id)
    return Definition.of(order, policy_layers)


class AmendmentsMixin(StoreBase):
    def amend_order(self, order_id: str, *, before: Definition, after: Definition,
                    policy_layers: list[str], changes: list[Any], actor: str,
                    note: str | None = None, ticket: str | None = None,
                    idempotency: tuple[str, str] | None = None
                    ) -> tuple[OrderRecord, bool, list[str]]:
        """Write an upgrade: the order's definition becomes ``after``, at once. An open
        lift request is closed as ``superseded`` (its electorate decided on the order as
        it was, frozen with that reason's policy). ``before`` must still be the order's definition
        (else :class:`Conflict`). With ``idempotency`` a repeated webhook changes nothing.
        Returns (order, applied, superseded lift request ids)."""
        from enforcer.store.lifts import close_lift
        from enforcer.store.orders import _load

        with self.write_session(urgent=True) as session:
            if idempotency is not None and self._replayed(session, idempotency):
                return _load(session, order_id), False, []
            row = session.get(s.Order, order_id)
            if row is None:
                raise NotFound(f"no order {order_id}")
            if row.state not in _AMENDABLE:
                raise Conflict(f"order {order_id} is {row.state}; it cannot be amended")
            if current_definition(session, order_id, policy_layers) != before:
                raise Conflict(f"order {order_id} changed meanwhile; amend it again")
            superseded: list[str] = []
            for lift in list(session.scalars(select(s.LiftRequest).where(
                    s.LiftRequest.order_id == order_id, s.LiftRequest.state == "open"))):
                close_lift(self, session, lift, "superseded", actor, self.clock())
                superseded.append(lift.id)
            self._apply_definition(session, order_id, before, after, actor=actor,
                                   kind="upgrade", changes=changes, note=note,
                                   ticket=ticket, lift_request_id=None)
            if idempotency is not None:
                session.execute(insert(s.WebhookReceipt).values(
                    webhook_id=idempotency[0], body_sha256=idempotency[1], order_id=order_id,
                    received_at=self.clock()))
            return _load(session, order_id), True, superseded

    def replayed(self, idempotency: tuple[str, str]) -> str | None:
        """The order a webhook delivery (id, body digest) was already applied to, or
        None if it is new; :class:`IdempotencyConflict` for the same id with another
        body."""
        with self.read_session() as session:
            receipt = session.get(s.WebhookReceipt, idempotency[0])
            if receipt is None:
                return None
            if receipt.body_sha256 != idempotency[1]:
                raise IdempotencyConflict(idempotency[0], receipt.order_id)
            return receipt.order_id

    def record_receipt(self, idempotency: tuple[str, str], order_id: str) -> None:
        """Remember a webhook delivery that opened a lift request (a downgrade), so the
        same delivery again is answered as a replay."""
        with self.write_session() as session:
            if not self._replayed(session, idempotency):
                session.execute(insert(s.WebhookReceipt).values(
                    webhook_id=idempotency[0], body_sha256=idempotency[1],
                    order_id=order_id, received_at=self.clock()))
                self.audit(session, "escalation-system", "webhook.received", order_id,
                           {"webhook_id": idempotency[0], "body_sha256": idempotency[1]})

    def _replayed(self, session: Session, idempotency: tuple[str, str]) -> bool:
        receipt = session.get(s.WebhookReceipt, idempotency[0])
        if receipt is None:
            return False
        if receipt.body_sha256 != idempotency[1]:
            raise IdempotencyConflict(idempotency[0], receipt.order_id)
        return True

    def _apply_definition(self, session: Session, order_id: str, before: Definition,
                          after: Definition, *, actor: str, kind: str, changes: list[Any],
                          note: str | None, ticket: str | None,
                          lift_request_id: str | None) -> None:
        """Make ``after`` the order's definition, inside the caller's transaction."""
        conn = session.connection()
        now = self.clock()
        row = session.get(s.Order, order_id)
        if row is None:
            raise NotFound(f"no order {order_id}")
        state_before = row.state
        row.reason, row.scope, row.node = after.reason.value, after.scope.value, after.node
        row.layers = list(after.layers)
        row.updated_at = now
        gone = before.macs() - after.macs()
        new = after.macs() - before.macs()
        if gone:
            session.execute(delete(s.OrderDevice).where(
                s.OrderDevice.order_id == order_id,
                s.OrderDevice.mac.in_([str(m) for m in gone])))
        if new:
            conn.execute(insert(s.ORDER_DEVICES), [
                {"order_id": order_id, "mac": str(m), "kind": k.value,
                 "ecm_mac": str(e) if e is not None else None}
                for m, k, e in after.devices if m in new])
            # A MAC named again after a consented removal is planned afresh: its old,
            # removed targets would otherwise stand in the way of new ones.
            ecms = {str(e) for m, _k, e in after.devices if m in new and e is not None}
            session.execute(delete(s.Target).where(
                s.Target.order_id == order_id, s.Target.state == TargetState.REMOVED.value,
                s.Target.mac.in_([str(m) for m in new] + sorted(ecms))))
        # Every device answers for the order again.
        session.execute(delete(s.OrderScan).where(s.OrderScan.order_id == order_id))
        session.flush()
        self.audit(session, actor, "order.amended", order_id, {
            "kind": kind, "changes": changes, "before": before.to_json(),
            "after": after.to_json(), "note": note, "ticket": ticket,
            "lift_request_id": lift_request_id})
        if state_before in (OrderState.ENFORCED.value, OrderState.VERIFIED.value):
            self._write_state(session, order_id, state_before, OrderState.ENFORCING.value,
                              f"amended ({kind}): enforcing the new definition", actor)
        else:
            conn.execute(update(s.ORDERS).where(s.ORDERS.c.id == order_id)
                         .values(updated_at=now))
