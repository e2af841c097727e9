"""The incremental chain check (``ChainGuard``): it walks only what was appended since
the checkpoint, adopts a chain from before keys once, and refuses unkeyed entries after
that, a changed checkpoint entry, and a disagreeing or truncated anchor."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from enforcer.audit.anchor import FileAnchorSink, anchor_now, read_anchor_file
from enforcer.audit.guard import ChainGuard, Checkpoint, read_checkpoint, write_checkpoint
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


def test_an_empty_chain_then_its_first_entries(store: Store, tmp_path: Path) -> None:
    """An empty chain checks out and records the genesis; the next check walks from it."""
    guard = ChainGuard(store, tmp_path / "anchors.jsonl")
    v = guard.check()
    assert v.as_tuple() == (True, None, "chain intact to seq 0 (0 new entries checked); "
                                        "no anchor yet")
    assert (v.checked, v.head_seq) == (0, 0) and guard.last == v
    path = tmp_path / "checkpoint.json"
    assert json.loads(path.read_text()) == {"seq": 0, "hash": GENESIS_HASH,
                                            "legacy_until": 0}
    store.record_event("t", "x", None, {})
    store.record_event("t", "x", None, {})
    v = guard.check()
    assert v.as_tuple() == (True, None, "chain intact to seq 2 (2 new entries checked); "
                                        "no anchor yet")
    head = store.audit_entries(limit=10)[-1]
    assert json.loads(path.read_text()) == {"seq": 2, "hash": head.hash, "legacy_until": 0}


def test_the_checkpoint_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "deeper" / "cp.json"
    assert read_checkpoint(path) is None
    write_checkpoint(path, Checkpoint(7, "ab" * 32, 3))
    assert read_checkpoint(path) == Checkpoint(7, "ab" * 32, 3)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["cp.json"]  # no temporary left
    write_checkpoint(path, Checkpoint(8, "cd" * 32, 3))  # replaced whole
    assert json.loads(path.read_text()) == {"seq": 8, "hash": "cd" * 32, "legacy_until": 3}
    for bad, why in (("{", "Expecting"), ('{"seq": 1, "hash": "h"}', "'legacy_until'"),
                     ('{"seq": "x", "hash": "h", "legacy_until": 0}', "invalid literal"),
                     ("[1]", "list indices"), (b"\xff", "utf-8")):
        if isinstance(bad, bytes):
            path.write_bytes(bad)
        else:
            path.write_text(bad)
        with pytest.raises(ValueError, match=rf"^{path}: not a checkpoint \(.*{why}"):
            read_checkpoint(path)
    path.unlink()
    path.mkdir()
    with pytest.raises(ValueError, match=rf"^{path}: not a checkpoint \(.*Is a directory"):
        read_checkpoint(path)


def test_a_bad_checkpoint_or_anchor_file_fails_the_check(store: Store, tmp_path: Path) -> None:
    store.record_event("t", "x", None, {})
    cp = tmp_path / "elsewhere" / "cp.json"
    guard = ChainGuard(store, tmp_path / "anchors.jsonl", checkpoint=cp)
    assert guard.check().ok and read_checkpoint(cp) is not None
    assert not (tmp_path / "checkpoint.json").exists()
    cp.write_text("{not json")
    v = guard.check()
    assert (v.ok, v.first_bad_seq, v.checked, v.head_seq) == (False, None, 0, 0)
    assert v.reason.startswith(f"{cp}: not a checkpoint (") and guard.last == v
    assert guard.legacy_until == 0  # unreadable: nothing may be legacy
    cp.unlink()
    (tmp_path / "anchors.jsonl").write_text("garbage\n")
    v = guard.check()
    assert (v.ok, v.first_bad_seq, v.checked, v.head_seq) == (False, None, 0, 0)
    assert "anchors.jsonl" in v.reason


def test_a_missing_checkpoint_entry_and_a_bad_walk(store: Store, tmp_path: Path) -> None:
    guard = ChainGuard(store, tmp_path / "anchors.jsonl")
    for i in range(4):
        store.record_event("t", "x", None, {"i": i})
    assert guard.check().ok
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    v = guard.check()
    assert v.as_tuple() == (False, 4, f"entry 4, verified before, is missing (checkpoint "
                                      f"{tmp_path / 'checkpoint.json'})")
    assert (v.checked, v.head_seq) == (0, 0)
    # a fresh guard (no checkpoint) walks everything: entry 2 changed after entry 1
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    v = ChainGuard(store, tmp_path / "a2.jsonl", checkpoint=tmp_path / "cp2.json").check()
    assert (v.ok, v.first_bad_seq, v.checked, v.head_seq) == (False, 2, 1, 1)
    assert v.reason == store.verify_audit()[2]
    assert not (tmp_path / "cp2.json").exists()  # a failed check moves nothing


def test_new_entries_after_the_checkpoint_are_walked_and_checked(
        store: Store, tmp_path: Path) -> None:
    guard = ChainGuard(store, tmp_path / "anchors.jsonl")
    for i in range(3):
        store.record_event("t", "x", None, {"i": i})
    assert guard.check().ok
    for i in range(3):
        store.record_event("t", "x", None, {"i": i})
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5"))
    v = guard.check()
    assert (v.ok, v.first_bad_seq, v.checked, v.head_seq) == (False, 5, 1, 4)
    assert read_checkpoint(tmp_path / "checkpoint.json") == Checkpoint(
        3, store.audit_entries(limit=3)[-1].hash, 0)


def test_an_anchor_that_disagrees_with_its_entry(store: Store, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    for i in range(3):
        store.record_event("t", "x", None, {"i": i})
    anchor_now(store, [FileAnchorSink(anchors)])
    store.record_event("t", "x", None, {"i": 3})
    with store.engine.begin() as conn:  # rewritten from seq 3 on, links and all
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 3"))
    store.record_event("t", "y", None, {"i": 2})
    store.record_event("t", "y", None, {"i": 3})
    [a] = read_anchor_file(anchors)
    v = ChainGuard(store, anchors).check()
    assert v.as_tuple() == (False, 3, f"entry 3 does not match the anchor of {a.at}")
    assert (v.checked, v.head_seq) == (4, 4)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    v = ChainGuard(store, anchors).check()
    assert v.as_tuple() == (False, 3, f"truncated: the anchor of {a.at} records seq 3 but "
                                      f"the chain ends at seq 2")
    assert (v.checked, v.head_seq) == (2, 2)


def test_a_checkpoint_that_cannot_be_written_does_not_fail_the_check(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "link"  # a dangling link: nothing to read, no directory to make
    blocker.symlink_to(tmp_path / "gone" / "dir")
    guard = ChainGuard(store, tmp_path / "anchors.jsonl", checkpoint=blocker / "cp.json")
    store.record_event("t", "x", None, {})
    with caplog.at_level(logging.ERROR, logger="enforcer.audit.guard"):
        v = guard.check()
    assert v.ok and v.checked == 1
    [rec] = caplog.records
    assert rec.getMessage() == (f"cannot write the audit checkpoint {blocker / 'cp.json'}: "
                                "File exists")
    assert guard.check().checked == 1  # the next check starts from the beginning again


def test_each_check_is_logged_and_kept(store: Store, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    import time

    guard = ChainGuard(store, tmp_path / "anchors.jsonl")
    assert guard.last is None
    store.record_event("t", "x", None, {})
    with caplog.at_level(logging.DEBUG, logger="enforcer.audit.guard"):
        started = time.monotonic()
        v = guard.check()
        took = time.monotonic() - started
    assert guard.last is v
    [rec] = caplog.records
    assert rec.msg == "audit chain check: %s (%d entries, %.3fs)"
    assert rec.getMessage().startswith(f"audit chain check: {v.reason} (1 entries, ")
    assert rec.args is not None and 0 <= float(rec.args[2]) <= took


def test_legacy_entries_after_the_checkpoint_up_to_its_legacy_until(
        store: Store, tmp_path: Path) -> None:
    """A checkpoint taken part way through the legacy entries (restored from before the
    adoption finished): the walk after it still accepts them up to ``legacy_until``,
    and no unkeyed entry past it."""
    _legacy(store, 4)
    cp = tmp_path / "checkpoint.json"
    second = store.audit_entries(limit=2)[-1]
    write_checkpoint(cp, Checkpoint(2, second.hash, 4))
    guard = ChainGuard(store, tmp_path / "anchors.jsonl")
    v = guard.check()
    assert (v.ok, v.checked, v.head_seq) == (True, 2, 4), v
    assert read_checkpoint(cp) == Checkpoint(4, store.audit_entries(limit=4)[-1].hash, 4)
    write_checkpoint(cp, Checkpoint(2, second.hash, 3))
    v = guard.check()
    assert v.as_tuple()[:2] == (False, 4) and "no key id" in v.reason
