"""Audit chain cases mutation testing found unexercised: an entry tampered into
non-JSON, payload values that need normalising (MACs, sets, tuples, dates, enums), who
is recorded as the actor, legacy (unkeyed) entries around the checkpoint, the walk from
a checkpoint, and the reasons a broken chain is reported with."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from enforcer.api.testing import FakeClock
from enforcer.domain.mac import Mac
from enforcer.domain.model import OrderState, Reason
from enforcer.store import Store, canonical_json
from enforcer.store.audit import (
    AUDIT_LOCK_KEY,
    GENESIS_HASH,
    _rows,
    check_entry,
    entry_hash,
    hmac_equal,
    iso_utc,
    utcnow,
    walk_chain,
)
from enforcer.store.auditkey import AuditKeyring


def _sql(store: Store, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def _fill(store: Store, n: int) -> None:
    for i in range(n):
        store.record_event(f"actor{i}", "test.event", None, {"i": i})


def test_an_entry_tampered_into_non_json_is_reported_not_intact(store: Store) -> None:
    _fill(store, 3)
    _sql(store, "UPDATE audit_log SET payload = 'not json {' WHERE seq = 2")
    assert store.verify_audit() == (False, 2, "payload is not valid JSON")
    _sql(store, "UPDATE audit_log SET payload = '' WHERE seq = 2")
    assert store.verify_audit() == (False, 2, "payload is not valid JSON")


def test_a_reformatted_but_equal_payload_still_verifies(store: Store) -> None:
    """The hash covers the payload's content (its canonical JSON), not its bytes."""
    store.record_event("a", "x", None, {"b": 1, "a": [1, 2]})
    _sql(store, "UPDATE audit_log SET payload = :p WHERE seq = 1", p='{ "a": [1, 2], "b": 1 }')
    assert store.verify_audit() == (True, None, "1 entries, chain intact")
    _sql(store, "UPDATE audit_log SET payload = :p WHERE seq = 1", p='{"a":[1,2],"b":2}')
    assert store.verify_audit() == (False, 1, "hash does not match the entry's content (not "
                                             "made with the audit key)")


def test_a_reformatted_payload_of_an_order_still_verifies(store: Store) -> None:
    """The slow path (payload parsed again, the whole document re-encoded) covers every
    field, the order id included."""
    store.record_event("a", "x", "ord_1", {"b": 1})
    store.record_event("a", "x", "ord_1", {"b": 2})
    _sql(store, "UPDATE audit_log SET payload = :p WHERE seq = 1", p='{ "b": 1 }')
    assert store.verify_audit() == (True, None, "2 entries, chain intact")
    _sql(store, "UPDATE audit_log SET order_id = 'ord_2' WHERE seq = 1")
    assert store.verify_audit()[:2] == (False, 1)


def test_macs_sets_tuples_dates_and_enums_are_normalised(store: Store) -> None:
    at = datetime(2026, 2, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    store.record_event("alice", "x", "ord_1", {
        "mac": Mac("00:1A:2B:3C:4D:5E"), "set": {"b", "c", "a"}, "mixed": {2, "1"},
        "frozen": frozenset({3, 1, 2}), "tuple": (3, 1, 2), "day": date(2026, 2, 3),
        "reason": Reason.FRAUD, "state": OrderState.VERIFIED, "at": at, "nested": [(1,)]})
    [e] = store.audit_entries()
    assert e.payload == {
        "mac": "00:1a:2b:3c:4d:5e", "set": ["a", "b", "c"], "mixed": ["1", 2],
        "frozen": [1, 2, 3], "tuple": [3, 1, 2], "day": "2026-02-03", "reason": "fraud",
        "state": "verified", "at": "2026-02-03T02:05:06.000007+00:00", "nested": [[1]]}
    assert store.verify_audit()[0]
    with pytest.raises(TypeError) as err:
        store.record_event("a", "b", None, {"x": b"bytes"})
    assert str(err.value) == "not JSON serialisable in an audit payload: bytes"
    with pytest.raises(ValueError):
        store.record_event("a", "b", None, {"x": float("nan")})
    assert len(store.audit_entries()) == 1


def test_canonical_json_is_sorted_compact_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": {"d": "é", "c": None}}) == (
        '{"a":{"c":null,"d":"é"},"b":1}')
    assert canonical_json([{"z", "y"}, ("x",)]) == '[["y","z"],["x"]]'


def test_the_actor_is_recorded_and_covered_by_the_hash(store: Store,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    with caplog.at_level(logging.INFO, logger="enforcer.store.audit"):
        store.record_event("alice", "order.note", "ord_7", {"k": 1})
        store.record_event("bob", "order.note", None, {"k": 2})
    assert [(e.actor, e.action, e.order_id) for e in store.audit_entries()] == [
        ("alice", "order.note", "ord_7"), ("bob", "order.note", None)]
    [r1, r2] = [r for r in caplog.records if r.name == "enforcer.store.audit"]
    assert r1.getMessage() == "audit order.note (seq 1) by alice"
    assert (r1.event, r1.audit_seq, r1.audit_action, r1.actor, r1.order_id) == (  # type: ignore[attr-defined]
        "audit", 1, "order.note", "alice", "ord_7")
    assert (r2.audit_seq, r2.actor, r2.order_id) == (2, "bob", None)  # type: ignore[attr-defined]
    _sql(store, "UPDATE audit_log SET actor = 'carol' WHERE seq = 2")
    assert store.verify_audit()[:2] == (False, 2)


def test_the_appended_record_is_what_is_stored(store: Store, clock: FakeClock) -> None:
    from enforcer.store.audit import append_audit

    with store.write_session() as session:
        rec = append_audit(session, "alice", "x.y", "ord_1", {"m": Mac("00:11:22:33:44:55")},
                           at=clock(), keys=store.audit_keys)
    [e] = store.audit_entries()
    assert rec == e
    assert (rec.seq, rec.actor, rec.action, rec.order_id, rec.prev_hash, rec.key_id) == (
        1, "alice", "x.y", "ord_1", GENESIS_HASH, store.audit_keys.current)
    assert rec.payload == {"m": "00:11:22:33:44:55"}


def test_several_entries_in_one_transaction_chain_one_after_another(
        store: Store, clock: FakeClock) -> None:
    """The group commit appends several entries in one transaction; the chain head is
    read once and carried from entry to entry (never into the next transaction)."""
    from enforcer.store.audit import append_audit

    with store.write_session() as session:
        recs = [append_audit(session, "engine", "x.batch", None, {"i": i}, at=clock(),
                             keys=store.audit_keys) for i in range(3)]
    store.record_event("engine", "x.after", None, {})  # a transaction of its own
    entries = store.audit_entries()
    assert [(e.seq, e.action) for e in entries] == [
        (1, "x.batch"), (2, "x.batch"), (3, "x.batch"), (4, "x.after")]
    assert recs == entries[:3]
    assert [e.prev_hash for e in entries] == [GENESIS_HASH] + [e.hash for e in entries[:3]]
    assert store.verify_audit() == (True, None, "4 entries, chain intact")


def _legacy(store: Store, seq: int, prev: str, actor: str = "old") -> str:
    at = datetime(2024, 1, 1, 0, 0, seq, tzinfo=UTC)
    h = entry_hash(seq=seq, at=at, actor=actor, action="legacy", order_id=None,
                   payload={"n": seq}, prev_hash=prev)
    assert h is not None
    _sql(store, "INSERT INTO audit_log (seq, at, actor, action, order_id, payload, "
         "prev_hash, hash, key_id) VALUES (:s, :at, :actor, 'legacy', NULL, :p, :prev, :h, "
         "NULL)", s=seq, at=at.replace(tzinfo=None), actor=actor, p=json.dumps({"n": seq}),
         prev=prev, h=h)
    return h


def test_legacy_entries_before_the_first_keyed_one(store: Store) -> None:
    h1 = _legacy(store, 1, GENESIS_HASH)
    _legacy(store, 2, h1)
    _fill(store, 2)  # keyed entries 3 and 4 link to the legacy head
    assert store.verify_audit(None) == (
        True, None, "4 entries, chain intact (2 legacy unkeyed entries)")
    assert store.verify_audit(2) == (
        True, None, "4 entries, chain intact (2 legacy unkeyed entries)")
    assert store.verify_audit(1) == (
        False, 2, "entry has no key id (not authenticated); legacy entries are accepted "
        "only up to seq 1")
    assert store.verify_audit(0)[:2] == (False, 1)
    head = store.audit_entries()[-1]
    _legacy(store, 5, head.hash)  # an unkeyed entry after a keyed one: never adopted
    assert store.verify_audit(None)[:2] == (False, 5)
    assert store.verify_audit(5) == (
        True, None, "5 entries, chain intact (3 legacy unkeyed entries)")


def test_walk_from_a_checkpoint(store: Store) -> None:
    _fill(store, 5)
    entries = store.audit_entries()
    with store.read_session() as session:
        whole = walk_chain(session, store.audit_keys)
        assert (whole.ok, whole.first_bad_seq, whole.last_seq, whole.last_hash, whole.count,
                whole.legacy) == (True, None, 5, entries[-1].hash, 5, 0)
        assert whole.reason == "5 entries, chain intact"
        part = walk_chain(session, store.audit_keys, after_seq=2, after_hash=entries[1].hash)
        assert (part.ok, part.last_seq, part.count) == (True, 5, 3)
        wrong = walk_chain(session, store.audit_keys, after_seq=2, after_hash="f" * 64)
        assert (wrong.ok, wrong.first_bad_seq, wrong.last_seq, wrong.last_hash,
                wrong.count) == (False, 3, 2, "f" * 64, 0)
        assert wrong.reason == "prev_hash does not match the previous entry's hash"
        end = walk_chain(session, store.audit_keys, after_seq=5, after_hash=entries[-1].hash)
        assert (end.ok, end.last_seq, end.last_hash, end.count) == (
            True, 5, entries[-1].hash, 0)
        assert [r[0] for r in _rows(session, 0, batch=2)] == [1, 2, 3, 4, 5]
        assert [r[0] for r in _rows(session, 3, batch=1)] == [4, 5]
    _sql(store, "DELETE FROM audit_log WHERE seq = 3")
    with store.read_session() as session:
        gap = walk_chain(session, store.audit_keys)
    assert (gap.ok, gap.first_bad_seq, gap.reason, gap.last_seq, gap.last_hash,
            gap.count) == (False, 3, "seq 3 is missing (found 4)", 2, entries[1].hash, 2)


def test_check_entry_refusals(store: Store) -> None:
    _fill(store, 1)
    with store.read_session() as session:
        [row] = list(_rows(session))
    keys = store.audit_keys
    assert check_entry(row, keys, 0) is None
    assert check_entry(row, keys, 0, {}) is None
    other = AuditKeyring("kother", {"kother": b"o" * 32}, where="/etc/keys")
    assert check_entry(row, other, 0) == (
        f"entry is keyed with {keys.current}, which is not in the keyring (/etc/keys)")
    with pytest.raises(ValueError, match="current audit key kx is not in the keyring"):
        AuditKeyring("kx", {"ky": b"y" * 32})
    forged = (*row[:7], "0" * 64, row[8])
    assert check_entry(forged, keys, 0) == (
        "hash does not match the entry's content (not made with the audit key)")
    unkeyed = (*row[:8], None)
    assert check_entry(unkeyed, keys, 1) == (
        "hash does not match the entry's content (not made with the audit key)")


def test_entry_hash_forms() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    keys = AuditKeyring("k1", {"k1": b"k" * 32})
    common: dict[str, Any] = {"seq": 1, "at": at, "actor": "a", "action": "b",
                              "order_id": None, "payload": {}, "prev_hash": GENESIS_HASH}
    keyed = entry_hash(**common, key_id="k1", keys=keys)
    assert keyed is not None and len(keyed) == 64
    assert entry_hash(**common, key_id="k1") is None
    assert entry_hash(**common, key_id="k2", keys=keys) is None
    legacy = entry_hash(**common)
    assert legacy is not None and legacy != keyed
    assert entry_hash(**{**common, "actor": "z"}, key_id="k1", keys=keys) != keyed
    assert iso_utc(datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-01-01T00:00:00.000000+00:00")
    assert hmac_equal("abc", "abc") and not hmac_equal("abc", "abd")
    assert utcnow().tzinfo is UTC
    assert AUDIT_LOCK_KEY == 0x656E666F72636572


def test_a_failed_walk_reports_how_far_it_got(store: Store) -> None:
    h1 = _legacy(store, 1, GENESIS_HASH)
    _legacy(store, 2, h1)
    _fill(store, 3)  # keyed 3..5
    entries = store.audit_entries()
    _sql(store, "UPDATE audit_log SET prev_hash = :p WHERE seq = 4", p="e" * 64)
    with store.read_session() as session:
        bad = walk_chain(session, store.audit_keys, legacy_until=2)
        # defaults: no legacy entry is accepted, none adopted
        strict = walk_chain(session, store.audit_keys)
    assert (bad.ok, bad.first_bad_seq, bad.last_seq, bad.last_hash, bad.count,
            bad.legacy) == (False, 4, 3, entries[2].hash, 3, 2)
    assert (strict.ok, strict.first_bad_seq, strict.count, strict.legacy) == (False, 1, 0, 0)
    assert strict.reason.startswith("entry has no key id")
    _sql(store, "DELETE FROM audit_log WHERE seq = 4")
    with store.read_session() as session:
        gap = walk_chain(session, store.audit_keys, legacy_until=2)
    assert (gap.ok, gap.first_bad_seq, gap.reason, gap.count, gap.legacy) == (
        False, 4, "seq 4 is missing (found 5)", 3, 2)


def test_a_forged_entry_after_legacy_ones_reports_how_far_the_walk_got(store: Store) -> None:
    h1 = _legacy(store, 1, GENESIS_HASH)
    _legacy(store, 2, h1)
    _fill(store, 3)  # keyed 3..5
    entries = store.audit_entries()
    _sql(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    with store.read_session() as session:
        bad = walk_chain(session, store.audit_keys, legacy_until=2)
    assert (bad.ok, bad.first_bad_seq, bad.last_seq, bad.last_hash, bad.count,
            bad.legacy) == (False, 4, 3, entries[2].hash, 3, 2)
    assert bad.reason == ("hash does not match the entry's content (not made with the "
                          "audit key)")


def test_chain_writers_take_the_advisory_lock_on_pg(pg_url: str) -> None:
    """On PostgreSQL a chain writer takes the transaction-scoped advisory lock every
    instance shares (on SQLite the IMMEDIATE write transaction serialises instead): here
    in a read session, which holds no lock of its own, and in every write session."""
    from enforcer.store import upgrade
    from enforcer.store.audit import lock_chain

    upgrade(pg_url)
    store = Store.from_url(pg_url, clock=FakeClock())
    try:
        query = text("SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks WHERE "
                     "locktype = 'advisory' AND pid = pg_backend_pid() AND granted")
        with store.read_session() as session:
            before: set[int] = set(session.execute(query).scalars())
            lock_chain(session)
            after: set[int] = set(session.execute(query).scalars())
        assert AUDIT_LOCK_KEY not in before and after - before == {AUDIT_LOCK_KEY}
        with store.write_session() as session:
            assert AUDIT_LOCK_KEY in set(session.execute(query).scalars())
    finally:
        store.dispose()


def test_entry_times_are_utc_whatever_the_hosts_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hashed ``at`` is UTC on every host: a chain verifies wherever it is checked."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        at = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
        assert iso_utc(at) == "2026-01-01T00:00:00.000000+00:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
