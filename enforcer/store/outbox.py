"""The notification outbox: outbound webhook messages kept in the database until a
target acknowledges them, so a restart or a fail-over loses none.

A message is written in the same transaction as the event it announces
(:meth:`OutboxMixin.outbox_add`, called by the store methods that record
``order.accepted`` and ``lift.requested``), or in its own transaction right after the
event (:meth:`OutboxMixin.enqueue_notification`, for events the engine raises). Which
targets get which event is the policy's routing, bound once with
:meth:`OutboxMixin.route_notifications`; with no routing bound nothing is written. The
delivery loop (``enforcer.notify.OutboxDelivery``) reads due rows and marks them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.ids import ulid

#: (event, order reason or None) -> names of the webhook targets to send it to.
Router = Callable[[str, str | None], Sequence[str]]
STATES = ("pending", "delivered", "failed", "dropped")


def message_body(event: str, payload: dict[str, Any], at: datetime) -> str:
    """``{"type": event, "timestamp": ISO 8601, "data": payload}`` (fixed once written,
    so every attempt sends the same bytes under the same ``webhook-id``)."""
    return json.dumps({"type": event, "timestamp": at.isoformat(), "data": payload},
                      sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: str
    event: str
    target: str
    order_id: str | None
    body: str
    attempts: int
    created_at: datetime


class OutboxMixin(StoreBase):
    _outbox_router: Router | None = None

    def route_notifications(self, router: Router | None) -> None:
        """Route events to targets (``policy.targets_for``); None stops writing rows."""
        self._outbox_router = router

    @property
    def outbox_enabled(self) -> bool:
        return self._outbox_router is not None

    def outbox_add(self, session: Session, event: str, payload: dict[str, Any], *,
                   reason: str | None) -> list[str]:
        """Write the messages announcing ``event`` inside the caller's transaction (they
        commit or roll back with it); returns their ids (the ``webhook-id``s)."""
        if self._outbox_router is None:
            return []
        targets = list(self._outbox_router(event, reason))
        if not targets:
            return []
        now = self.clock()
        body = message_body(event, payload, now)
        order_id = payload.get("order_id")
        ids = []
        for target in targets:
            msg_id = f"msg_{ulid(now)}"
            session.add(s.OutboxMessage(
                id=msg_id, event=event, target=target,
                order_id=str(order_id) if order_id else None, body=body, state="pending",
                attempts=0, created_at=now, due_at=now, finished_at=None, last_error=None))
            ids.append(msg_id)
        session.flush()
        return ids

    def enqueue_notification(self, event: str, payload: dict[str, Any], *,
                             reason: str | None) -> list[str]:
        """Write the messages for ``event`` in a transaction of their own."""
        if self._outbox_router is None:
            return []
        with self.write_session() as session:
            return self.outbox_add(session, event, payload, reason=reason)

    def outbox_due(self, now: datetime | None = None, limit: int = 100) -> list[OutboxRow]:
        """Pending messages due at ``now``, oldest first."""
        now = now or self.clock()
        with self.read_session() as session:
            rows = session.scalars(select(s.OutboxMessage).where(
                s.OutboxMessage.state == "pending", s.OutboxMessage.due_at <= now)
                .order_by(s.OutboxMessage.due_at, s.OutboxMessage.id).limit(limit))
            return [OutboxRow(r.id, r.event, r.target, r.order_id, r.body, r.attempts,
                              r.created_at) for r in rows]

    def outbox_next_due(self) -> datetime | None:
        with self.read_session() as session:
            return session.scalar(select(func.min(s.OutboxMessage.due_at)).where(
                s.OutboxMessage.state == "pending"))

    def outbox_mark(self, msg_id: str, *, state: str, attempts: int,
                    error: str | None = None, due_at: datetime | None = None) -> bool:
        """Record an attempt: ``pending`` with a new ``due_at`` (a retry), or a final
        ``delivered``, ``failed`` or ``dropped``. False when the row was no longer
        pending (another instance finished it)."""
        if state not in STATES:
            raise ValueError(f"outbox state must be one of {', '.join(STATES)}")
        now = self.clock()
        values: dict[str, Any] = {"state": state, "attempts": attempts,
                                  "last_error": error[:300] if error else None}
        if state == "pending":
            values["due_at"] = due_at or now
        else:
            values["finished_at"] = now
        with self.write_session() as session:
            res = session.execute(update(s.OutboxMessage).where(
                s.OutboxMessage.id == msg_id, s.OutboxMessage.state == "pending")
                .values(**values))
            return bool(getattr(res, "rowcount", 0))

    def outbox_messages(self, *, state: str | None = None) -> list[dict[str, Any]]:
        """Every message (for operators and tests), oldest first."""
        q = select(s.OutboxMessage).order_by(s.OutboxMessage.created_at, s.OutboxMessage.id)
        if state is not None:
            q = q.where(s.OutboxMessage.state == state)
        with self.read_session() as session:
            return [{"id": r.id, "event": r.event, "target": r.target,
                     "order_id": r.order_id, "state": r.state, "attempts": r.attempts,
                     "last_error": r.last_error, "created_at": r.created_at,
                     "finished_at": r.finished_at} for r in session.scalars(q)]

    def count_outbox(self) -> tuple[dict[str, int], datetime | None]:
        """(messages by state, when the oldest pending one was written)."""
        with self.read_session() as session:
            counts = {st: n for st, n in session.execute(
                select(s.OutboxMessage.state, func.count()).group_by(s.OutboxMessage.state))}
            oldest = session.scalar(select(func.min(s.OutboxMessage.created_at)).where(
                s.OutboxMessage.state == "pending"))
        return counts, oldest

    def outbox_prune(self, older_than: timedelta) -> int:
        """Delete finished messages finished more than ``older_than`` ago."""
        cutoff = self.clock() - older_than
        with self.write_session() as session:
            res = session.execute(delete(s.OutboxMessage).where(
                s.OutboxMessage.state != "pending", s.OutboxMessage.finished_at < cutoff))
            return int(getattr(res, "rowcount", 0) or 0)
