"""Targets (device x MAC x mechanism) of an order, and their progress."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from enforcer.domain.mac import Mac
from enforcer.domain.model import ACTIVE_ORDER_STATES, OrderState, TargetState
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import NotFound
from enforcer.store.records import ActiveTarget, TargetRecord, TargetSpec

#: Fields the engine may change with ``update_target``.
UPDATABLE = frozenset({
    "state", "attempts", "last_error", "next_attempt_at", "applied_at", "verified_at",
    "removed_at", "transcript", "verdict",
})
_DUE = (TargetState.PENDING.value, TargetState.RETRYING.value)
_TARGETS = s.TARGETS


def _key(t: Any) -> tuple[str, str, str]:
    """(device, mac, mechanism) of a target row or spec."""
    return (t.device, str(t.mac), t.mechanism)


def _of_order(session: Session, order_id: str) -> list[Any]:
    """The order's target rows (plain rows with the ORM's attribute names), by id."""
    return list(session.connection().execute(
        select(_TARGETS).where(_TARGETS.c.order_id == order_id).order_by(_TARGETS.c.id)))


class TargetsMixin(StoreBase):
    def upsert_targets(self, order_id: str, specs: Iterable[TargetSpec], *,
                       actor: str = "engine", enforcing: str | None = None
                       ) -> list[TargetRecord]:
        """Add the targets not yet stored (state pending, due now); existing ones are left
        as they are. Returns every target of the order. ``enforcing``: the detail with
        which an ``accepted`` order becomes ``enforcing`` in the same transaction (audited
        as ``order.state``, as ``set_order_state`` would)."""
        return self._sync_targets(order_id, specs, actor=actor, prune=False,
                                  enforcing=enforcing)

    def replace_targets(self, order_id: str, specs: Iterable[TargetSpec], *,
                        actor: str = "engine") -> list[TargetRecord]:
        """Make the order's target set ``specs``: add missing ones, delete those not in
        ``specs`` that were never applied. Targets not in ``specs`` that were applied are
        kept (and returned) so the reconciler removes the block and marks them removed."""
        return self._sync_targets(order_id, specs, actor=actor, prune=True)

    def _sync_targets(self, order_id: str, specs: Iterable[TargetSpec], *, actor: str,
                      prune: bool, enforcing: str | None = None) -> list[TargetRecord]:
        with self.write_session() as session:
            return self._sync_targets_in(session, order_id, specs, actor=actor, prune=prune,
                                         enforcing=enforcing)

    def _sync_targets_in(self, session: Session, order_id: str, specs: Iterable[TargetSpec],
                         *, actor: str, prune: bool, enforcing: str | None = None
                         ) -> list[TargetRecord]:
        wanted = {_key(sp): sp for sp in specs}
        conn = session.connection()
        row = conn.execute(select(s.ORDERS.c.state).where(s.ORDERS.c.id == order_id)
                           ).first()
        if row is None:
            raise NotFound(f"no order {order_id}")
        if enforcing is not None and row.state == OrderState.ACCEPTED.value:
            self._write_state(session, order_id, row.state, OrderState.ENFORCING.value,
                              enforcing, actor)
        now = self.clock()
        existing = {_key(t): t for t in _of_order(session, order_id)}
        added = [sp for k, sp in wanted.items() if k not in existing]
        # A block the order gave up (released or lifted on an amendment's consent)
        # and needs again (a later upgrade): the same target is planned again.
        revived = [existing[k] for k in wanted
                   if k in existing and existing[k].state == TargetState.REMOVED.value]
        if revived:
            conn.execute(update(_TARGETS).where(
                _TARGETS.c.id.in_([t.id for t in revived])).values(
                state=TargetState.PENDING.value, attempts=0, next_attempt_at=now,
                updated_at=now, last_error=None, applied_at=None, verified_at=None,
                removed_at=None, verdict=None, transcript=None, transcript_sha256=None))
        if added:
            conn.execute(insert(_TARGETS), [
                {"order_id": order_id, "device": sp.device, "mac": str(sp.mac),
                 "device_kind": sp.device_kind.value, "mechanism": sp.mechanism,
                 "state": TargetState.PENDING.value, "attempts": 0,
                 "next_attempt_at": now, "updated_at": now, "last_error": None,
                 "applied_at": None, "verified_at": None, "removed_at": None,
                 "transcript": None, "transcript_sha256": None, "verdict": None}
                for sp in added])
        dropped = []
        if prune:
            dropped = [t for k, t in existing.items()
                       if k not in wanted and t.applied_at is None]
            if dropped:
                conn.execute(delete(_TARGETS).where(
                    _TARGETS.c.id.in_([t.id for t in dropped])))
        if added or dropped or revived:
            self.audit(session, actor, "targets.planned", order_id, {
                "added": [dict(zip(("device", "mac", "mechanism"), _key(sp), strict=True))
                          for sp in added],
                "revived": [dict(zip(("device", "mac", "mechanism"), _key(t), strict=True))
                            for t in revived],
                "dropped": [dict(zip(("device", "mac", "mechanism"), _key(t), strict=True))
                            for t in dropped],
            })
        return [convert.target(t) for t in _of_order(session, order_id)]

    def update_target(self, target_id: int, *, actor: str, audit_action: str,
                      **fields: Any) -> TargetRecord:
        """Change a target's progress fields (see ``UPDATABLE``) and audit the change as
        ``audit_action``. ``transcript`` must already be scrubbed; its SHA-256 is stored
        and audited instead of the text."""
        with self.write_session() as session:
            return self._update_target_in(session, target_id, actor=actor,
                                          audit_action=audit_action, fields=fields)

    def _update_target_in(self, session: Session, target_id: int, *, actor: str,
                          audit_action: str, fields: dict[str, Any]) -> TargetRecord:
        """``update_target`` inside the caller's write transaction: one UPDATE ...
        RETURNING (no ORM load and flush); the engine does this for every push and every
        verification."""
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable target fields: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        audit_fields: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "transcript":
                digest = hashlib.sha256(value.encode()).hexdigest() if value else None
                values["transcript"], values["transcript_sha256"] = value, digest
                audit_fields["transcript_sha256"] = digest
            else:
                if name == "state":
                    value = TargetState(value).value
                values[name] = value
                audit_fields[name] = value
        values["updated_at"] = self.clock()
        row = session.connection().execute(
            update(_TARGETS).where(_TARGETS.c.id == target_id).values(**values)
            .returning(*_TARGETS.c)).first()
        if row is None:
            raise NotFound(f"no target {target_id}")
        self.audit(session, actor, audit_action, row.order_id, {
            "target_id": row.id, "device": row.device, "mac": row.mac,
            "mechanism": row.mechanism, **audit_fields})
        return convert.target(row)

    def targets_for_order(self, order_id: str) -> list[TargetRecord]:
        with self.read_session() as session:
            return [convert.target(t) for t in _of_order(session, order_id)]

    def targets_for_orders(self, order_ids: Iterable[str]) -> dict[str, list[TargetRecord]]:
        """Order id -> its targets by id (an empty list for an order without any), in
        one read."""
        ids = sorted(set(order_ids))
        out: dict[str, list[TargetRecord]] = {i: [] for i in ids}
        if not ids:
            return out
        with self.read_session() as session:
            for t in session.connection().execute(
                    select(_TARGETS).where(_TARGETS.c.order_id.in_(ids))
                    .order_by(_TARGETS.c.id)):
                out[t.order_id].append(convert.target(t))
        return out

    def targets_due(self, now: datetime | None = None) -> list[TargetRecord]:
        """Pending or retrying targets whose next attempt is at or before ``now``."""
        at = now or self.clock()
        q = (select(s.Target).where(s.Target.state.in_(_DUE))
             .where(or_(s.Target.next_attempt_at.is_(None), s.Target.next_attempt_at <= at))
             .order_by(s.Target.next_attempt_at, s.Target.id))
        with self.read_session() as session:
            return [convert.target(t) for t in session.scalars(q)]

    def active_targets(self, device: str | None = None) -> list[ActiveTarget]:
        """Targets of active orders (see ``ACTIVE_ORDER_STATES``), except removed ones,
        optionally only those on ``device``; by order, then id. Only the columns the
        reconciler uses, read as plain rows (no ORM objects, no transcripts)."""
        t = _TARGETS
        q = (select(t.c.id, t.c.order_id, t.c.device, t.c.mac, t.c.mechanism, t.c.state,
                    t.c.attempts)
             .join(s.Order, s.Order.id == t.c.order_id)
             .where(s.Order.state.in_([st.value for st in ACTIVE_ORDER_STATES]))
             .where(t.c.state != TargetState.REMOVED.value))
        if device is not None:
            q = q.where(t.c.device == device)
        with self.read_session() as session:
            rows: Iterable[tuple[int, str, str, str, str, str, int]] = session.execute(
                q.order_by(t.c.order_id, t.c.id))
            return [ActiveTarget(i, o, d, Mac(m), mech, TargetState(st), a)
                    for i, o, d, m, mech, st, a in rows]

    def count_targets(self) -> dict[str, int]:
        """{state: count} for the ``enforcer_targets`` gauge."""
        q = select(s.Target.state, func.count()).group_by(s.Target.state)
        with self.read_session() as session:
            return {st: n for st, n in session.execute(q).all()}
