"""Evidence bundles: export, offline verification, and one changed byte fails."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from enforcer.audit import FileAnchorSink, anchor_audit, read_anchor_file
from enforcer.audit.export import build_bundle, scrub, write_bundle
from enforcer.audit.verify_bundle import BundleError, verify_bytes
from enforcer.cli.main import app
from enforcer.store import Store


@pytest.fixture
def bundle(store: Store, order_id: str, tmp_path: Path) -> Path:
    sink = FileAnchorSink(tmp_path / "anchors.jsonl")
    asyncio.run(anchor_audit(store, [sink]))
    doc = build_bundle(store, order_id, anchors=read_anchor_file(sink.path),
                       secrets=["letmein"])
    out = tmp_path / "evidence.json"
    write_bundle(doc, out)
    return out


def test_bundle_contents(bundle: Path, order_id: str) -> None:
    summary = verify_bytes(bundle.read_bytes())
    assert f"bundle for {order_id} verifies" in summary and "1 anchor(s) match" in summary
    b = json.loads(bundle.read_text())["bundle"]
    assert b["evidence"]["references"][0] == {"kind": "call_recording",
                                              "ref": "https://rec/77", "offset": "00:03:12",
                                              "note": None}
    assert b["evidence"]["ticket"] == "ESC-7"
    assert [a["approver"] for a in b["approvals"]] == ["alice"]
    assert b["verifications"][0]["result"]["looks"][0]["verdict"] == "blocked"
    [t] = b["transcripts"]
    for secret in ("Hunter2pass", "Pr1vPass", "letmein"):
        assert secret not in bundle.read_text()
    assert "auth sha <scrubbed>" in t["text"] and "snmp set ok" in t["text"]
    actions = [e["action"] for e in b["timeline"]]
    assert actions[0] == "order.accepted" and "lift.approved" in actions
    entries = b["chain"]["entries"]
    redacted = [e for e in entries if e.get("redacted")]
    assert redacted and all(set(e) == {"seq", "prev_hash", "hash", "redacted"}
                            for e in redacted)
    assert "ACC-OTHER" not in bundle.read_text()  # other subscribers are not disclosed


def test_one_changed_byte_fails(bundle: Path) -> None:
    raw = bundle.read_bytes()
    positions = sorted({0, 1, len(raw) // 7, len(raw) // 3, len(raw) // 2,
                        2 * len(raw) // 3, len(raw) - 10, len(raw) - 2, len(raw) - 1})
    for pos in positions:
        for new in (raw[pos] ^ 0x01, ord(" ")):
            if new == raw[pos]:
                continue
            changed = raw[:pos] + bytes([new]) + raw[pos + 1:]
            with pytest.raises(BundleError):
                verify_bytes(changed)


def test_every_digit_of_a_hash_matters(bundle: Path) -> None:
    doc = json.loads(bundle.read_text())
    head = doc["bundle"]["chain"]["head_hash"]
    raw = bundle.read_bytes()
    i = raw.index(head.encode())
    for pos in range(i, i + 64, 9):
        flipped = raw[:pos] + (b"0" if raw[pos:pos + 1] != b"0" else b"1") + raw[pos + 1:]
        with pytest.raises(BundleError):
            verify_bytes(flipped)


def test_a_consistently_edited_bundle_still_fails(bundle: Path) -> None:
    """Re-hashing the outer digest after an edit is caught by the chain hashes."""
    import hashlib

    from enforcer.audit.verify_bundle import canonical

    doc = json.loads(bundle.read_text())
    own = next(e for e in doc["bundle"]["chain"]["entries"]
               if e.get("action") == "lift.approval")
    own["payload"]["decision"] = "refuse"
    doc["sha256"] = hashlib.sha256(canonical(doc["bundle"]).encode()).hexdigest()
    with pytest.raises(BundleError, match="hash does not match"):
        verify_bytes((canonical(doc) + "\n").encode())


def test_cli_export_and_verify_offline(store: Store, order_id: str, db_url: str,
                                       tmp_path: Path) -> None:
    cfg = tmp_path / "enforcer.yaml"
    cfg.write_text(f"database_url: '{db_url}'\n")
    out = tmp_path / "b.json"
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "export", order_id, "--out", str(out),
                              "--config", str(cfg)])
    assert res.exit_code == 0 and "sha256" in res.stdout, res.output
    res = runner.invoke(app, ["audit", "verify-bundle", str(out)])
    assert res.exit_code == 0 and "verifies" in res.stdout
    proc = subprocess.run([sys.executable, "-m", "enforcer.audit.verify_bundle", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "verifies" in proc.stdout
    raw = out.read_bytes()
    out.write_bytes(raw[:100] + bytes([raw[100] ^ 0x20]) + raw[101:])
    res = runner.invoke(app, ["audit", "verify-bundle", str(out)])
    assert res.exit_code == 11 and "does NOT verify" in res.stderr
    proc = subprocess.run([sys.executable, "-m", "enforcer.audit.verify_bundle", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    res = runner.invoke(app, ["audit", "export", "ord_nope", "--out", str(out),
                              "--config", str(cfg)])
    assert res.exit_code == 6
    full = tmp_path / "full.json"
    res = runner.invoke(app, ["audit", "export", order_id, "--out", str(full), "--full-chain",
                              "--config", str(cfg)])
    assert res.exit_code == 0 and "redacted" not in full.read_text()
    assert "0 other entries redacted" in verify_bytes(full.read_bytes())


def test_scrub() -> None:
    assert scrub("community=public1 x") == "community=<scrubbed> x"
    assert scrub("enable secret 5 abc") == "enable secret 5 <scrubbed>"
    assert scrub("token s3cr3t-value", ["s3cr3t-value"]) == "token <scrubbed>"
