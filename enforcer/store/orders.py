"""Orders: creation (idempotent for webhooks), queries and state changes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from enforcer.domain.model import ACTIVE_ORDER_STATES, OrderState, Reason
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import IdempotencyConflict, NotFound
from enforcer.store.ids import new_order_id
from enforcer.store.records import OrderRecord, OrderSpec


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _load(session: Session, order_id: str) -> OrderRecord:
    session.flush()  # plain statements below do not autoflush pending ORM changes
    conn = session.connection()
    row = conn.execute(select(s.ORDERS).where(s.ORDERS.c.id == order_id)).first()
    if row is None:
        raise NotFound(f"no order {order_id}")
    devices = conn.execute(select(s.ORDER_DEVICES).where(
        s.ORDER_DEVICES.c.order_id == order_id)).all()
    return convert.order(row, list(devices))


def _load_many(session: Session, rows: Iterable[s.Order]) -> list[OrderRecord]:
    rows = list(rows)
    ids = [r.id for r in rows]
    by_order: dict[str, list[s.OrderDevice]] = {i: [] for i in ids}
    if ids:
        for d in session.scalars(select(s.OrderDevice).where(s.OrderDevice.order_id.in_(ids))):
            by_order[d.order_id].append(d)
    return [convert.order(r, by_order[r.id]) for r in rows]


class OrdersMixin(StoreBase):
    def create_order(self, spec: OrderSpec, *, actor: str, source: str,
                     idempotency: tuple[str, str] | None = None) -> tuple[OrderRecord, bool]:
        """Store a new order with its devices (and webhook receipt), audited, committed
        before returning. With ``idempotency=(webhook_id, body_sha256)`` a repeated
        delivery returns the existing order and ``created=False``; the same id with
        another body raises :class:`IdempotencyConflict`."""
        if source not in ("webhook", "api"):
            raise ValueError(f"source must be 'webhook' or 'api', not {source!r}")
        with self.write_session(urgent=True) as session:
            conn = session.connection()
            if idempotency is not None:
                receipt = conn.execute(
                    select(s.RECEIPTS.c.body_sha256, s.RECEIPTS.c.order_id)
                    .where(s.RECEIPTS.c.webhook_id == idempotency[0])).first()
                if receipt is not None:
                    if receipt.body_sha256 != idempotency[1]:
                        raise IdempotencyConflict(idempotency[0], receipt.order_id)
                    return _load(session, receipt.order_id), False
            now = self.clock()
            order_id = new_order_id(now)
            conn.execute(insert(s.ORDERS), {
                "id": order_id, "ticket": spec.ticket, "account": spec.account,
                "reason": spec.reason.value, "scope": spec.scope.value, "node": spec.node,
                "requested_by": spec.requested_by, "note": spec.note,
                "evidence": [e.as_dict() for e in spec.evidence],
                "state": OrderState.ACCEPTED.value, "state_detail": None, "source": source,
                "created_by": actor, "created_at": now, "updated_at": now,
                "enforced_at": None, "verified_at": None, "lifted_at": None})
            if spec.devices:
                conn.execute(insert(s.ORDER_DEVICES), [
                    {"order_id": order_id, "mac": str(d.mac), "kind": d.kind.value,
                     "ecm_mac": str(d.ecm_mac) if d.ecm_mac else None}
                    for d in spec.devices])
            if idempotency is not None:
                conn.execute(insert(s.RECEIPTS), {
                    "webhook_id": idempotency[0], "body_sha256": idempotency[1],
                    "order_id": order_id, "received_at": now})
            record = _load(session, order_id)
            self.audit(session, actor, "order.accepted", order_id, {
                "source": source, "ticket": spec.ticket, "account": spec.account,
                "reason": spec.reason, "scope": spec.scope, "node": spec.node,
                "requested_by": spec.requested_by, "note": spec.note,
                "evidence": [e.as_dict() for e in spec.evidence],
                "devices": [{"mac": d.mac, "kind": d.kind, "ecm_mac": d.ecm_mac}
                            for d in spec.devices],
                "webhook_id": idempotency[0] if idempotency else None,
            })
            self._outbox_event(session, "ban.imposed", record, source)
            return record, True

    def _outbox_event(self, session: Session, event: str, order: OrderRecord,
                      source: str) -> None:
        """The ``ban.imposed`` notification, in the order's own transaction."""
        if not getattr(self, "outbox_enabled", False):
            return
        self.outbox_add(session, event, {  # type: ignore[attr-defined]
            "order_id": order.id, "reason": order.reason.value, "ticket": order.ticket,
            "account": order.account, "scope": order.scope.value, "source": source,
            "devices": [{"mac": str(d.mac), "kind": d.kind.value} for d in order.devices]},
            reason=order.reason.value)

    def get_order(self, order_id: str) -> OrderRecord:
        """The order with its devices; raises :class:`NotFound`."""
        with self.read_session() as session:
            return _load(session, order_id)

    def list_orders(self, state: OrderState | None = None, reason: Reason | None = None,
                    limit: int = 100, offset: int = 0) -> list[OrderRecord]:
        """Newest first."""
        q = select(s.Order)
        if state is not None:
            q = q.where(s.Order.state == state.value)
        if reason is not None:
            q = q.where(s.Order.reason == reason.value)
        q = q.order_by(s.Order.created_at.desc(), s.Order.id.desc()).limit(limit).offset(offset)
        with self.read_session() as session:
            return _load_many(session, session.scalars(q))

    def orders_in_states(self, states: Iterable[OrderState]) -> list[OrderRecord]:
        """Oldest first (the order the reconciler should work in)."""
        values = [st.value for st in states]
        q = select(s.Order).where(s.Order.state.in_(values)).order_by(s.Order.created_at)
        with self.read_session() as session:
            return _load_many(session, session.scalars(q))

    def active_orders(self) -> list[OrderRecord]:
        """Orders whose bans must be in force (accepted .. verified, and lift_pending)."""
        return self.orders_in_states(ACTIVE_ORDER_STATES)

    def set_order_state(self, order_id: str, state: OrderState, *, detail: str | None = None,
                        actor: str) -> OrderRecord:
        """Move an order to ``state`` (stamping enforced_at / verified_at / lifted_at on
        entry), audited as ``order.state``. A no-op change is not audited."""
        with self.write_session() as session:
            conn = session.connection()
            row = conn.execute(select(s.ORDERS.c.state, s.ORDERS.c.state_detail)
                               .where(s.ORDERS.c.id == order_id)).first()
            if row is None:
                raise NotFound(f"no order {order_id}")
            if row.state != state.value or row.state_detail != detail:
                self._write_state(session, order_id, row.state, state.value, detail, actor)
            return _load(session, order_id)

    def count_orders(self) -> dict[tuple[str, str], int]:
        """{(state, reason): count} for the ``enforcer_orders`` gauge."""
        q = select(s.Order.state, s.Order.reason, func.count()).group_by(
            s.Order.state, s.Order.reason)
        with self.read_session() as session:
            return {(st, rs): n for st, rs, n in session.execute(q).all()}
