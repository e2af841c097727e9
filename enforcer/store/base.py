"""Session handling shared by the store's parts: short sessions, one write transaction
per call, audit entry appended inside it, SQLAlchemy errors translated to StoreError."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Self

from sqlalchemy import Engine, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from enforcer.errors import StoreError
from enforcer.store import schema as sch
from enforcer.store.audit import Clock, append_audit, lock_chain, utcnow
from enforcer.store.auditkey import AuditKeyring, ephemeral_keyring
from enforcer.store.db import make_engine, make_sessionmakers

#: Timestamp column set when an order enters each state.
STATE_STAMPS = {"enforced": "enforced_at", "verified": "verified_at", "lifted": "lifted_at"}


class PriorityLock:
    """A mutex whose urgent waiters are served before ordinary ones, each kind in
    arrival order. Release hands the lock to one waiter (its own lock is released), so
    only that thread wakes: a Condition's notify_all woke every queued writer to find
    the lock taken again, which cost more CPU than the writes under load."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._urgent: deque[threading.Lock] = deque()
        self._normal: deque[threading.Lock] = deque()

    def urgent_waiting(self) -> bool:
        """An urgent writer is queued (a holder running several writes yields to it)."""
        return bool(self._urgent)

    @contextmanager
    def hold(self, *, urgent: bool = False) -> Iterator[None]:
        with self._mutex:
            waiter: threading.Lock | None = None
            if self._held:
                waiter = threading.Lock()
                waiter.acquire()
                (self._urgent if urgent else self._normal).append(waiter)
            else:
                self._held = True
        if waiter is not None:
            waiter.acquire()  # the holder hands the lock over: _held stays True
        try:
            yield
        finally:
            with self._mutex:
                queue = self._urgent or self._normal
                if queue:
                    queue.popleft().release()
                else:
                    self._held = False


class StoreBase:
    def __init__(self, engine: Engine, *, clock: Clock = utcnow,
                 audit_keys: AuditKeyring | None = None) -> None:
        self.engine = engine
        self.clock = clock
        # The audit chain's HMAC keys (never stored in the database). The daemon and
        # the CLI pass the configured ones; without them, a key only this process holds.
        self.audit_keys = audit_keys or ephemeral_keyring()
        self._read, self._write = make_sessionmakers(engine)
        # SQLite has one writer at a time. A thread that finds the database locked
        # sleeps in SQLite's busy handler (steps of 1 ms up to 100 ms) and may keep
        # losing to newer writers, so under load a write waited seconds while the lock
        # was mostly free. This process's writers queue on a lock instead and get the
        # database the moment it is released (other processes, e.g. the CLI, still
        # meet busy_timeout). PostgreSQL needs nothing of the kind.
        # Intake writes (a new order) go ahead of queued engine writes, so an order is
        # acknowledged quickly even while devices are being worked on.
        self._write_lock: PriorityLock | None = (
            PriorityLock() if engine.dialect.name == "sqlite" else None)

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = utcnow,
                 audit_keys: AuditKeyring | None = None) -> Self:
        """A store on a fresh engine for ``url`` (run ``db.upgrade`` first)."""
        return cls(make_engine(url), clock=clock, audit_keys=audit_keys)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        try:
            with self._read() as session:
                yield session
        except SQLAlchemyError as e:
            raise StoreError(f"database read failed: {type(e).__name__}: {_short(e)}") from e

    @contextmanager
    def write_session(self, *, urgent: bool = False) -> Iterator[Session]:
        """One serialised write transaction; commits on success, rolls back on error.
        Every change made in it must be accompanied by :meth:`audit`. ``urgent`` writes
        (intake) are served before queued ordinary ones."""
        lock: AbstractContextManager[object] = (
            self._write_lock.hold(urgent=urgent) if self._write_lock is not None
            else nullcontext())
        try:
            with lock, self._write() as session, session.begin():
                lock_chain(session)
                yield session
        except SQLAlchemyError as e:
            raise StoreError(f"database write failed: {type(e).__name__}: {_short(e)}") from e

    def urgent_write_waiting(self) -> bool:
        """An intake write waits for this process's write lock (SQLite only: on
        PostgreSQL writers do not queue on it)."""
        return self._write_lock is not None and self._write_lock.urgent_waiting()

    def audit(self, session: Session, actor: str, action: str, order_id: str | None,
              payload: dict[str, Any]) -> None:
        append_audit(session, actor, action, order_id, payload, at=self.clock(),
                     keys=self.audit_keys)

    def _write_state(self, session: Session, order_id: str, before: str, new: str,
                     detail: str | None, actor: str, *, audited: bool = True
                     ) -> dict[str, Any]:
        """Set an order's state and detail (stamping enforced_at / verified_at /
        lifted_at on entry) and, if ``audited``, record it as ``order.state``. Returns
        the time columns it set (``updated_at`` and the entry stamp, if any)."""
        now = self.clock()
        stamps: dict[str, Any] = {"updated_at": now}
        if new != before and new in STATE_STAMPS:
            stamps[STATE_STAMPS[new]] = now
        session.connection().execute(
            update(sch.ORDERS).where(sch.ORDERS.c.id == order_id).values(
                state=new, state_detail=detail, **stamps))
        if audited:
            self.audit(session, actor, "order.state", order_id,
                       {"from": before, "to": new, "detail": detail})
        return stamps

    def ping(self) -> bool:
        """True when the database answers (for /readyz)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def _short(e: SQLAlchemyError) -> str:
    # The first line of the DBAPI message, without SQL or parameters (which may hold data).
    orig = getattr(e, "orig", None)
    msg = str(orig) if orig is not None else e.__class__.__name__
    return msg.splitlines()[0][:200] if msg else ""
