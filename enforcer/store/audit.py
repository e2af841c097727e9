"""The hash-chained audit log.

Each entry's hash is SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of
``{seq, at, actor, action, order_id, payload, prev_hash}``, with ``at`` in ISO 8601 UTC
with microseconds; the first entry's ``prev_hash`` is 64 zeros. Appends are serialised:
PostgreSQL takes ``pg_advisory_xact_lock(AUDIT_LOCK_KEY)`` before reading the head,
SQLite write sessions begin IMMEDIATE (``db.make_sessionmakers``), so concurrent
writers, even in several daemon instances, cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from enforcer.domain.mac import Mac
from enforcer.store.records import AuditRecord
from enforcer.store.schema import AUDIT, AuditEntry

log = logging.getLogger(__name__)
GENESIS_HASH = "0" * 64
#: Advisory lock key shared by every enforcer instance writing to one PostgreSQL database.
AUDIT_LOCK_KEY = 0x656E666F72636572 & 0x7FFFFFFFFFFFFFFF  # "enforcer"


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return iso_utc(o)
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, Mac):
        return str(o)
    if isinstance(o, set | frozenset | tuple):
        return sorted(o, key=str) if isinstance(o, set | frozenset) else list(o)
    raise TypeError(f"not JSON serialisable in an audit payload: {type(o).__name__}")


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, non-ASCII kept (encoded as UTF-8 when hashed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_default, allow_nan=False)


def iso_utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(*, seq: int, at: datetime, actor: str, action: str, order_id: str | None,
               payload: Any, prev_hash: str) -> str:
    doc = {"seq": seq, "at": iso_utc(at), "actor": actor, "action": action,
           "order_id": order_id, "payload": payload, "prev_hash": prev_hash}
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def lock_chain(session: Session) -> None:
    """Serialise chain writers. No-op on SQLite, where the write transaction is IMMEDIATE."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})


_HEAD = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
_INSERT = AUDIT.insert()


def append_audit(session: Session, actor: str, action: str, order_id: str | None,
                 payload: dict[str, Any], *, at: datetime) -> AuditRecord:
    """Append one entry inside the caller's (write) transaction; it commits with the
    change it describes. On SQLite the session must come from the store's write factory.
    Plain SQL statements on the session's connection (no ORM unit of work): this runs
    once per change, so it is on every write's hot path."""
    lock_chain(session)
    conn = session.connection()
    head = conn.execute(_HEAD).first()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    text_ = canonical_json(payload)  # normalised (datetimes, enums, MACs) and canonical
    body = json.loads(text_)
    digest = entry_hash(seq=seq, at=at, actor=actor, action=action, order_id=order_id,
                        payload=body, prev_hash=prev)
    conn.execute(_INSERT, {"seq": seq, "at": at, "actor": actor, "action": action,
                           "order_id": order_id, "payload": text_, "prev_hash": prev,
                           "hash": digest})
    log.info("audit %s (seq %d) by %s", action, seq, actor,
             extra={"event": "audit", "audit_seq": seq, "audit_action": action,
                    "actor": actor, "order_id": order_id})
    return AuditRecord(seq, at, actor, action, order_id, body, prev, digest)


def _rows(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        chunk = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].seq


def verify_chain(session: Session) -> tuple[bool, int | None, str]:
    """Walk the chain. Returns (ok, first bad seq or None, reason)."""
    expected_seq, prev = 1, GENESIS_HASH
    count = 0
    for row in _rows(session):
        if row.seq != expected_seq:
            kind = "missing" if row.seq > expected_seq else "duplicate"
            return False, expected_seq, f"seq {expected_seq} is {kind} (found {row.seq})"
        if row.prev_hash != prev:
            return False, row.seq, "prev_hash does not match the previous entry's hash"
        try:
            payload = json.loads(row.payload)
        except ValueError:
            return False, row.seq, "payload is not valid JSON"
        digest = entry_hash(seq=row.seq, at=row.at, actor=row.actor, action=row.action,
                            order_id=row.order_id, payload=payload, prev_hash=row.prev_hash)
        if digest != row.hash:
            return False, row.seq, "hash does not match the entry's content"
        prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
    return True, None, f"{count} entries, chain intact"


def to_record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(row.seq, row.at, row.actor, row.action, row.order_id,
                       json.loads(row.payload), row.prev_hash, row.hash)


Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
