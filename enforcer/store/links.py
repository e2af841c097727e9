"""Account <-> device links from the operator's provisioning system, with their history.

``device_links`` holds the current link of each MAC (one account at a time); every
event received, applied or not, is a row of ``link_events`` (the history) and an audit
entry. An event older than the link's last change is *stale* and changes nothing (feeds
deliver out of order); the same webhook delivery again is a replay. Unlinking never
unbans: it only stops future account orders from picking the device up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from enforcer.domain.mac import Mac
from enforcer.domain.model import ACTIVE_ORDER_STATES, DeviceKind
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import Conflict, IdempotencyConflict

LINKED, UNLINKED = "device.linked", "device.unlinked"
EVENTS = (LINKED, UNLINKED)


@dataclass(frozen=True, slots=True)
class Link:
    account: str
    mac: Mac
    kind: DeviceKind
    ecm_mac: Mac | None
    linked: bool
    source: str
    event_at: datetime


@dataclass(frozen=True, slots=True)
class LinkChange:
    """What one event did: ``applied`` (the link changed), ``unchanged`` (it was so
    already), ``stale`` (older than the link's last change), ``replayed`` (the same
    delivery again). ``orders``: active account orders of the account (to extend)."""

    outcome: str
    link: Link | None
    account_orders: tuple[str, ...] = ()


def _link(row: s.DeviceLink) -> Link:
    return Link(row.account, Mac(row.mac), DeviceKind(row.kind),
                Mac(row.ecm_mac) if row.ecm_mac else None, row.linked, row.source,
                row.event_at)


class LinksMixin(StoreBase):
    def record_link_event(self, event: str, *, account: str, mac: Mac, kind: DeviceKind,
                          ecm_mac: Mac | None, at: datetime, source: str,
                          actor: str = "provisioning",
                          idempotency: tuple[str, str] | None = None,
                          max_per_account: int | None = None) -> LinkChange:
        """Apply one provisioning event (one transaction, audited). Raises
        :class:`Conflict` when linking would give the account more than
        ``max_per_account`` devices (nothing changes)."""
        if event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}")
        with self.write_session(urgent=True) as session:
            if idempotency is not None:
                prior = session.scalars(select(s.LinkEvent).where(
                    s.LinkEvent.webhook_id == idempotency[0])).first()
                if prior is not None:
                    if prior.body_sha256 != idempotency[1]:
                        raise IdempotencyConflict(idempotency[0], prior.account)
                    row = session.get(s.DeviceLink, str(mac))
                    return LinkChange("replayed", _link(row) if row else None)
            now = self.clock()
            row = session.get(s.DeviceLink, str(mac))
            linking = event == LINKED
            if row is not None and row.event_at > at:
                outcome = "stale"
            elif row is not None and row.linked == linking and row.account == account and \
                    row.kind == kind.value and row.ecm_mac == (str(ecm_mac) if ecm_mac else None):
                outcome = "unchanged"
            elif not linking and (row is None or row.account != account):
                outcome = "unchanged"  # nothing to unlink for this account
            else:
                outcome = "applied"
            if outcome == "applied" and linking and max_per_account is not None:
                n = session.scalar(select(func.count()).select_from(s.DeviceLink).where(
                    s.DeviceLink.account == account, s.DeviceLink.linked.is_(True),
                    s.DeviceLink.mac != str(mac))) or 0
                if n >= max_per_account:
                    raise Conflict(f"account {account} has {n} linked devices already "
                                   f"(limit {max_per_account}); the link is refused")
            if outcome == "applied":
                if row is None:
                    row = s.DeviceLink(mac=str(mac))
                    session.add(row)
                row.account, row.kind = account, kind.value
                row.ecm_mac = str(ecm_mac) if ecm_mac else None
                row.linked, row.source, row.event_at, row.updated_at = linking, source, at, now
            session.add(s.LinkEvent(
                account=account, mac=str(mac), kind=kind.value,
                ecm_mac=str(ecm_mac) if ecm_mac else None, event=event, event_at=at,
                received_at=now, source=source, outcome=outcome,
                webhook_id=idempotency[0] if idempotency else None,
                body_sha256=idempotency[1] if idempotency else None))
            session.flush()
            self.audit(session, actor, f"link.{event.removeprefix('device.')}", None, {
                "account": account, "mac": mac, "kind": kind.value, "ecm_mac": ecm_mac,
                "at": at, "source": source, "outcome": outcome,
                "webhook_id": idempotency[0] if idempotency else None})
            orders: tuple[str, ...] = ()
            if outcome == "applied" and linking:
                orders = tuple(session.scalars(select(s.Order.id).where(
                    s.Order.account == account, s.Order.all_devices.is_(True),
                    s.Order.state.in_([st.value for st in ACTIVE_ORDER_STATES]))
                    .order_by(s.Order.created_at)))
            return LinkChange(outcome, _link(row) if row is not None else None, orders)

    def links_of(self, account: str, *, linked_only: bool = True) -> list[Link]:
        q = select(s.DeviceLink).where(s.DeviceLink.account == account)
        if linked_only:
            q = q.where(s.DeviceLink.linked.is_(True))
        with self.read_session() as session:
            return [_link(r) for r in session.scalars(q.order_by(s.DeviceLink.mac))]

    def all_links(self) -> list[Link]:
        with self.read_session() as session:
            return [_link(r) for r in session.scalars(
                select(s.DeviceLink).where(s.DeviceLink.linked.is_(True)))]

    def link_history(self, account: str, limit: int = 1000) -> list[dict[str, object]]:
        with self.read_session() as session:
            return [_event(e) for e in session.scalars(
                select(s.LinkEvent).where(s.LinkEvent.account == account)
                .order_by(s.LinkEvent.id).limit(limit))]

    def account_orders(self) -> dict[str, dict[str, set[str]]]:
        """Account -> {active account order id: the MACs it names}."""
        out: dict[str, dict[str, set[str]]] = {}
        with self.read_session() as session:
            for oid, account, mac in session.execute(
                    select(s.Order.id, s.Order.account, s.OrderDevice.mac)
                    .outerjoin(s.OrderDevice, s.OrderDevice.order_id == s.Order.id)
                    .where(s.Order.all_devices.is_(True),
                           s.Order.state.in_([st.value for st in ACTIVE_ORDER_STATES]))):
                macs = out.setdefault(account, {}).setdefault(oid, set())
                if mac is not None:
                    macs.add(mac)
        return out

    def account_orders_missing(self, account: str, macs: Iterable[Mac]) -> list[str]:
        """Active account orders of ``account`` that do not name every one of ``macs``."""
        wanted = {str(m) for m in macs}
        with self.read_session() as session:
            return _missing(session, account, wanted)


def _missing(session: Session, account: str, wanted: set[str]) -> list[str]:
    out = []
    for oid in session.scalars(select(s.Order.id).where(
            s.Order.account == account, s.Order.all_devices.is_(True),
            s.Order.state.in_([st.value for st in ACTIVE_ORDER_STATES]))
            .order_by(s.Order.created_at)):
        named = set(session.scalars(select(s.OrderDevice.mac).where(
            s.OrderDevice.order_id == oid)))
        if wanted - named:
            out.append(oid)
    return out


def _event(e: s.LinkEvent) -> dict[str, object]:
    return {"event": e.event, "mac": e.mac, "kind": e.kind, "ecm_mac": e.ecm_mac,
            "at": e.event_at.isoformat(), "received_at": e.received_at.isoformat(),
            "source": e.source, "outcome": e.outcome}
