"""Blocks shared by several orders: which active orders name a MAC, which blocks each
holds, and the hand-over of a block from an order that no longer needs it to the
orders that still do (``domain.coverage`` decides who needs what; this persists it).

A block stays on the device while any active order holds a live target for it: when
the order being lifted releases its target, every order that still needs the MAC
there receives a target of its own for the same block, ``applied`` (the device holds
it already), audited as ``target.adopted``; the releasing target is ``removed`` from
its order's point of view, audited as ``target.released`` with the orders it was kept
for. Nothing is sent to the device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update

from enforcer.domain.mac import Mac
from enforcer.domain.model import ACTIVE_ORDER_STATES, TargetState
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import NotFound
from enforcer.store.records import OrderRecord, TargetRecord, TargetSpec

_ACTIVE = [st.value for st in ACTIVE_ORDER_STATES]
_LIVE = TargetState.REMOVED.value


class CoverageMixin(StoreBase):
    def orders_naming(self, macs: Iterable[Mac | str], *, active_only: bool = True
                      ) -> list[OrderRecord]:
        """Orders (active ones unless ``active_only`` is false) that name any of ``macs``
        as a device or a set-top's eCM, oldest first."""
        from enforcer.store.orders import _load_many

        wanted = sorted({str(m) for m in macs})
        if not wanted:
            return []
        # A subquery, not DISTINCT over the join: PostgreSQL has no equality for JSON
        # columns (evidence, layers), so it cannot de-duplicate whole order rows.
        naming = select(s.OrderDevice.order_id).where(
            or_(s.OrderDevice.mac.in_(wanted), s.OrderDevice.ecm_mac.in_(wanted)))
        q = (select(s.ORDERS).where(s.ORDERS.c.id.in_(naming))
             .order_by(s.ORDERS.c.created_at, s.ORDERS.c.id))
        if active_only:
            q = q.where(s.ORDERS.c.state.in_(_ACTIVE))
        with self.read_session() as session:
            return _load_many(session, q)

    def live_holdings(self, order_ids: Iterable[str]) -> dict[str, set[tuple[str, Mac]]]:
        """Order id -> the (device, MAC) pairs its live (not removed) targets hold."""
        ids = sorted(set(order_ids))
        out: dict[str, set[tuple[str, Mac]]] = {i: set() for i in ids}
        if not ids:
            return out
        with self.read_session() as session:
            for oid, device, mac in session.execute(
                    select(s.Target.order_id, s.Target.device, s.Target.mac).where(
                        s.Target.order_id.in_(ids), s.Target.state != _LIVE)):
                out[oid].add((device, Mac(mac)))
        return out

    def live_blocks_on(self, device: str, macs: Iterable[Mac], *, excluding: str
                       ) -> list[TargetRecord]:
        """Live targets of active orders other than ``excluding`` for ``macs`` on
        ``device``: the blocks already there that an order may share."""
        wanted = sorted({str(m) for m in macs})
        if not wanted:
            return []
        t, o = s.TARGETS.c, s.ORDERS.c
        q = (select(s.TARGETS).join(s.ORDERS, o.id == t.order_id)
             .where(t.device == device, t.mac.in_(wanted), t.state != _LIVE,
                    t.order_id != excluding, o.state.in_(_ACTIVE))
             .order_by(t.id))
        with self.read_session() as session:
            return [convert.target(r) for r in session.connection().execute(q)]

    def share_blocks(self, order_id: str, blocks: Iterable[TargetRecord], *,
                     actor: str = "engine") -> list[TargetRecord]:
        """Give ``order_id`` a target of its own, ``applied``, for each block another
        active order holds (``blocks``): the order co-owns them from now on. Audited as
        ``target.shared``. Returns the order's targets."""
        return self._take_over(order_id, list(blocks), action="target.shared", actor=actor)

    def release_block(self, target_id: int, kept_for: list[str], *,
                      actor: str = "engine") -> TargetRecord:
        """The order of ``target_id`` no longer needs its block, but ``kept_for`` (active
        orders) do: the block stays on the device; each of them owns it from now on
        (``target.adopted``); the target is ``removed`` for its own order
        (``target.released``). One transaction."""
        if not kept_for:
            raise ValueError("release_block needs the orders the block is kept for")
        with self.write_session() as session:
            row = session.get(s.Target, target_id)
            if row is None:
                raise NotFound(f"no target {target_id}")
            source = convert.target(row)
            for holder in kept_for:
                self._adopt_in(session, holder, source, action="target.adopted", actor=actor)
            out = self._update_target_in(
                session, target_id, actor=actor, audit_action="target.released",
                fields={"state": TargetState.REMOVED, "removed_at": self.clock(),
                        "last_error": None, "next_attempt_at": None})
            self.audit(session, actor, "block.kept", source.order_id, {
                "device": source.device, "mac": source.mac, "mechanism": source.mechanism,
                "kept_for": kept_for})
            return out

    # ---- inside a write transaction ------------------------------------------------------

    _update_target_in: Callable[..., TargetRecord]  # TargetsMixin

    def _take_over(self, order_id: str, blocks: list[TargetRecord], *, action: str,
                   actor: str) -> list[TargetRecord]:
        from enforcer.store.targets import _of_order

        with self.write_session() as session:
            if session.get(s.Order, order_id) is None:
                raise NotFound(f"no order {order_id}")
            for b in blocks:
                self._adopt_in(session, order_id, b, action=action, actor=actor)
            return [convert.target(t) for t in _of_order(session, order_id)]

    def _adopt_in(self, session: Any, holder: str, source: TargetRecord, *, action: str,
                  actor: str) -> None:
        """``holder`` owns ``source``'s block: a live target of its own for it (new and
        ``applied``, or an existing one made live again). Its scan on the device is
        forgotten so the device loop verifies it again."""
        conn = session.connection()
        spec = TargetSpec(source.device, source.mac, source.device_kind, source.mechanism)
        now = self.clock()
        existing = conn.execute(select(s.TARGETS).where(
            s.TARGETS.c.order_id == holder, s.TARGETS.c.device == spec.device,
            s.TARGETS.c.mac == str(spec.mac), s.TARGETS.c.mechanism == spec.mechanism)).first()
        if existing is not None and existing.state != _LIVE:
            return  # it holds the block already
        fields = {"state": TargetState.APPLIED.value, "applied_at": now, "verified_at": None,
                  "removed_at": None, "last_error": None, "next_attempt_at": None,
                  "updated_at": now, "verdict": None}
        if existing is not None:
            conn.execute(update(s.TARGETS).where(s.TARGETS.c.id == existing.id).values(**fields))
            target_id = existing.id
        else:
            target_id = conn.execute(insert(s.TARGETS).values(
                order_id=holder, device=spec.device, mac=str(spec.mac),
                device_kind=spec.device_kind.value, mechanism=spec.mechanism, attempts=0,
                transcript=None, transcript_sha256=None, **fields)).inserted_primary_key[0]
        conn.execute(delete(s.SCANS).where(and_(s.SCANS.c.order_id == holder,
                                                s.SCANS.c.device == spec.device)))
        conn.execute(update(s.ORDERS).where(s.ORDERS.c.id == holder).values(updated_at=now))
        self.audit(session, actor, action, holder, {
            "target_id": target_id, "device": spec.device, "mac": spec.mac,
            "mechanism": spec.mechanism, "from_order": source.order_id,
            "from_target": source.id})
