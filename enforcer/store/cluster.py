"""Shared state for several instances on one database: instance heartbeats, device
leases with a fencing epoch, and per-device order scans.

A lease says which instance may talk to a device until when. Acquisition, renewal and
release are single serialised write transactions (the store's write lock), so two
instances can never both hold an unexpired lease on one device. Each change of hands
bumps ``epoch`` and is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, union_all, update

from enforcer.domain import lifecycle
from enforcer.domain.model import OrderState, TargetState
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import NotFound
from enforcer.store.records import OrderRecord, TargetRecord


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    device: str
    owner: str
    epoch: int
    expires_at: datetime
    acquired_at: datetime


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    id: str
    url: str | None
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class ScanRecord:
    order_id: str
    device: str
    phase: str
    ok: bool
    detail: dict[str, Any]
    scanned_at: datetime


@dataclass(frozen=True, slots=True)
class Settled:
    """An order's state derived from its scans: before, after, the order as it is now,
    and whether it had ever been verified before (for time-to-verified)."""

    before: str
    after: str
    order: OrderRecord
    verified_before: bool


@dataclass(frozen=True, slots=True)
class ScanAnswer:
    """One order's answer from a device, as ``record_scan`` takes it (``record_scans``
    records several in one transaction)."""

    order_id: str
    phase: lifecycle.Phase
    ok: bool
    detail: dict[str, Any]
    target_updates: Sequence[tuple[int, str, dict[str, Any]]] = ()
    definition: str | None = None
    #: An ``accepted`` order becomes ``enforcing`` with this detail first (audited as
    #: ``order.state``, as ``set_order_state`` would), whatever happens to the answer.
    enforcing: str | None = None


#: The devices whose scan an order's state waits for, given the order and its targets.
Relevant = list[str] | Callable[[OrderRecord, list[TargetRecord]], list[str]]


def _lease(r: s.DeviceLease) -> LeaseRecord:
    return LeaseRecord(r.device, r.owner, r.epoch, r.expires_at, r.acquired_at)


class ClusterMixin(StoreBase):
    # Provided by TargetsMixin in the composed Store.
    _update_target_in: Callable[..., TargetRecord]

    # ---- instances -------------------------------------------------------------------

    def heartbeat(self, instance_id: str, url: str | None = None) -> None:
        now = self.clock()
        with self.write_session() as session:
            row = session.get(s.Instance, instance_id)
            if row is None:
                session.add(s.Instance(id=instance_id, url=url, started_at=now,
                                       heartbeat_at=now))
                self.audit(session, instance_id, "instance.started", None, {"url": url})
            else:
                row.heartbeat_at, row.url = now, url or row.url

    def instances(self) -> list[InstanceRecord]:
        with self.read_session() as session:
            return [InstanceRecord(r.id, r.url, r.started_at, r.heartbeat_at)
                    for r in session.scalars(select(s.Instance).order_by(s.Instance.id))]

    def live_instances(self, ttl_s: float) -> list[str]:
        cutoff = self.clock() - timedelta(seconds=ttl_s)
        with self.read_session() as session:
            q = select(s.Instance.id).where(s.Instance.heartbeat_at >= cutoff)
            return sorted(session.scalars(q))

    def instance_stopped(self, instance_id: str) -> None:
        """A clean shutdown: give every lease back and leave the member list."""
        now = self.clock()
        with self.write_session() as session:
            for r in session.scalars(select(s.DeviceLease).where(
                    s.DeviceLease.owner == instance_id)):
                r.expires_at = now
            session.execute(delete(s.Instance).where(s.Instance.id == instance_id))
            self.audit(session, instance_id, "instance.stopped", None, {})

    # ---- leases ----------------------------------------------------------------------

    def acquire_lease(self, device: str, owner: str, ttl_s: float) -> int | None:
        """Take or extend the lease; the fencing epoch, or None if another instance
        holds an unexpired lease."""
        now = self.clock()
        until = now + timedelta(seconds=ttl_s)
        with self.write_session() as session:
            row = session.get(s.DeviceLease, device)
            if row is None:
                session.add(s.DeviceLease(device=device, owner=owner, epoch=1, expires_at=until,
                                          acquired_at=now))
                self.audit(session, owner, "lease.acquired", None,
                           {"device": device, "epoch": 1, "from": None})
                return 1
            if row.owner == owner and row.expires_at > now:
                row.expires_at = until
                return row.epoch
            if row.expires_at > now:
                return None
            previous = row.owner
            row.owner, row.epoch, row.expires_at, row.acquired_at = owner, row.epoch + 1, until, now
            self.audit(session, owner, "lease.acquired", None,
                       {"device": device, "epoch": row.epoch, "from": previous})
            return row.epoch

    def renew_leases(self, owner: str, epochs: dict[str, int], ttl_s: float) -> set[str]:
        """Renew many leases in one transaction; the devices still held."""
        if not epochs:
            return set()
        now = self.clock()
        kept: set[str] = set()
        with self.write_session() as session:
            for row in session.scalars(select(s.DeviceLease).where(
                    s.DeviceLease.device.in_(list(epochs)))):
                if row.owner == owner and row.epoch == epochs[row.device] and \
                        row.expires_at > now:
                    row.expires_at = now + timedelta(seconds=ttl_s)
                    kept.add(row.device)
        return kept

    def poll_changes(self, since: datetime, stale_after_s: float
                     ) -> tuple[list[tuple[str, str, str | None]], set[str], set[str],
                                set[str]]:
        """What the device loops should look at: orders changed since ``since`` (id,
        scope, node), devices with targets due now, devices with failed scans older
        than ``stale_after_s``, and the devices holding targets of the changed orders.
        A few indexed queries for the whole instance."""
        now = self.clock()
        o, t, sc = s.ORDERS.c, s.TARGETS.c, s.SCANS.c
        with self.read_session() as session:
            conn = session.connection()  # plain statements: every ``due_scan_s``
            changed: list[tuple[str, str, str | None]] = [
                (str(i), str(sp), None if nd is None else str(nd)) for i, sp, nd in conn.execute(
                    select(o.id, o.scope, o.node).where(o.updated_at >= since))]
            due: set[str] = set(conn.execute(select(t.device).where(
                t.state.in_(lifecycle.DUE_TARGET_STATES),
                or_(t.next_attempt_at.is_(None), t.next_attempt_at <= now),
            ).distinct()).scalars())
            stale: set[str] = set(conn.execute(select(sc.device).where(
                sc.ok.is_(False),
                sc.scanned_at <= now - timedelta(seconds=stale_after_s)).distinct()).scalars())
            holders: set[str] = set()
            ids = [c[0] for c in changed]
            for i in range(0, len(ids), 500):
                holders |= set(conn.execute(select(t.device).where(
                    t.order_id.in_(ids[i:i + 500])).distinct()).scalars())
        return changed, due, stale, holders

    def active_bans(self) -> list[tuple[str, str, str | None, str, str, str | None]]:
        """(order id, scope, node, MAC, kind, eCM MAC) of every device of every active
        order, as plain tuples: the watcher's view of 100,000 bans without building
        100,000 order records."""
        from enforcer.domain.model import ACTIVE_ORDER_STATES

        q = (select(s.Order.id, s.Order.scope, s.Order.node, s.OrderDevice.mac,
                    s.OrderDevice.kind, s.OrderDevice.ecm_mac)
             .join(s.OrderDevice, s.OrderDevice.order_id == s.Order.id)
             .where(s.Order.state.in_([st.value for st in ACTIVE_ORDER_STATES])))
        with self.read_session() as session:
            return [tuple(r) for r in session.execute(q)]  # type: ignore[misc]

    def active_target_keys(self) -> list[tuple[str, str, str]]:
        """(order id, device, MAC) of every target of an active order not removed."""
        from enforcer.domain.model import ACTIVE_ORDER_STATES

        q = (select(s.Target.order_id, s.Target.device, s.Target.mac)
             .join(s.Order, s.Order.id == s.Target.order_id)
             .where(s.Order.state.in_([st.value for st in ACTIVE_ORDER_STATES]))
             .where(s.Target.state != TargetState.REMOVED))
        with self.read_session() as session:
            return [(a, b, c) for a, b, c in session.execute(q)]

    def release_lease(self, device: str, owner: str, epoch: int) -> None:
        with self.write_session() as session:
            row = session.get(s.DeviceLease, device)
            if row is not None and row.owner == owner and row.epoch == epoch:
                row.expires_at = self.clock()
                self.audit(session, owner, "lease.released", None,
                           {"device": device, "epoch": epoch})

    def leases(self) -> list[LeaseRecord]:
        with self.read_session() as session:
            return [_lease(r) for r in session.scalars(
                select(s.DeviceLease).order_by(s.DeviceLease.device))]

    # ---- per-device order scans --------------------------------------------------------

    def record_scan(self, order_id: str, device: str, *, phase: lifecycle.Phase, ok: bool,
                    detail: dict[str, Any],
                    target_updates: Sequence[tuple[int, str, dict[str, Any]]] = (),
                    relevant: Relevant | None = None,
                    actor: str = "engine", definition: str | None = None) -> Settled | None:
        """Record ``device``'s answer for the order, in one transaction with the target
        changes it found (``(target_id, audit_action, fields)``, as ``update_target``)
        and, given ``relevant``, the order's state derived again (returned).
        ``definition``: the ``definition_key`` of the order the answer was computed for;
        if the order has changed since (an amendment, a learnt eCM), the target changes
        are kept but the answer is not recorded (the device looks again)."""

        now = self.clock()
        with self.write_session() as session:
            return self._record_scan_in(session, order_id, device, phase=phase, ok=ok,
                                        detail=detail, target_updates=target_updates,
                                        relevant=relevant, actor=actor,
                                        definition=definition, now=now)

    def record_scans(self, device: str, answers: Sequence[ScanAnswer], *,
                     relevant: Relevant | None = None, actor: str = "engine"
                     ) -> list[Settled | None]:
        """``record_scan`` for several orders on one device in one transaction (a device
        loop answering a batch of new orders at once): one result per answer, in order,
        each as ``record_scan`` would return it."""
        now = self.clock()
        with self.write_session() as session:
            out: list[Settled | None] = []
            for a in answers:
                if a.enforcing is not None:
                    row = session.connection().execute(
                        select(s.ORDERS.c.state).where(s.ORDERS.c.id == a.order_id)).first()
                    if row is not None and row.state == OrderState.ACCEPTED.value:
                        self._write_state(session, a.order_id, row.state,
                                          OrderState.ENFORCING.value, a.enforcing, actor)
                out.append(self._record_scan_in(
                    session, a.order_id, device, phase=a.phase, ok=a.ok, detail=a.detail,
                    target_updates=a.target_updates, relevant=relevant, actor=actor,
                    definition=a.definition, now=now))
            return out

    def _record_scan_in(self, session: Any, order_id: str, device: str, *,
                        phase: lifecycle.Phase, ok: bool, detail: dict[str, Any],
                        target_updates: Sequence[tuple[int, str, dict[str, Any]]],
                        relevant: Relevant | None, actor: str, definition: str | None,
                        now: datetime) -> Settled | None:
        from enforcer.domain.coverage import definition_key
        from enforcer.store.orders import _load

        for target_id, action, fields in target_updates:
            self._update_target_in(session, target_id, actor=actor, audit_action=action,
                                   fields=fields)
        order: OrderRecord | None = None
        if definition is not None:
            try:
                order = _load(session, order_id)
            except NotFound:
                return None
            if definition_key(order) != definition:
                return None
        # Writers are serialised (write_session), so update-else-insert cannot race.
        conn = session.connection()
        values = {"phase": phase, "ok": ok, "detail": detail, "scanned_at": now}
        done = conn.execute(update(s.SCANS).where(
            s.SCANS.c.order_id == order_id, s.SCANS.c.device == device).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(s.SCANS), {"order_id": order_id, "device": device,
                                           **values})
        if relevant is None:
            return None
        # The order row was read above in this transaction and the scan insert does
        # not change it: derive from that read.
        return self._settle_in(session, order_id, relevant, actor, order=order)

    def scans_for_order(self, order_id: str) -> list[ScanRecord]:
        with self.read_session() as session:
            return [ScanRecord(r.order_id, r.device, r.phase, r.ok, r.detail, r.scanned_at)
                    for r in session.scalars(select(s.OrderScan).where(
                        s.OrderScan.order_id == order_id))]

    def device_work(self, device: str, *, ban_states: Iterable[str],
                    since: datetime | None, nodes: Iterable[str] | None,
                    stale_after_s: float | None, kinds: Iterable[str] | None = None
                    ) -> tuple[list[str], list[str], list[str]]:
        """What one pass of a device loop looks at, in one read: (orders to scan for a
        ban, orders to lift, orders to scan again because a scan failed more than
        ``stale_after_s`` ago or a target on the device is due; None skips the last).
        ``kinds``: a device that only acts on devices of these kinds (a headend: set-tops)
        is given for a ban only the orders naming one, or holding a target on it."""
        with self.read_session() as session:
            conn = session.connection()  # plain statements: every pass of every loop
            ban: list[str] = list(conn.execute(_unscanned_q(
                device, ban_states, lifecycle.BAN, since, nodes, kinds)).scalars())
            lift: list[str] = list(conn.execute(_unscanned_q(
                device, lifecycle.LIFT_STATES, lifecycle.LIFT, since, None)).scalars())
            again: list[str] = []
            if stale_after_s is not None:
                now = self.clock()
                stale: set[str] = set(conn.execute(_stale_q(now, device, stale_after_s)).scalars())
                due: set[str] = set(conn.execute(_due_q(now, device).with_only_columns(
                    s.TARGETS.c.order_id)).scalars())
                again = sorted(stale | due)
        return ban, lift, again

    def scanned_orders_in(self, device: str, states: Iterable[str]) -> list[str]:
        """Ids of orders in ``states`` that ``device`` has answered for."""
        q = (select(s.Order.id).join(s.OrderScan, s.OrderScan.order_id == s.Order.id)
             .where(s.OrderScan.device == device, s.Order.state.in_(list(states))))
        with self.read_session() as session:
            return list(session.scalars(q))

    def settle_order(self, order_id: str, relevant: Relevant, *,
                     actor: str = "engine") -> Settled:
        """Derive the order's state from its per-device scans, in one serialised
        transaction (several devices, and instances, report concurrently). ``relevant``
        is the list of devices whose answer counts, or a function of the order and its
        targets that says so (evaluated on what this transaction reads)."""
        with self.write_session() as session:
            return self._settle_in(session, order_id, relevant, actor)

    def _settle_in(self, session: Any, order_id: str, relevant: Relevant,
                   actor: str, *, order: OrderRecord | None = None) -> Settled:
        """``order``: the order as this transaction has already read it (else read)."""
        from enforcer.store.orders import _load
        from enforcer.store.targets import _of_order

        conn = session.connection()
        if order is None:
            try:
                order = _load(session, order_id)
            except NotFound:
                raise LookupError(order_id) from None
        rows = _of_order(session, order_id)
        if callable(relevant):
            relevant = relevant(order, [convert.target(t) for t in rows])
        scans = {r.device: r for r in conn.execute(
            select(s.SCANS).where(s.SCANS.c.order_id == order_id))}
        before = order.state.value
        derived, detail = lifecycle.derive(order.state, relevant, scans, rows)
        new = derived.value if derived is not None else None
        if new is None or (new == before and detail == order.state_detail):
            return Settled(before, before, order, order.verified_at is not None)
        stamps = self._write_state(session, order_id, before, new, detail, actor,
                                   audited=new != before)
        # The row as written: the read one with the values just set (no second read).
        after = replace(order, state=OrderState(new), state_detail=detail, **stamps)
        return Settled(before, new, after, order.verified_at is not None)

    def set_ecm_mac(self, order_id: str, box: Any, ecm: Any, *, actor: str) -> None:
        """Record a set-top's embedded modem MAC learnt from the headend controller."""
        with self.write_session() as session:
            row = session.scalars(select(s.OrderDevice).where(
                s.OrderDevice.order_id == order_id, s.OrderDevice.mac == str(box))).first()
            if row is None or row.ecm_mac == str(ecm):
                return
            row.ecm_mac = str(ecm)
            order = session.get(s.Order, order_id)
            if order is not None:  # changed: the CMTS loops look at it again at once
                order.updated_at = self.clock()
            self.audit(session, actor, "order.ecm_learnt", order_id,
                       {"set_top": str(box), "ecm_mac": str(ecm)})

    def clear_scans_on(self, device: str, order_ids: list[str]) -> None:
        """Forget ``device``'s answers for these orders so it scans them again."""
        with self.write_session() as session:
            session.execute(delete(s.OrderScan).where(
                s.OrderScan.device == device, s.OrderScan.order_id.in_(order_ids)))
            # Mark the orders changed so the device loops' cheap "changed since" query
            # picks them up at once.
            session.execute(update(s.Order).where(s.Order.id.in_(order_ids))
                            .values(updated_at=self.clock()))


def _unscanned_q(device: str, states: Iterable[str], phase: str, since: datetime | None,
                 nodes: Iterable[str] | None, kinds: Iterable[str] | None = None) -> Any:
    """The orders in ``states`` that ``device`` has not answered for in ``phase``.

    Written so that the cost follows the orders that concern the device, not every
    order in the store (100 CMTSes x 1,000 bans: one loop's pass read all 100,000):
    with ``since``, the recently changed orders (index on ``updated_at``); without it,
    the orders of the device's nodes, the footprint orders, the orders without a node
    and those it holds a target for (a union of indexed look-ups). Where one of those
    drives the query, the state test is written ``state || ''`` so that the database
    does not drive it from the state index instead (almost every order is in a ban
    state). A full pass of a device that answers for every order (a DHCP server) and
    the full lift pass (few orders are lifting) read by state."""
    o, sc, t, d = s.ORDERS.c, s.SCANS.c, s.TARGETS.c, s.ORDER_DEVICES.c
    scanned = select(sc.order_id).where(sc.device == device, sc.phase == phase)
    by_state = since is None and nodes is None and kinds is None
    in_state = (o.state if by_state else o.state.concat("")).in_(list(states))
    q = select(o.id).where(in_state)
    if since is not None:
        q = q.where(o.updated_at >= since)
    held = select(t.order_id).where(t.device == device)
    if nodes is not None:
        # A CMTS answers for footprint orders, orders without a node, orders on the
        # nodes it serves, and orders it already holds a target for.
        if since is not None:
            q = q.where(or_(o.scope == "footprint", o.node.is_(None),
                            o.node.in_(list(nodes)), o.id.in_(held)))
        else:
            q = q.where(o.id.in_(union_all(
                select(o.id).where(o.node.in_(list(nodes))),
                select(o.id).where(o.node.is_(None)),
                select(o.id).where(o.scope == "footprint"),
                held)))
    if kinds is not None:
        # The order's state never waits for such a device unless the order names a
        # device of those kinds or a block of it is there (``lifecycle.relevant_devices``).
        naming = select(d.order_id).where(d.kind.in_(list(kinds)))
        q = q.where(o.id.in_(union_all(naming, held)))
    return q.where(o.id.not_in(scanned)).order_by(o.created_at)


def _due_q(now: datetime, device: str) -> Any:
    t = s.TARGETS.c
    return (select(s.TARGETS).where(t.device == device)
            .where(t.state.in_(lifecycle.DUE_TARGET_STATES))
            .where(or_(t.next_attempt_at.is_(None), t.next_attempt_at <= now))
            .order_by(t.next_attempt_at, t.id))


def _stale_q(now: datetime, device: str, older_than_s: float) -> Any:
    sc = s.SCANS.c
    return select(sc.order_id).where(
        sc.device == device, sc.ok.is_(False),
        sc.scanned_at <= now - timedelta(seconds=older_than_s))
