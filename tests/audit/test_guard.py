"""The incremental chain check (``ChainGuard``): it walks only what was appended since
the checkpoint, adopts a chain from before keys once, and refuses unkeyed entries after
that, a changed checkpoint entry, and a disagreeing or truncated anchor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from enforcer.audit.anchor import FileAnchorSink, anchor_now
from enforcer.audit.guard import ChainGuard, read_checkpoint
from enforcer.store import Store, canonical_json
from enforcer.store.audit import GENESIS_HASH, entry_hash


def _legacy(store: Store, n: int) -> None:
    """``n`` entries as written before keys existed (plain SHA-256, no key id)."""
    prev = GENESIS_HASH
    with store.engine.begin() as conn:
        for seq in range(1, n + 1):
            at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=seq)
            body = canonical_json({"i": seq})
            h = entry_hash(seq=seq, at=at, actor="old", action="old.event", order_id=None,
                           payload=json.loads(body), prev_hash=prev)
            conn.execute(text("INSERT INTO audit_log (seq, at, actor, action, order_id, "
                              "payload, prev_hash, hash, key_id) VALUES (:s, :at, 'old', "
                              "'old.event', NULL, :p, :prev, :h, NULL)"),
                         {"s": seq, "at": at.replace(tzinfo=None), "p": body, "prev": prev,
                          "h": h})
            prev = h or ""


def test_walks_only_new_entries(store: Store, tmp_path: Path) -> None:
    guard = ChainGuard(store, tmp_path / "anchors" / "anchors.jsonl")
    for i in range(5):
        store.record_event("t", "x", None, {"i": i})
    v = guard.check()
    assert v.ok and v.checked == 5 and v.head_seq == 5
    cp = read_checkpoint(tmp_path / "anchors" / "checkpoint.json")
    assert cp is not None and cp.seq == 5 and cp.legacy_until == 0
    assert (tmp_path / "anchors" / "checkpoint.json").stat().st_mode & 0o077 == 0
    store.record_event("t", "x", None, {"i": 5})
    v = guard.check()
    assert v.ok and v.checked == 1 and v.head_seq == 6
    assert guard.check().checked == 0


def test_adopts_a_legacy_chain_once(store: Store, tmp_path: Path) -> None:
    _legacy(store, 4)
    guard = ChainGuard(store, tmp_path / "anchors.jsonl")
    v = guard.check()
    assert v.ok, v
    assert guard.legacy_until == 4
    store.record_event("t", "keyed", None, {})
    assert guard.check().ok
    # An unkeyed entry after adoption is refused, whatever its hash.
    head = store.audit_entries(limit=100)[-1]
    at = datetime(2025, 2, 1, tzinfo=UTC)
    h = entry_hash(seq=6, at=at, actor="m", action="x", order_id=None, payload={},
                   prev_hash=head.hash)
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (seq, at, actor, action, order_id, payload, "
                          "prev_hash, hash, key_id) VALUES (6, :at, 'm', 'x', NULL, '{}', "
                          ":prev, :h, NULL)"), {"at": at.replace(tzinfo=None),
                                                "prev": head.hash, "h": h})
    v = guard.check()
    assert not v.ok and v.first_bad_seq == 6 and "no key id" in v.reason
    assert store.verify_audit(legacy_until=4)[:2] == (False, 6)


def test_changed_checkpoint_entry_and_anchor_mismatch(store: Store, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    guard = ChainGuard(store, anchors)
    for i in range(3):
        store.record_event("t", "x", None, {"i": i})
    anchor_now(store, [FileAnchorSink(anchors)])
    v = guard.check()
    assert v.ok and "newest anchor seq 3 matches" in v.reason
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET hash = :h WHERE seq = 3"), {"h": "a" * 64})
    v = guard.check()
    assert not v.ok and v.first_bad_seq == 3 and "verified before, was changed" in v.reason


def test_truncation_past_the_anchor(store: Store, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    for i in range(3):
        store.record_event("t", "x", None, {"i": i})
    anchor_now(store, [FileAnchorSink(anchors)])
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    v = ChainGuard(store, anchors).check()  # no checkpoint yet: a full walk
    assert not v.ok and "truncated" in v.reason
