"""Orders: creation (idempotent for webhooks), queries and state changes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from enforcer.domain.mac import Mac
from enforcer.domain.model import ACTIVE_ORDER_STATES, DeviceKind, OrderState, Reason
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import IdempotencyConflict, NotFound
from enforcer.store.ids import new_order_id
from enforcer.store.records import DeviceSpec, OrderDeviceRecord, OrderRecord, OrderSpec


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


def _load_many(session: Session, q: Select[Any]) -> list[OrderRecord]:
    """The orders ``q`` selects (a statement over ``schema.ORDERS``' columns), in its
    order, with their devices: two plain statements, no ORM objects (the API's order list
    is polled, and it grows with the number of orders)."""
    conn = session.connection()
    rows = conn.execute(q).all()
    if not rows:
        return []
    by_order: dict[str, list[Any]] = {r.id: [] for r in rows}
    dev = s.ORDER_DEVICES.c
    # The devices of exactly these orders: the same statement as a subquery (no list
    # of ids to expand into the SQL).
    ids = q.with_only_columns(s.ORDERS.c.id).subquery()
    for d in conn.execute(select(dev.order_id, dev.id, dev.mac, dev.kind, dev.ecm_mac)
                          .where(dev.order_id.in_(select(ids.c.id))).order_by(dev.id)):
        by_order[d.order_id].append(d)
    return [convert.order(r, by_order[r.id], sorted_=True) for r in rows]


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
                "enforced_at": None, "verified_at": None, "lifted_at": None, "layers": None,
                "all_devices": spec.all_devices})
            devices = list(spec.devices)
            from_links: list[dict[str, str | None]] = []
            if spec.all_devices:
                # An account order holds every device linked to the account now.
                given = {d.mac for d in devices}
                for row in conn.execute(select(s.LINKS).where(
                        s.LINKS.c.account == spec.account, s.LINKS.c.linked.is_(True))
                        .order_by(s.LINKS.c.mac)):
                    if Mac(row.mac) not in given:
                        dev = DeviceSpec(Mac(row.mac), DeviceKind(row.kind),
                                         Mac(row.ecm_mac) if row.ecm_mac else None)
                        devices.append(dev)
                        from_links.append({"mac": row.mac, "kind": row.kind,
                                           "ecm_mac": row.ecm_mac})
            if devices:
                conn.execute(insert(s.ORDER_DEVICES), [
                    {"order_id": order_id, "mac": str(d.mac), "kind": d.kind.value,
                     "ecm_mac": str(d.ecm_mac) if d.ecm_mac else None}
                    for d in devices])
            if idempotency is not None:
                conn.execute(insert(s.RECEIPTS), {
                    "webhook_id": idempotency[0], "body_sha256": idempotency[1],
                    "order_id": order_id, "received_at": now})
            # The order as just written (what reading it back gives, without the read).
            record = OrderRecord(
                id=order_id, ticket=spec.ticket, account=spec.account, reason=spec.reason,
                scope=spec.scope, node=spec.node, requested_by=spec.requested_by,
                note=spec.note,
                evidence=convert.evidence_from_json([e.as_dict() for e in spec.evidence]),
                state=OrderState.ACCEPTED, state_detail=None, source=source,
                created_by=actor, created_at=now, updated_at=now, enforced_at=None,
                verified_at=None, lifted_at=None,
                devices=tuple(OrderDeviceRecord(Mac(d.mac), DeviceKind(d.kind),
                                                Mac(d.ecm_mac) if d.ecm_mac else None)
                              for d in devices),
                layers=None, all_devices=spec.all_devices)
            # Orders already holding any of these MACs: linked (never weakened).
            named = sorted({str(d.mac) for d in devices} |
                           {str(d.ecm_mac) for d in devices if d.ecm_mac})
            linked: list[str] = sorted(set(conn.execute(
                select(s.ORDER_DEVICES.c.order_id).join(
                    s.ORDERS, s.ORDERS.c.id == s.ORDER_DEVICES.c.order_id)
                .where(s.ORDERS.c.id != order_id,
                       s.ORDERS.c.state.in_([st.value for st in ACTIVE_ORDER_STATES]),
                       s.ORDER_DEVICES.c.mac.in_(named) | s.ORDER_DEVICES.c.ecm_mac.in_(named))
            ).scalars()))
            self.audit(session, actor, "order.accepted", order_id, {
                "linked_orders": linked,
                "source": source, "ticket": spec.ticket, "account": spec.account,
                "reason": spec.reason, "scope": spec.scope, "node": spec.node,
                "requested_by": spec.requested_by, "note": spec.note,
                "evidence": [e.as_dict() for e in spec.evidence],
                "devices": [{"mac": d.mac, "kind": d.kind, "ecm_mac": d.ecm_mac}
                            for d in spec.devices],
                "webhook_id": idempotency[0] if idempotency else None,
                "all_devices": spec.all_devices, "linked_devices": from_links,
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

    def get_orders(self, order_ids: Iterable[str]) -> list[OrderRecord]:
        """The orders with these ids that exist (oldest first), in one read."""
        ids = sorted(set(order_ids))
        if not ids:
            return []
        oc = s.ORDERS.c
        q = select(s.ORDERS).where(oc.id.in_(ids)).order_by(oc.created_at, oc.id)
        with self.read_session() as session:
            return _load_many(session, q)

    def list_orders(self, state: OrderState | None = None, reason: Reason | None = None,
                    limit: int = 100, offset: int = 0, *, account: str | None = None,
                    ticket: str | None = None, mac: str | None = None,
                    active_only: bool = False) -> list[OrderRecord]:
        """Newest first, filtered by every criterion given (``mac``: a device or eCM MAC
        of the order)."""
        oc, dc = s.ORDERS.c, s.ORDER_DEVICES.c
        q = select(s.ORDERS)
        if state is not None:
            q = q.where(oc.state == state.value)
        if active_only:
            q = q.where(oc.state.in_([st.value for st in ACTIVE_ORDER_STATES]))
        if reason is not None:
            q = q.where(oc.reason == reason.value)
        if account is not None:
            q = q.where(oc.account == account)
        if ticket is not None:
            q = q.where(oc.ticket == ticket)
        if mac is not None:
            q = q.where(oc.id.in_(select(dc.order_id).where(
                (dc.mac == mac) | (dc.ecm_mac == mac))))
        q = q.order_by(oc.created_at.desc(), oc.id.desc()).limit(limit).offset(offset)
        with self.read_session() as session:
            return _load_many(session, q)

    def orders_in_states(self, states: Iterable[OrderState]) -> list[OrderRecord]:
        """Oldest first (the order the reconciler should work in)."""
        values = [st.value for st in states]
        oc = s.ORDERS.c
        q = select(s.ORDERS).where(oc.state.in_(values)).order_by(oc.created_at)
        with self.read_session() as session:
            return _load_many(session, q)

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
