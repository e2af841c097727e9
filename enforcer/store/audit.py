"""The hash-chained audit log.

Each entry's hash is HMAC-SHA256, under the key ``key_id`` names (see
``enforcer.store.auditkey``; the key is never in the database), over the canonical JSON
(sorted keys, no spaces, UTF-8) of ``{seq, at, actor, action, order_id, payload,
prev_hash, key_id}``, with ``at`` in ISO 8601 UTC with microseconds; the first entry's
``prev_hash`` is 64 zeros. Entries written before keys existed (``key_id`` null) are
plain SHA-256 over the same document without ``key_id``; they are accepted only up to
the seq the verification checkpoint (outside the database) recorded for them.

Appends are serialised: PostgreSQL takes ``pg_advisory_xact_lock(AUDIT_LOCK_KEY)``
before reading the head, SQLite write sessions begin IMMEDIATE
(``db.make_sessionmakers``), so concurrent writers, even in several daemon instances,
cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from enforcer.domain.mac import Mac
from enforcer.store.auditkey import AuditKeyring
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
               payload: Any, prev_hash: str, key_id: str | None = None,
               keys: AuditKeyring | None = None) -> str | None:
    """The entry's hash: HMAC-SHA256 under ``key_id`` (None when ``keys`` lacks that
    key), or plain SHA-256 for a legacy entry (``key_id`` None)."""
    doc = {"seq": seq, "at": iso_utc(at), "actor": actor, "action": action,
           "order_id": order_id, "payload": payload, "prev_hash": prev_hash}
    if key_id is None:
        return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()
    doc["key_id"] = key_id
    if keys is None:
        return None
    return keys.mac(key_id, canonical_json(doc).encode("utf-8"))


def lock_chain(session: Session) -> None:
    """Serialise chain writers. No-op on SQLite, where the write transaction is IMMEDIATE."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})


_HEAD = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
_INSERT = AUDIT.insert()
_HEAD_KEY = "enforcer_audit_head"


def append_audit(session: Session, actor: str, action: str, order_id: str | None,
                 payload: dict[str, Any], *, at: datetime, keys: AuditKeyring) -> AuditRecord:
    """Append one entry inside the caller's (write) transaction; it commits with the
    change it describes. On SQLite the session must come from the store's write factory.
    Plain SQL statements on the session's connection (no ORM unit of work): this runs
    once per change, so it is on every write's hot path."""
    lock_chain(session)
    conn = session.connection()
    # The head this transaction appended last, if any (several entries in one
    # transaction: one read of the head, not one per entry). Keyed on the transaction
    # object itself, so a later transaction on the same session reads the head again.
    txn = session.get_transaction()
    cached = session.info.get(_HEAD_KEY)
    if cached is not None and txn is not None and cached[0] is txn:
        seq, prev = cached[1] + 1, cached[2]
    else:
        head = conn.execute(_HEAD).first()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    text_ = canonical_json(payload)  # normalised (datetimes, enums, MACs) and canonical
    body = json.loads(text_)
    digest = entry_hash(seq=seq, at=at, actor=actor, action=action, order_id=order_id,
                        payload=body, prev_hash=prev, key_id=keys.current, keys=keys)
    assert digest is not None
    conn.execute(_INSERT, {"seq": seq, "at": at, "actor": actor, "action": action,
                           "order_id": order_id, "payload": text_, "prev_hash": prev,
                           "hash": digest, "key_id": keys.current})
    session.info[_HEAD_KEY] = (txn, seq, digest)
    log.info("audit %s (seq %d) by %s", action, seq, actor,
             extra={"event": "audit", "audit_seq": seq, "audit_action": action,
                    "actor": actor, "order_id": order_id})
    return AuditRecord(seq, at, actor, action, order_id, body, prev, digest, keys.current)


def _rows(session: Session, after: int = 0, batch: int = 2000) -> Iterator[Any]:
    cols = (AuditEntry.seq, AuditEntry.at, AuditEntry.actor, AuditEntry.action,
            AuditEntry.order_id, AuditEntry.payload, AuditEntry.prev_hash, AuditEntry.hash,
            AuditEntry.key_id)
    last = after
    while True:
        chunk = session.execute(
            select(*cols).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not chunk:
            return
        yield from chunk
        last = chunk[-1][0]


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The result of walking (part of) the chain: ``ok``; the first bad seq and why;
    the last good entry (``last_seq``, ``last_hash``), ``count`` entries walked and how
    many of them were legacy (unkeyed)."""

    ok: bool
    first_bad_seq: int | None
    reason: str
    last_seq: int
    last_hash: str
    count: int
    legacy: int = 0


_encode_str = json.encoder.py_encode_basestring  # replaced by the C one below if present
if json.encoder.c_encode_basestring is not None:  # type: ignore[attr-defined]
    _encode_str = json.encoder.c_encode_basestring  # type: ignore[attr-defined]


def _jstr(v: str | None) -> str:
    return "null" if v is None else str(_encode_str(v))


def _stored_doc(seq: int, at: datetime, actor: str, action: str, order_id: str | None,
                payload_text: str, prev_hash: str, key_id: str) -> bytes:
    """The canonical JSON of a keyed entry's document, built around the stored payload
    text (which ``append_audit`` wrote canonical): the same bytes as ``canonical_json``
    of the document with the payload parsed, without parsing and re-encoding it."""
    return ('{"action":' + _jstr(action) + ',"actor":' + _jstr(actor) + ',"at":"'
            + iso_utc(at) + '","key_id":' + _jstr(key_id) + ',"order_id":' + _jstr(order_id)
            + ',"payload":' + payload_text + ',"prev_hash":' + _jstr(prev_hash)
            + ',"seq":' + str(int(seq)) + "}").encode("utf-8")


def check_entry(row: Any, keys: AuditKeyring, legacy_until: int,
                bases: dict[str, Any] | None = None) -> str | None:
    """Why one stored entry (``seq, at, actor, action, order_id, payload, prev_hash,
    hash, key_id``) is not authentic, or None. A legacy (unkeyed) entry is accepted
    only at or before ``legacy_until``. ``bases``: HMAC objects per key id to copy (a
    walk over many entries passes them)."""
    seq, at, actor, action, order_id, payload_text, prev_hash, digest, key_id = row
    if key_id is None and seq > legacy_until:
        return ("entry has no key id (not authenticated); legacy entries are accepted "
                f"only up to seq {legacy_until}")
    if key_id is not None and key_id not in keys.keys:
        return f"entry is keyed with {key_id}, which is not in the keyring ({keys.where})"
    if key_id is not None:
        base = (bases or {}).get(key_id) or hmac.new(keys.keys[key_id], digestmod="sha256")
        h = base.copy()
        h.update(_stored_doc(seq, at, actor, action, order_id, payload_text, prev_hash,
                             key_id))
        if hmac.compare_digest(h.hexdigest().encode(), str(digest).encode()):
            return None
    try:
        payload = json.loads(payload_text)
    except ValueError:
        return "payload is not valid JSON"
    want = entry_hash(seq=seq, at=at, actor=actor, action=action, order_id=order_id,
                      payload=payload, prev_hash=prev_hash, key_id=key_id, keys=keys)
    if want is None or not hmac_equal(want, digest):
        return "hash does not match the entry's content (not made with the audit key)"
    return None


def hmac_bases(keys: AuditKeyring) -> dict[str, Any]:
    return {kid: hmac.new(k, digestmod="sha256") for kid, k in keys.keys.items()}


def hmac_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def walk_chain(session: Session, keys: AuditKeyring, *, after_seq: int = 0,
               after_hash: str = GENESIS_HASH, legacy_until: int = 0,
               adopt_legacy: bool = False) -> ChainCheck:
    """Walk the entries after ``after_seq`` (whose hash must be ``after_hash``): seq
    continuity, links, and each entry's HMAC. ``adopt_legacy`` accepts unkeyed entries
    that precede every keyed one (a first check after the upgrade that introduced
    keys); otherwise unkeyed entries past ``legacy_until`` are refused."""
    expected_seq, prev = after_seq + 1, after_hash
    count = legacy = 0
    keyed_seen = False
    bases = hmac_bases(keys)
    for row in _rows(session, after_seq):
        seq = row[0]
        if seq != expected_seq:
            kind = "missing" if seq > expected_seq else "duplicate"
            return ChainCheck(False, expected_seq, f"seq {expected_seq} is {kind} (found "
                              f"{seq})", expected_seq - 1, prev, count, legacy)
        if row[6] != prev:
            return ChainCheck(False, seq, "prev_hash does not match the previous entry's "
                              "hash", seq - 1, prev, count, legacy)
        limit = seq if adopt_legacy and not keyed_seen else legacy_until
        why = check_entry(row, keys, limit, bases)
        if why is not None:
            return ChainCheck(False, seq, why, seq - 1, prev, count, legacy)
        if row[8] is None:
            legacy += 1
        else:
            keyed_seen = True
        prev, expected_seq, count = row[7], expected_seq + 1, count + 1
    return ChainCheck(True, None, f"{count} entries, chain intact", expected_seq - 1, prev,
                      count, legacy)


def verify_chain(session: Session, keys: AuditKeyring,
                 legacy_until: int | None = None) -> tuple[bool, int | None, str]:
    """Walk the whole chain. Returns (ok, first bad seq or None, reason). Without a
    recorded ``legacy_until``, unkeyed entries before the first keyed one are accepted
    (and counted in the reason)."""
    c = walk_chain(session, keys, legacy_until=legacy_until or 0,
                   adopt_legacy=legacy_until is None)
    reason = c.reason
    if c.ok and c.legacy:
        reason += f" ({c.legacy} legacy unkeyed entries)"
    return c.ok, c.first_bad_seq, reason


def to_record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(row.seq, row.at, row.actor, row.action, row.order_id,
                       json.loads(row.payload), row.prev_hash, row.hash, row.key_id)


Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
