"""The ``Store``: the repository API the engine, API and CLI use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from enforcer.store import audit
from enforcer.store import schema as s
from enforcer.store.amendments import AmendmentsMixin
from enforcer.store.cluster import ClusterMixin
from enforcer.store.coverage import CoverageMixin
from enforcer.store.devices import DevicesMixin
from enforcer.store.lifts import LiftsMixin
from enforcer.store.links import LinksMixin
from enforcer.store.orders import OrdersMixin
from enforcer.store.outbox import OutboxMixin
from enforcer.store.records import AuditRecord
from enforcer.store.sessions import SessionsMixin
from enforcer.store.targets import TargetsMixin
from enforcer.store.users import UsersMixin


class Store(OrdersMixin, TargetsMixin, UsersMixin, LiftsMixin, DevicesMixin, ClusterMixin,
            CoverageMixin, AmendmentsMixin, LinksMixin, SessionsMixin, OutboxMixin):
    """Every method opens its own short session; writes run in one serialised
    transaction together with their audit entry. Safe to call from worker threads."""

    def record_event(self, actor: str, action: str, order_id: str | None,
                     payload: dict[str, Any]) -> None:
        """Append an audit entry that has no other row change (e.g. a refused request,
        a push attempt's outcome)."""
        with self.write_session() as session:
            self.audit(session, actor, action, order_id, payload)

    def verify_audit(self, legacy_until: int | None = 0) -> tuple[bool, int | None, str]:
        """(ok, first bad seq or None, reason): the whole chain against the audit keys.
        Detects modified, deleted, inserted, reordered and forged (not keyed) entries;
        truncation of the newest entries needs an anchor (``enforcer.audit``).
        ``legacy_until``: unkeyed entries accepted up to this seq (None: those before the
        first keyed entry, for a chain from before keys when no checkpoint says more)."""
        with self.read_session() as session:
            return audit.verify_chain(session, self.audit_keys, legacy_until)

    def audit_entries(self, *, order_id: str | None = None, action: str | None = None,
                      after_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        q = select(s.AuditEntry).where(s.AuditEntry.seq > after_seq)
        if order_id is not None:
            q = q.where(s.AuditEntry.order_id == order_id)
        if action is not None:
            q = q.where(s.AuditEntry.action == action)
        q = q.order_by(s.AuditEntry.seq).limit(limit)
        with self.read_session() as session:
            return [audit.to_record(r) for r in session.scalars(q)]
