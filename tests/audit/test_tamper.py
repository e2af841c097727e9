"""Tampering with stored audit rows is detected by ``audit verify`` (which names the
first bad entry); truncation is detected against the anchors."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from enforcer.audit import (
    FileAnchorSink,
    SyslogAnchorSink,
    anchor_audit,
    build_sinks,
    read_anchor_file,
    verify_store,
)
from enforcer.cli.main import app
from enforcer.config import Settings
from enforcer.domain.model import Reason
from enforcer.store import Store


def _sql(store: Store, *stmts: str, **params: int) -> None:
    with store.engine.begin() as conn:
        for s in stmts:
            conn.execute(text(s), params)


#: A forged entry at seq 5 (a copy of entry 2 under another actor, with a new hash).
FORGED = ("INSERT INTO audit_log (seq, at, actor, action, order_id, payload, prev_hash, hash) "
          "SELECT 5, at, 'mallory', action, order_id, payload, prev_hash, "
          "CASE WHEN substr(hash, 1, 1) = 'f' THEN 'e' ELSE 'f' END || substr(hash, 2) "
          "FROM audit_log WHERE seq = 2")


@pytest.mark.parametrize(("tamper", "bad_seq", "why"), [
    (lambda s: _sql(s, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4"), 4, "hash"),
    (lambda s: _sql(s, "UPDATE audit_log SET payload = replace(payload, 'ACC-1', 'ACC-2') "
                       "WHERE seq = 1"), 1, "hash"),
    (lambda s: _sql(s, "DELETE FROM audit_log WHERE seq = 3"), 3, "missing"),
    (lambda s: _sql(s, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5",
                    "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1005", FORGED),
     5, "prev_hash"),
    (lambda s: _sql(s, "UPDATE audit_log SET seq = -1 WHERE seq = 3",
                    "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                    "UPDATE audit_log SET seq = 4 WHERE seq = -1"), 3, "prev_hash"),
])
def test_tampering_is_detected(store: Store, order_id: str, tamper: Callable[[Store], None],
                               bad_seq: int, why: str) -> None:
    assert verify_store(store).ok
    tamper(store)
    v = verify_store(store)
    assert not v.ok and v.first_bad_seq == bad_seq and why in v.reason, v


def test_truncation_is_detected_with_a_file_anchor(store: Store, order_id: str,
                                                   tmp_path: Path) -> None:
    sink = FileAnchorSink(tmp_path / "anchors" / "head.jsonl")
    asyncio.run(anchor_audit(store, [sink]))
    asyncio.run(anchor_audit(store, [sink]))  # same head: not written twice
    store.record_event("engine", "target.kicked", order_id, {"device": "cbr8-1"})
    asyncio.run(anchor_audit(store, [sink]))
    anchors = read_anchor_file(sink.path)
    assert [a.seq for a in anchors] == [anchors[0].seq, anchors[0].seq + 1]
    assert verify_store(store, anchors).ok
    last = anchors[-1].seq
    _sql(store, "DELETE FROM audit_log WHERE seq >= :s", s=last - 1)
    assert store.verify_audit()[0]  # the shorter chain alone still looks valid
    v = verify_store(store, anchors)
    assert not v.ok and v.first_bad_seq == last - 1 and "truncated" in v.reason
    # A rewritten (re-hashed) chain disagrees with the anchor too.
    _sql(store, "UPDATE audit_log SET hash = 'x' WHERE seq = :s", s=anchors[0].seq - 2)
    assert not verify_store(store, anchors[:1]).ok


def test_syslog_sink_on_loopback(store: Store, order_id: str, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        port = rx.getsockname()[1]
        sinks = build_sinks(Settings(state_dir=tmp_path / "state",
                                     audit={"anchor": {"syslog": f"127.0.0.1:{port}"}}))
        # The anchor file is always there (state_dir/anchors), syslog when configured.
        assert isinstance(sinks[0], FileAnchorSink)
        assert sinks[0].path == tmp_path / "state" / "anchors" / "anchors.jsonl"
        assert isinstance(sinks[1], SyslogAnchorSink)
        asyncio.run(anchor_audit(store, sinks))
        msg = rx.recv(4096).decode()
        sinks[1].close()
    assert "enforcer-audit-anchor: " in msg
    anchor = json.loads(msg.split("enforcer-audit-anchor: ", 1)[1].rstrip("\x00"))
    head = store.audit_entries(after_seq=anchor["seq"] - 1, limit=1)[0]
    assert anchor["hash"] == head.hash


def test_cli_audit_verify_with_anchors(store: Store, order_id: str, db_url: str,
                                       tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.jsonl"
    cfg = tmp_path / "enforcer.yaml"
    policy = tmp_path / "policy.yaml"
    policy.write_text(json.dumps({"reasons": {r.value: {
        "default_scope": "footprint", "lift": {"rule": "any"}} for r in Reason}}))
    cfg.write_text(f"database_url: '{db_url}'\nstate_dir: '{tmp_path / 'state'}'\n"
                   f"policy: '{policy}'\naudit: {{anchor: {{file: '{anchors}'}}}}\n")
    asyncio.run(anchor_audit(store, build_sinks(Settings(audit={"anchor": {
        "file": anchors}}))))
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "verify", "--full", "--config", str(cfg)])
    assert res.exit_code == 0 and "1 anchor(s) match" in res.stdout, res.output
    assert "database agrees with the trail" in res.stdout
    res = runner.invoke(app, ["audit", "verify", "--config", str(cfg)])  # incremental
    assert res.exit_code == 0 and "newest anchor seq" in res.stdout, res.output
    assert (tmp_path / "checkpoint.json").exists()
    _sql(store, "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)")
    res = runner.invoke(app, ["audit", "verify", "--full", "--json", "--config", str(cfg)])
    assert res.exit_code == 11 and "truncated" in res.stdout
    res = runner.invoke(app, ["audit", "verify", "--config", str(cfg)])
    assert res.exit_code == 11 and "verified before, is missing" in res.stderr
    anchors.unlink()
    res = runner.invoke(app, ["audit", "verify", "--full", "--anchors", str(anchors),
                              "--config", str(cfg)])
    assert res.exit_code == 11 and "does not exist" in res.stderr
