"""The ``Store``: the repository API the engine, API and CLI use."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enforcer.domain import lifecycle
from enforcer.store import audit
from enforcer.store import schema as s
from enforcer.store.amendments import AmendmentsMixin
from enforcer.store.cluster import ClusterMixin, Relevant
from enforcer.store.coverage import CoverageMixin
from enforcer.store.devices import DevicesMixin
from enforcer.store.lifts import LiftsMixin
from enforcer.store.links import LinksMixin
from enforcer.store.orders import OrdersMixin
from enforcer.store.outbox import OutboxMixin
from enforcer.store.records import AuditRecord, TargetSpec
from enforcer.store.sessions import SessionsMixin
from enforcer.store.targets import TargetsMixin
from enforcer.store.users import UsersMixin

log = logging.getLogger(__name__)
#: One write for ``Store.write_batch``: a function of the open write session.
WriteOp = Callable[[Session], Any]


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

    # ---- several writes in one transaction (the engine's group commit) --------------

    def write_batch(self, ops: Sequence[WriteOp]) -> list[tuple[bool, Any]]:
        """Run ``ops`` (each made by one of the ``*_op`` methods below) in one write
        transaction, in order: per op, (True, its result) or (False, the exception it
        raised). If any op raises, nothing of that transaction is kept and every op is
        run again in a transaction of its own, so one failing write never takes others
        with it and each caller gets exactly the outcome it would have had alone.

        When an intake write (``urgent``) starts waiting for the write lock, the
        transaction ends after the op in progress: fewer results than ``ops`` come back,
        and the ops without one were not run (the caller runs them next). A new order
        so waits for one engine write, not for a whole batch."""
        if len(ops) > 1:
            try:
                with self.write_session() as session:
                    done: list[tuple[bool, Any]] = []
                    for op in ops:
                        if done and self.urgent_write_waiting():
                            break
                        done.append((True, op(session)))
                    return done
            except Exception as e:  # noqa: BLE001 - rolled back whole; each alone, below
                log.info("a batch of %d writes failed (%s); writing them one at a time",
                         len(ops), type(e).__name__)
        out: list[tuple[bool, Any]] = []
        for op in ops:
            try:
                with self.write_session() as session:
                    out.append((True, op(session)))
            except Exception as e:  # noqa: BLE001 - handed to the op's caller
                out.append((False, e))
        return out

    def scan_op(self, order_id: str, device: str, *, phase: lifecycle.Phase, ok: bool,
                detail: dict[str, Any],
                target_updates: Sequence[tuple[int, str, dict[str, Any]]] = (),
                relevant: Relevant | None = None, actor: str = "engine",
                definition: str | None = None) -> WriteOp:
        """``record_scan`` as an op for ``write_batch``."""
        def op(session: Session) -> Any:
            return self._record_scan_in(session, order_id, device, phase=phase, ok=ok,
                                        detail=detail, target_updates=target_updates,
                                        relevant=relevant, actor=actor,
                                        definition=definition, now=self.clock())
        return op

    def target_op(self, target_id: int, *, actor: str, audit_action: str,
                  **fields: Any) -> WriteOp:
        """``update_target`` as an op for ``write_batch``."""
        def op(session: Session) -> Any:
            return self._update_target_in(session, target_id, actor=actor,
                                          audit_action=audit_action, fields=fields)
        return op

    def targets_op(self, order_id: str, specs: Sequence[TargetSpec], *,
                   actor: str = "engine", enforcing: str | None = None) -> WriteOp:
        """``upsert_targets`` as an op for ``write_batch``."""
        specs = tuple(specs)  # the op may run twice (``write_batch``)

        def op(session: Session) -> Any:
            return self._sync_targets_in(session, order_id, specs, actor=actor, prune=False,
                                         enforcing=enforcing)
        return op

    def event_op(self, actor: str, action: str, order_id: str | None,
                 payload: dict[str, Any]) -> WriteOp:
        """``record_event`` as an op for ``write_batch``."""
        def op(session: Session) -> Any:
            self.audit(session, actor, action, order_id, payload)
        return op

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
