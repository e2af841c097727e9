"""Evidence bundles: export, offline verification, and one changed byte fails."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from enforcer.audit import FileAnchorSink, anchor_audit, read_anchor_file
from enforcer.audit.export import build_bundle, scrub, write_bundle
from enforcer.audit.signing import load_signing_key, public_text
from enforcer.audit.verify_bundle import BundleError, canonical, verify_bytes
from enforcer.cli.main import app
from enforcer.store import Store


@pytest.fixture
def signing(tmp_path: Path) -> Ed25519PrivateKey:
    return load_signing_key(tmp_path / "keys" / "evidence-ed25519.pem")


@pytest.fixture
def pub(signing: Ed25519PrivateKey) -> str:
    return public_text(signing)


@pytest.fixture
def bundle(store: Store, order_id: str, tmp_path: Path, signing: Ed25519PrivateKey) -> Path:
    sink = FileAnchorSink(tmp_path / "anchors.jsonl")
    asyncio.run(anchor_audit(store, [sink]))
    doc = build_bundle(store, order_id, signing_key=signing,
                       anchors=read_anchor_file(sink.path), secrets=["letmein"])
    out = tmp_path / "evidence.json"
    write_bundle(doc, out)
    return out


def test_bundle_contents(bundle: Path, order_id: str, pub: str) -> None:
    summary = verify_bytes(bundle.read_bytes(), pub)
    assert f"bundle for {order_id} verifies" in summary and "1 anchor(s) match" in summary
    b = json.loads(bundle.read_text())["bundle"]
    sec = b["sections"]
    assert sec["evidence"]["references"][0] == {"kind": "call_recording",
                                                "ref": "https://rec/77",
                                                "offset": "00:03:12", "note": None}
    assert sec["evidence"]["ticket"] == "ESC-7" and sec["evidence"]["seqs"]
    [lr] = sec["lift_requests"]
    assert [a["approver"] for a in lr["approvals"]] == ["alice"]
    assert lr["outcome"]["state"] == "approved" and lr["electorate"] == ["alice"]
    assert sec["verifications"][0]["result"]["looks"][0]["verdict"] == "blocked"
    assert sec["order"]["state"] == "lifting" and sec["order"]["account"] == "ACC-1"
    assert [d["mac"] for d in sec["devices"]] == ["00:11:22:33:44:55"]
    [tgt] = sec["targets"]
    assert tgt["state"] == "applied" and tgt["transcript_sha256"]
    [t] = b["transcripts"]
    for secret in ("Hunter2pass", "Pr1vPass", "letmein"):
        assert secret not in bundle.read_text()
    assert "auth sha <scrubbed>" in t["text"] and "snmp set ok" in t["text"]
    actions = [e["action"] for e in sec["timeline"]]
    assert actions[0] == "order.accepted" and "lift.approved" in actions
    entries = b["chain"]["entries"]
    redacted = [e for e in entries if e.get("redacted")]
    assert redacted and all(set(e) == {"seq", "prev_hash", "hash", "redacted"}
                            for e in redacted)
    assert "ACC-OTHER" not in bundle.read_text()  # other subscribers are not disclosed


def test_one_changed_byte_fails(bundle: Path, pub: str) -> None:
    raw = bundle.read_bytes()
    positions = sorted({0, 1, len(raw) // 7, len(raw) // 3, len(raw) // 2,
                        2 * len(raw) // 3, len(raw) - 10, len(raw) - 2, len(raw) - 1})
    for pos in positions:
        for new in (raw[pos] ^ 0x01, ord(" ")):
            if new == raw[pos]:
                continue
            changed = raw[:pos] + bytes([new]) + raw[pos + 1:]
            with pytest.raises(BundleError):
                verify_bytes(changed, pub)


def test_every_digit_of_a_hash_matters(bundle: Path, pub: str) -> None:
    doc = json.loads(bundle.read_text())
    head = doc["bundle"]["chain"]["head_hash"]
    raw = bundle.read_bytes()
    i = raw.index(head.encode())
    for pos in range(i, i + 64, 9):
        flipped = raw[:pos] + (b"0" if raw[pos:pos + 1] != b"0" else b"1") + raw[pos + 1:]
        with pytest.raises(BundleError):
            verify_bytes(flipped, pub)


def _reencode(doc: dict[str, Any]) -> bytes:
    """The edited document as a forger would write it: canonical, digest recomputed."""
    doc["sha256"] = hashlib.sha256(canonical(doc["bundle"]).encode()).hexdigest()
    return (canonical(doc) + "\n").encode()


EDITS: dict[str, Any] = {
    "evidence.account": lambda s: s["evidence"].__setitem__("account", "ACC-X"),
    "order.ticket": lambda s: s["order"].__setitem__("ticket", "ESC-FORGED"),
    "order.state": lambda s: s["order"].__setitem__("state", "lifted"),
    "devices.mac": lambda s: s["devices"][0].__setitem__("mac", "00:11:22:33:44:66"),
    "targets.state": lambda s: s["targets"][0].__setitem__("state", "removed"),
    "verifications": lambda s: s["verifications"][0]["result"]["looks"][0]
    .__setitem__("verdict", "forwarding"),
    "lift approver": lambda s: s["lift_requests"][0]["approvals"][0]
    .__setitem__("approver", "mallory"),
    "lift electorate": lambda s: s["lift_requests"][0].__setitem__("electorate", ["x"]),
    "timeline": lambda s: s["timeline"].pop(),
    "amendments": lambda s: s["amendments"].append({"seq": 1}),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_any_section_changed_with_digest_recomputed_fails(bundle: Path, pub: str,
                                                         edit: str) -> None:
    doc = json.loads(bundle.read_text())
    EDITS[edit](doc["bundle"]["sections"])
    with pytest.raises(BundleError, match="signature"):
        verify_bytes(_reencode(doc), pub)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_section_resigned_by_another_key_fails(bundle: Path, pub: str, edit: str,
                                                 tmp_path: Path) -> None:
    """A forger who signs the edited bundle with their own key (and names it): refused
    for the recipient's key; and even under the forger's key the section does not match
    the chain entries."""
    forger = load_signing_key(tmp_path / "forger.pem")
    doc = json.loads(bundle.read_text())
    EDITS[edit](doc["bundle"]["sections"])
    raw = forger.public_key().public_bytes_raw()
    doc["bundle"]["signer"] = {"public_key": public_text(forger),
                               "fingerprint": hashlib.sha256(raw).hexdigest()}
    doc["signature"] = base64.b64encode(
        forger.sign(canonical(doc["bundle"]).encode())).decode()
    with pytest.raises(BundleError, match="another key"):
        verify_bytes(_reencode(doc), pub)
    with pytest.raises(BundleError, match="section"):
        verify_bytes(_reencode(doc), public_text(forger))


def test_a_chain_entry_edited_and_resigned_fails_the_sections(bundle: Path, tmp_path: Path,
                                                              ) -> None:
    """Changing an entry (a decision) needs the sections re-derived and a new signature:
    only a forger's key can do that, and the recipient's key refuses it."""
    forger = load_signing_key(tmp_path / "forger.pem")
    doc = json.loads(bundle.read_text())
    own = next(e for e in doc["bundle"]["chain"]["entries"]
               if e.get("action") == "lift.approval")
    own["payload"]["decision"] = "refuse"
    with pytest.raises(BundleError):
        verify_bytes(_reencode(doc), public_text(forger))


def test_cli_export_and_verify_offline(store: Store, order_id: str, db_url: str,
                                       tmp_path: Path) -> None:
    cfg = tmp_path / "enforcer.yaml"
    keys = tmp_path / "state" / "audit-keys"
    cfg.write_text(f"database_url: '{db_url}'\nstate_dir: '{tmp_path / 'state'}'\n")
    out = tmp_path / "b.json"
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "pubkey", "--config", str(cfg)])
    assert res.exit_code == 0 and res.stdout.startswith("ed25519:"), res.output
    pub = res.stdout.strip()
    assert (keys / "evidence-ed25519.pem").stat().st_mode & 0o077 == 0
    res = runner.invoke(app, ["audit", "export", order_id, "--out", str(out),
                              "--config", str(cfg)])
    assert res.exit_code == 0 and "sha256" in res.stdout, res.output
    res = runner.invoke(app, ["audit", "verify-bundle", str(out), "--pubkey", pub])
    assert res.exit_code == 0 and "verifies" in res.stdout, res.output
    proc = subprocess.run([sys.executable, "-m", "enforcer.audit.verify_bundle", str(out),
                           "--pubkey", pub], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "verifies" in proc.stdout
    raw = out.read_bytes()
    out.write_bytes(raw[:100] + bytes([raw[100] ^ 0x20]) + raw[101:])
    res = runner.invoke(app, ["audit", "verify-bundle", str(out), "--pubkey", pub])
    assert res.exit_code == 11 and "does NOT verify" in res.stderr
    proc = subprocess.run([sys.executable, "-m", "enforcer.audit.verify_bundle", str(out),
                           "--pubkey", pub], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    res = runner.invoke(app, ["audit", "export", "ord_nope", "--out", str(out),
                              "--config", str(cfg)])
    assert res.exit_code == 6
    full = tmp_path / "full.json"
    res = runner.invoke(app, ["audit", "export", order_id, "--out", str(full), "--full-chain",
                              "--config", str(cfg)])
    assert res.exit_code == 0 and "redacted" not in full.read_text()
    assert "0 other entries redacted" in verify_bytes(full.read_bytes(), pub)


def test_scrub() -> None:
    assert scrub("community=public1 x") == "community=<scrubbed> x"
    assert scrub("enable secret 5 abc") == "enable secret 5 <scrubbed>"
    assert scrub("token s3cr3t-value", ["s3cr3t-value"]) == "token <scrubbed>"


def test_a_tampered_chain_is_not_signed(store: Store, order_id: str,
                                        signing: Ed25519PrivateKey) -> None:
    from sqlalchemy import text

    from enforcer.audit.export import ChainBroken

    seq = next(e.seq for e in store.audit_entries(order_id=order_id)
               if e.action == "lift.approval")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = :s"), {"s": seq})
    with pytest.raises(ChainBroken, match=f"seq {seq}"):
        build_bundle(store, order_id, signing_key=signing)
