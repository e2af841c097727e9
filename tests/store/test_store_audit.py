"""The audit chain: keyed hashing, concurrent appends from several writers, tamper
detection (including an insider who rewrites rows and recomputes the hashes)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from enforcer.api.testing import FakeClock
from enforcer.store import Store, canonical_json
from enforcer.store.audit import GENESIS_HASH, entry_hash


def _fill(store: Store, n: int = 6) -> None:
    for i in range(n):
        store.record_event("tester", "test.event", None, {"i": i, "note": "héllo"})


_INSERT = ("INSERT INTO audit_log (seq, at, actor, action, order_id, payload, prev_hash, hash)"
           " VALUES (:seq, :at, :actor, 'x', NULL, '{}', :prev, :hash)")


def _sql(store: Store, *statements: str, **params: object) -> None:
    """Tamper with the table directly, as an attacker with database access would."""
    with store.engine.begin() as conn:
        for s in statements:
            conn.execute(text(s), params if ":" in s else {})


def test_hash_is_hmac_sha256_over_canonical_json(store: Store, clock: FakeClock) -> None:
    store.record_event("alice", "x.y", "ord_1", {"b": [1, 2], "a": "é", "at": clock.now})
    (e,) = store.audit_entries()
    assert e.seq == 1 and e.prev_hash == GENESIS_HASH
    assert e.key_id == store.audit_keys.current
    doc = {"seq": 1, "at": "2025-03-01T12:00:00.123456+00:00", "actor": "alice",
           "action": "x.y", "order_id": "ord_1",
           "payload": {"a": "é", "at": "2025-03-01T12:00:00.123456+00:00", "b": [1, 2]},
           "prev_hash": GENESIS_HASH, "key_id": e.key_id}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = store.audit_keys.keys[e.key_id]
    assert e.hash == hmac.new(key, raw.encode("utf-8"), "sha256").hexdigest()
    # Plain SHA-256 of the same document (what an insider without the key computes)
    # is not the entry's hash.
    assert e.hash != hashlib.sha256(raw.encode("utf-8")).hexdigest()
    assert canonical_json({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'
    assert store.verify_audit() == (True, None, "1 entries, chain intact")


def test_entries_link(store: Store) -> None:
    _fill(store, 4)
    entries = store.audit_entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    for prev, cur in itertools.pairwise(entries):
        assert cur.prev_hash == prev.hash
    assert store.verify_audit()[0]


def test_concurrent_writers_keep_one_chain(db_url: str, store: Store) -> None:
    """Several threads, each with its own engine (like several daemon instances)."""
    writers, per_writer = 6, 25
    stores = [Store.from_url(db_url) for _ in range(writers)]
    errors: list[BaseException] = []

    def work(s: Store, w: int) -> None:
        try:
            for i in range(per_writer):
                s.record_event(f"w{w}", "test.concurrent", None, {"w": w, "i": i})
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s, w)) for w, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in stores:
        s.dispose()
    assert not errors, errors
    entries = store.audit_entries(limit=10_000)
    assert [e.seq for e in entries] == list(range(1, writers * per_writer + 1))
    assert store.verify_audit() == (True, None, f"{writers * per_writer} entries, chain intact")


def test_detects_modified_payload(store: Store) -> None:
    _fill(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET payload = :p WHERE seq = 3"), {"p": '{"i":99}'})
    ok, bad, reason = store.verify_audit()
    assert (ok, bad) == (False, 3) and "hash" in reason


def test_detects_modified_actor_and_time(store: Store) -> None:
    _fill(store)
    _sql(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    assert store.verify_audit()[:2] == (False, 2)


def test_detects_rehashed_modification(store: Store) -> None:
    """An insider rewrites a row and recomputes its hash without the key: as a legacy
    (unkeyed) SHA-256 entry, or keeping the key id: both are refused at that row."""
    _fill(store)
    e = store.audit_entries()[2]
    forged = entry_hash(seq=3, at=e.at, actor="mallory", action=e.action, order_id=None,
                        payload=e.payload, prev_hash=e.prev_hash)
    assert forged is not None
    _sql(store, "UPDATE audit_log SET actor = 'mallory', hash = :h, key_id = NULL "
         "WHERE seq = 3", h=forged)
    ok, bad, reason = store.verify_audit()
    assert (ok, bad) == (False, 3) and "no key id" in reason
    _sql(store, "UPDATE audit_log SET key_id = :k WHERE seq = 3", k=e.key_id)
    ok, bad, reason = store.verify_audit()
    assert (ok, bad) == (False, 3) and "not made with the audit key" in reason


def test_detects_whole_chain_recomputed_without_the_key(store: Store) -> None:
    """Every row rewritten as a legacy SHA-256 chain, links and all: refused from seq 1
    (no legacy entries are accepted where the checkpoint records none)."""
    _fill(store, 4)
    prev = GENESIS_HASH
    for e in store.audit_entries():
        h = entry_hash(seq=e.seq, at=e.at, actor="mallory", action=e.action,
                       order_id=e.order_id, payload=e.payload, prev_hash=prev)
        _sql(store, "UPDATE audit_log SET actor = 'mallory', hash = :h, prev_hash = :p, "
             "key_id = NULL WHERE seq = :s", h=h, p=prev, s=e.seq)
        prev = h or ""
    ok, bad, _ = store.verify_audit()
    assert (ok, bad) == (False, 1)


def test_other_key_is_refused(db_url: str, store: Store) -> None:
    """Entries made with a key this keyring lacks do not verify, and say which key."""
    from enforcer.store.auditkey import load_keyring

    _fill(store, 2)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        other = Store.from_url(db_url, audit_keys=load_keyring(Path(d)))
        try:
            ok, bad, reason = other.verify_audit()
        finally:
            other.dispose()
    assert (ok, bad) == (False, 1) and "not in the keyring" in reason


def test_detects_deleted_row(store: Store) -> None:
    _fill(store)
    _sql(store, "DELETE FROM audit_log WHERE seq = 4")
    ok, bad, reason = store.verify_audit()
    assert (ok, bad) == (False, 4) and "missing" in reason


def test_detects_inserted_row(store: Store) -> None:
    _fill(store)
    prev = store.audit_entries()[1]  # seq 2
    at = datetime(2025, 3, 1, 12, 0, 1, tzinfo=UTC)
    forged = entry_hash(seq=3, at=at, actor="mallory", action="x", order_id=None,
                        payload={}, prev_hash=prev.hash)
    _sql(store,
         "UPDATE audit_log SET seq = -seq WHERE seq > 2",
         "UPDATE audit_log SET seq = 1 - seq WHERE seq < 0",
         _INSERT, seq=3, at=at.replace(tzinfo=None), actor="mallory", prev=prev.hash,
         hash=forged)
    ok, bad, reason = store.verify_audit()
    # The forged row links but is not keyed (its hash is not an HMAC under the key).
    assert not ok and bad == 3 and "key" in reason


def test_detects_appended_row_with_a_bad_link(store: Store) -> None:
    _fill(store, 3)
    _sql(store, _INSERT, seq=4, at=datetime(2025, 3, 1, 12, 0, 1), actor="m", prev="1" * 64,
         hash="2" * 64)
    assert store.verify_audit()[:2] == (False, 4)


def test_detects_reordered_rows(store: Store) -> None:
    _fill(store)
    _sql(store,
         "UPDATE audit_log SET seq = 100 WHERE seq = 2",
         "UPDATE audit_log SET seq = 2 WHERE seq = 3",
         "UPDATE audit_log SET seq = 3 WHERE seq = 100")
    ok, bad, _ = store.verify_audit()
    assert (ok, bad) == (False, 2)


def test_empty_chain_is_ok(store: Store) -> None:
    assert store.verify_audit() == (True, None, "0 entries, chain intact")


def test_payload_must_be_json(store: Store) -> None:
    with pytest.raises(TypeError, match="not JSON serialisable"):
        store.record_event("a", "b", None, {"x": object()})
    assert store.audit_entries() == []


def test_stored_document_bytes_equal_the_canonical_encoding(store: Store) -> None:
    """The verifier's fast path (document built around the stored payload text) hashes
    exactly the bytes ``canonical_json`` gives for the parsed entry."""
    from enforcer.store.audit import _stored_doc, iso_utc

    store.record_event('a "quoted" \u00e9\u2028 actor', "x.y", None,
                       {"z": [1, 2.5, None, True], "a": "\u00e9\\\n\u0001", "n": 10**20})
    store.record_event("b", "x.z", "ord_1", {})
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, payload, prev_hash, key_id FROM audit_log "
                                 "ORDER BY seq")).all()
    for e, row in zip(store.audit_entries(), rows, strict=True):
        seq, payload_text, prev, key_id = int(row[0]), str(row[1]), str(row[2]), str(row[3])
        doc = {"seq": seq, "at": iso_utc(e.at), "actor": e.actor, "action": e.action,
               "order_id": e.order_id, "payload": json.loads(payload_text),
               "prev_hash": prev, "key_id": key_id}
        assert _stored_doc(seq, e.at, e.actor, e.action, e.order_id, payload_text, prev,
                           key_id) == canonical_json(doc).encode("utf-8")
