"""The offline bundle verifier on its own (``enforcer.audit.verify_bundle``): what
``derive_sections`` makes of each kind of chain entry, and each check of
``verify_bytes`` and of the command line naming the first failure. The bundles here are
built in the test from hand-written entries and signed with a key made in the test
(tests/audit/test_bundle.py covers the exporter end to end)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enforcer.audit.verify_bundle import (
    FORMAT,
    GENESIS,
    SECTIONS,
    BundleError,
    canonical,
    derive_sections,
    main,
    parse_public_key,
    verify_bytes,
    verify_file,
)

OID = "ord_1"


def at(seq: int) -> str:
    return f"2026-01-01T00:00:{seq:02d}Z"


def entry(seq: int, action: str, payload: dict[str, Any], *, actor: str = "eng",
          order_id: str | None = OID) -> dict[str, Any]:
    return {"seq": seq, "at": at(seq), "actor": actor, "action": action,
            "order_id": order_id, "payload": payload}


# ---- derive_sections ---------------------------------------------------------------------

def story() -> list[dict[str, Any]]:
    """One order's life, with entries of another order and a redacted one mixed in."""
    t1 = {"device": "d1", "mac": "m3", "mechanism": "cm-ctrl"}
    return [
        entry(1, "order.accepted", {
            "ticket": "T", "account": "A", "reason": "fraud", "scope": "node", "node": "n1",
            "requested_by": "rb", "note": "nt", "source": "api", "extra": "not copied",
            "devices": [{"mac": "m1", "kind": "cm"}, {"mac": "m2", "kind": "stb"}],
            "evidence": [{"kind": "k", "ref": "r"}]}, actor="intake"),
        entry(2, "order.accepted", {"ticket": "OTHER", "devices": []}, order_id="ord_2"),
        {**entry(3, "order.state", {"to": "forged"}), "redacted": True},
        entry(4, "order.ecm_learnt", {"set_top": "m2", "ecm_mac": "e2"}),
        entry(5, "order.amended", {"before": {"reason": "fraud"}, "after": {
            "reason": "harassment", "node": "n2", "note": "not an order key",
            "devices": [{"mac": "m3", "kind": "cm"}]}}),
        entry(6, "order.ecm_learnt", {"set_top": "m3", "ecm_mac": "e3"}),
        entry(7, "order.amended", {"before": None, "after": "not a dict"}, actor="eng2"),
        entry(8, "order.state", {"to": "blocking", "detail": "d"}),
        entry(9, "targets.planned", {
            "added": [t1, {"device": "d0", "mac": "m3", "mechanism": "acl"}],
            "revived": [{"device": "d2", "mac": "m3", "mechanism": "x"}]}),
        entry(10, "target.applied", {**t1, "target_id": "t1", "state": "applied",
                                     "transcript_sha256": "abc", "other": 1}),
        entry(11, "target.verified", {**t1, "target_id": "t1", "verdict": "blocked"}),
        entry(12, "target.failed", {"device": "d3", "mac": "m3", "mechanism": "acl",
                                    "target_id": "t9", "state": "failed",
                                    "last_error": "e"}),
        entry(13, "target.note", {**t1, "state": "ignored: no target_id"}),
        entry(14, "order.verification", {"looks": [1]}, actor="engine"),
        entry(15, "lift.requested", {
            "lift_request_id": "L1", "reason": "r", "on_behalf_of": "ob", "group": "g",
            "rule": "any", "needed": 1, "electorate": ["a"], "expires_at": "x",
            "junk": 1}),
        entry(16, "lift.approval", {"lift_request_id": "L1", "decision": "approve",
                                    "note": "n"}, actor="a"),
        entry(17, "lift.approval", {"lift_request_id": "L404", "decision": "approve"}),
        entry(18, "lift.approved", {"lift_request_id": "L1"}, actor="sys"),
        entry(19, "lift.refused", {"lift_request_id": "L404"}),
        entry(20, "lift.approval_rejected", {"lift_request_id": "L1", "approver": "z",
                                             "why": "w"}, actor="z"),
        entry(21, "lift.unproven", {"lift_request_id": "L1", "missing": "x"}),
        entry(22, "targets.planned", {
            "added": [{"device": "d3", "mac": "m3", "mechanism": "acl"}],
            "revived": [t1]}),
        entry(23, "lift.requested", {"lift_request_id": 7}, actor="eng3"),
        entry(24, "lift.approval", {"lift_request_id": 7, "decision": "refuse"}, actor="b"),
        entry(25, "lift.expired", {"lift_request_id": 7}, actor="sys"),
        entry(26, "order.ecm_learnt", {"set_top": "m9", "ecm_mac": "e9"}),
        entry(27, "lift.refused", {"lift_request_id": "L1"}, actor="late"),
    ]


OWN = [1, *range(4, 28)]


def test_derive_sections_from_every_kind_of_entry() -> None:
    entries = story()
    got = derive_sections(list(reversed(entries)), OID)  # any order: sorted by seq
    assert got["order"] == {
        "seqs": [1, 5, 7, 8], "accepted_at": at(1), "accepted_by": "intake",
        "state": "blocking", "state_detail": "d", "ticket": "T", "account": "A",
        "reason": "harassment", "scope": "node", "node": "n2", "requested_by": "rb",
        "note": "nt", "source": "api"}
    assert got["devices"] == [{"mac": "m3", "kind": "cm", "ecm_mac": "e3", "seqs": [5, 6]}]
    assert got["evidence"] == {"seqs": [1], "ticket": "T", "account": "A",
                               "requested_by": "rb", "references": [{"kind": "k", "ref": "r"}]}
    assert got["targets"] == [
        {"device": "d0", "mac": "m3", "mechanism": "acl", "state": "pending", "seqs": [9]},
        {"device": "d1", "mac": "m3", "mechanism": "cm-ctrl", "state": "pending",
         "seqs": [9, 10, 11, 22], "target_id": "t1", "transcript_sha256": "abc",
         "verdict": "blocked"},
        {"device": "d2", "mac": "m3", "mechanism": "x", "state": "pending", "seqs": [9]},
        {"device": "d3", "mac": "m3", "mechanism": "acl", "seqs": [12, 22],
         "target_id": "t9", "state": "failed", "last_error": "e"}]
    assert got["verifications"] == [
        {"seq": 11, "at": at(11), "action": "target.verified",
         "result": {"device": "d1", "mac": "m3", "mechanism": "cm-ctrl", "target_id": "t1",
                    "verdict": "blocked"}},
        {"seq": 14, "at": at(14), "action": "order.verification", "result": {"looks": [1]}}]
    assert got["lift_requests"] == [
        {"lift_request_id": "L1", "seqs": [15, 16, 18, 27], "requested_by": "eng",
         "requested_at": at(15), "reason": "r", "on_behalf_of": "ob", "group": "g",
         "rule": "any", "needed": 1, "electorate": ["a"], "expires_at": "x",
         "approvals": [{"seq": 16, "at": at(16), "approver": "a", "decision": "approve",
                        "note": "n"}],
         "outcome": {"seq": 27, "at": at(27), "actor": "late", "state": "refused"}},
        {"lift_request_id": 7, "seqs": [23, 24, 25], "requested_by": "eng3",
         "requested_at": at(23), "reason": None, "on_behalf_of": None, "group": None,
         "rule": None, "needed": None, "electorate": None, "expires_at": None,
         "approvals": [{"seq": 24, "at": at(24), "approver": "b", "decision": "refuse",
                        "note": None}],
         "outcome": {"seq": 25, "at": at(25), "actor": "sys", "state": "expired"}}]
    assert got["amendments"] == [
        {"seq": 5, "at": at(5), "actor": "eng", "before": {"reason": "fraud"},
         "after": {"reason": "harassment", "node": "n2", "note": "not an order key",
                   "devices": [{"mac": "m3", "kind": "cm"}]}},
        {"seq": 7, "at": at(7), "actor": "eng2", "before": None, "after": {}}]
    assert got["rejected_decisions"] == [
        {"seq": 20, "at": at(20), "actor": "z", "lift_request_id": "L1", "approver": "z",
         "why": "w"}]
    assert got["unproven_lifts"] == [
        {"seq": 21, "at": at(21), "lift_request_id": "L1", "missing": "x"}]
    by_seq = {e["seq"]: e for e in entries}
    assert got["timeline"] == [{"seq": s, "at": at(s), "actor": by_seq[s]["actor"],
                                "action": by_seq[s]["action"]} for s in OWN]
    assert set(got) == set(SECTIONS)


def test_derive_sections_before_any_amendment() -> None:
    """Devices as accepted (the ecm learnt on one of them); an order state before the
    accepted entry starts the order's seqs; an amendment without devices keeps them."""
    got = derive_sections([
        entry(1, "order.accepted", {"devices": [{"mac": "m1"}, {"mac": "m2"}]}),
        entry(2, "order.ecm_learnt", {"set_top": "m2", "ecm_mac": "e2"}),
        entry(3, "order.amended", {"after": {"scope": "footprint"}}),
    ], OID)
    assert got["devices"] == [{"mac": "m1", "seqs": [1]},
                              {"mac": "m2", "ecm_mac": "e2", "seqs": [1, 2]}]
    assert got["order"]["scope"] == "footprint" and got["order"]["seqs"] == [1, 3]
    assert got["order"]["state"] == "accepted"  # no order.state entry yet
    assert got["amendments"][0]["before"] is None
    late = derive_sections([entry(1, "order.state", {"to": "blocking"}),
                            entry(2, "order.amended", {"after": {"node": "n"}})], OID)
    assert late["order"] == {"state": "blocking", "state_detail": None, "seqs": [1, 2],
                             "node": "n"}
    amended_first = derive_sections([entry(1, "order.amended", {"after": {"node": "n"}})],
                                    OID)
    assert amended_first["order"] == {"node": "n", "seqs": [1]}
    empty = derive_sections([entry(1, "order.accepted", {})], OID)
    assert empty["devices"] == [] and empty["evidence"]["references"] == []
    assert derive_sections([], OID) == {
        "order": {}, "devices": [], "evidence": {}, "targets": [], "verifications": [],
        "lift_requests": [], "amendments": [], "rejected_decisions": [],
        "unproven_lifts": [], "timeline": []}


# ---- a bundle made here --------------------------------------------------------------------

def chained(entries: list[dict[str, Any]], first_seq: int = 1,
            prev: str = GENESIS) -> list[dict[str, Any]]:
    """Give ``entries`` seqs from ``first_seq`` and link them (any hash will do: the
    verifier checks the links, the signature covers the hashes)."""
    out = []
    for i, e in enumerate(entries):
        e = {**e, "seq": first_seq + i, "prev_hash": prev}
        e["hash"] = hashlib.sha256(canonical(e).encode()).hexdigest()
        prev = e["hash"]
        out.append(e)
    return out


def make_bundle(key: Ed25519PrivateKey, entries: list[dict[str, Any]], *,
                anchors: list[dict[str, Any]] | None = None,
                transcripts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    raw = key.public_key().public_bytes_raw()
    return {
        "format": FORMAT, "order_id": OID, "exported_at": "2026-01-02T00:00:00Z",
        "signer": {"public_key": "ed25519:" + base64.b64encode(raw).decode(),
                   "fingerprint": hashlib.sha256(raw).hexdigest()},
        "sections": derive_sections(entries, OID),
        "transcripts": transcripts or [],
        "chain": {"first_seq": entries[0]["seq"] if entries else 0,
                  "last_seq": entries[-1]["seq"] if entries else 0,
                  "head_hash": entries[-1]["hash"] if entries else "",
                  "entries": entries, "anchors": anchors or []}}


def signed(key: Ed25519PrivateKey, b: dict[str, Any]) -> bytes:
    """The bundle's file: canonical JSON of ``{bundle, sha256, signature}`` + newline."""
    text = canonical(b).encode()
    doc = {"bundle": b, "sha256": hashlib.sha256(text).hexdigest(),
           "signature": base64.b64encode(key.sign(text)).decode()}
    return (canonical(doc) + "\n").encode()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def pub(key: Ed25519PrivateKey) -> str:
    return "ed25519:" + base64.b64encode(key.public_key().public_bytes_raw()).decode()


def small(first_seq: int = 1, prev: str = GENESIS) -> list[dict[str, Any]]:
    return chained([
        entry(0, "order.accepted", {"ticket": "T", "devices": [{"mac": "m1"}]}),
        {"redacted": True},
        entry(0, "target.applied", {"device": "d", "mac": "m1", "mechanism": "x",
                                    "target_id": "t1", "transcript_sha256": "f" * 64}),
        entry(0, "order.state", {"to": "blocked"})], first_seq, prev)


def test_a_good_bundle_verifies_with_a_summary(key: Ed25519PrivateKey, pub: str) -> None:
    entries = small(first_seq=5, prev="a" * 64)
    b = make_bundle(key, entries, anchors=[
        {"seq": 6, "hash": entries[1]["hash"], "at": "2026-01-01T01:00:00Z"}],
        transcripts=[{"target_id": "t1", "sha256": "f" * 64, "text": "ok"}])
    assert verify_bytes(signed(key, b), pub) == (
        f"bundle for {OID} verifies: signed by {b['signer']['fingerprint'][:16]}..., "
        f"3 entries of the order, seq 5..8 linked (1 other entries redacted), every "
        f"section matches the chain, head {entries[-1]['hash'][:16]}..., 1 anchor(s) match")
    raw_key = key.public_key().public_bytes_raw()
    assert verify_bytes(signed(key, b), raw_key).startswith(f"bundle for {OID} verifies")


def test_the_file_itself(key: Ed25519PrivateKey, pub: str, tmp_path: Path) -> None:
    raw = signed(key, make_bundle(key, small()))
    with pytest.raises(BundleError, match=r"^not a JSON document \("):
        verify_bytes(b"\xff" + raw, pub)
    with pytest.raises(BundleError, match=r"^not a JSON document \("):
        verify_bytes(raw[:-5], pub)
    with pytest.raises(BundleError, match=r"^the file is not in canonical form: it was "
                                          r"modified$"):
        verify_bytes(raw.rstrip(b"\n"), pub)
    with pytest.raises(BundleError, match="canonical form"):
        verify_bytes(raw.replace(b'{"bundle":', b'{ "bundle":', 1), pub)
    doc = json.loads(raw)
    doc["sha256"] = "0" * 64
    with pytest.raises(BundleError, match=r"^sha256 does not match the bundle's content$"):
        verify_bytes((canonical(doc) + "\n").encode(), pub)
    path = tmp_path / "b.json"
    path.write_bytes(raw)
    assert verify_file(str(path), pub).startswith(f"bundle for {OID} verifies")


def test_an_unknown_format_is_refused(key: Ed25519PrivateKey, pub: str) -> None:
    b = make_bundle(key, small())
    b["format"] = "enforcer-evidence-bundle/1"
    with pytest.raises(BundleError, match=r"^unknown format 'enforcer-evidence-bundle/1' "
                                          r"\(this verifier reads enforcer-evidence-"
                                          r"bundle/2\)$"):
        verify_bytes(signed(key, b), pub)


def test_malformed_bundles_are_refused_not_crashed(key: Ed25519PrivateKey, pub: str) -> None:
    b = make_bundle(key, small())
    del b["chain"]["anchors"]
    with pytest.raises(BundleError, match=r"^malformed bundle \(KeyError: 'anchors'\)$"):
        verify_bytes(signed(key, b), pub)
    b = make_bundle(key, small())
    b["chain"]["entries"] = 5
    with pytest.raises(BundleError, match=r"^malformed bundle \(TypeError: "):
        verify_bytes(signed(key, b), pub)
    b = make_bundle(key, small())
    b["sections"] = []
    with pytest.raises(BundleError, match=r"^malformed bundle \(TypeError: "):
        verify_bytes(signed(key, b), pub)
    b = make_bundle(key, small())
    b["signer"] = "x"
    with pytest.raises(BundleError, match=r"^malformed bundle \((TypeError|AttributeError)"):
        verify_bytes(signed(key, b), pub)


def test_the_signature(key: Ed25519PrivateKey, pub: str) -> None:
    b = make_bundle(key, small())
    other = Ed25519PrivateKey.generate()
    with pytest.raises(BundleError, match=r"^the bundle was signed by another key than the "
                                          rf"one given \(it names fingerprint "
                                          rf"{b['signer']['fingerprint']}\)$"):
        verify_bytes(signed(key, b),
                     base64.b64encode(other.public_key().public_bytes_raw()).decode())
    forged = copy.deepcopy(b)
    forged["signer"]["fingerprint"] = "0" * 64
    with pytest.raises(BundleError, match=r"^the signer's fingerprint does not match its "
                                          r"public key$"):
        verify_bytes(signed(key, forged), pub)
    raw = signed(other, b)  # names the right key, signed by another
    with pytest.raises(BundleError, match=r"^the signature is not valid for this bundle "
                                          r"and key$"):
        verify_bytes(raw, pub)
    doc = json.loads(signed(key, b))
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        doc["signature"] = bad
        with pytest.raises(BundleError, match=r"^the signature is not valid"):
            verify_bytes((canonical(doc) + "\n").encode(), pub)


def test_the_chain_links(key: Ed25519PrivateKey, pub: str) -> None:
    def refused(b: dict[str, Any], message: str) -> None:
        with pytest.raises(BundleError, match=message):
            verify_bytes(signed(key, b), pub)

    refused(make_bundle(key, []), "^the chain segment is empty$")
    b = make_bundle(key, small())
    b["chain"]["entries"][2]["seq"] = 9
    refused(b, "^chain entry 2: seq 9, expected 3$")
    b = make_bundle(key, small())
    b["chain"]["first_seq"] = 2
    refused(b, "^chain entry 0: seq 1, expected 2$")
    refused(make_bundle(key, small(prev="a" * 64)),
            "^seq 1 does not start from the genesis hash$")
    b = make_bundle(key, small())
    b["chain"]["entries"][3]["prev_hash"] = "b" * 64
    refused(b, "^seq 4: prev_hash does not match seq 3$")
    b = make_bundle(key, small())
    b["chain"]["last_seq"] = 5
    refused(b, "^last_seq does not match the number of entries$")
    b = make_bundle(key, small())
    b["chain"]["head_hash"] = b["chain"]["entries"][2]["hash"]
    refused(b, "^head_hash is not the hash of the last entry$")
    entries = small()
    for anchor in ({"seq": 2, "hash": entries[2]["hash"], "at": "T1"},
                   {"seq": 9, "hash": entries[2]["hash"], "at": "T1"}):
        refused(make_bundle(key, entries, anchors=[
            {"seq": 4, "hash": entries[3]["hash"], "at": "T0"}, anchor]),
            rf"^anchor of T1 \(seq {anchor['seq']}\) does not match the chain$")


def test_every_section_must_match_the_chain(key: Ed25519PrivateKey, pub: str) -> None:
    for name in SECTIONS:
        b = make_bundle(key, small())
        b["sections"][name] = {"forged": name}
        with pytest.raises(BundleError, match=f"^section '{name}' is not what the chain "
                                              "entries say$"):
            verify_bytes(signed(key, b), pub)
    b = make_bundle(key, small())
    b["sections"]["extra"] = "not checked, but signed"
    assert "verifies" in verify_bytes(signed(key, b), pub)


def test_the_order_and_its_transcripts(key: Ed25519PrivateKey, pub: str) -> None:
    b = make_bundle(key, chained([entry(0, "order.state", {"to": "x"})]))
    with pytest.raises(BundleError, match=r"^the chain segment holds no order\.accepted entry "
                                          r"of the order$"):
        verify_bytes(signed(key, b), pub)
    b = make_bundle(key, small(), transcripts=[
        {"target_id": "t1", "sha256": "f" * 64, "text": "ok"},
        {"target_id": "t2", "sha256": "e" * 64, "text": "not in the chain"}])
    with pytest.raises(BundleError, match=r"^transcript digest of target t2 is not in the "
                                          r"chain$"):
        verify_bytes(signed(key, b), pub)


def test_parse_public_key() -> None:
    raw = bytes(range(32))
    text = base64.b64encode(raw).decode()
    assert parse_public_key(f"ed25519:{text}") == raw
    assert parse_public_key(f"  {text}\n") == raw
    with pytest.raises(BundleError, match=r"^the public key is not base64 \(expected "
                                          r"ed25519:<base64>\)$"):
        parse_public_key("ed25519:not base64!")
    with pytest.raises(BundleError, match=r"^the public key is not base64"):
        parse_public_key(f"ed25519:{text[:10]}!{text[10:]}")  # strict: no stray characters
    with pytest.raises(BundleError, match=r"^the public key is not a 32-byte Ed25519 key$"):
        parse_public_key(base64.b64encode(raw[:31]).decode())


def test_canonical_json() -> None:
    assert canonical({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'
    with pytest.raises(ValueError):
        canonical({"x": float("nan")})


def test_command_line(key: Ed25519PrivateKey, pub: str, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(signed(key, make_bundle(key, small())))
    bad = tmp_path / "bad.json"
    bad.write_bytes(good.read_bytes().replace(b'"blocked"', b'"lifted"'))
    keyfile = tmp_path / "key.pub"
    keyfile.write_text(f"{pub}\n", encoding="ascii")
    usage = ("usage: python -m enforcer.audit.verify_bundle FILE --pubkey "
             "ed25519:<base64>|KEYFILE\n")
    for argv in ([str(good), "--pubkey"], [str(good), "--key", pub],
                 [str(good), "--pubkey", pub, "x"]):
        assert main(argv) == 2
        out = capsys.readouterr()
        assert out.err == usage and out.out == ""
    assert main([str(good), "--pubkey", pub]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"bundle for {OID} verifies") and out.err == ""
    assert main([str(good), "--pubkey", str(keyfile)]) == 0
    assert capsys.readouterr().out.startswith(f"bundle for {OID} verifies")
    assert main([str(bad), "--pubkey", pub]) == 1
    out = capsys.readouterr()
    assert out.err == "bundle does NOT verify: sha256 does not match the bundle's content\n"
    assert main([str(tmp_path / "missing.json"), "--pubkey", pub]) == 2
    assert capsys.readouterr().err == (f"cannot read {tmp_path / 'missing.json'}: "
                                       "No such file or directory\n")
    assert main([str(good), "--pubkey", str(tmp_path / "nokey")]) == 2
    assert capsys.readouterr().err == (f"cannot read {tmp_path / 'nokey'}: "
                                       "No such file or directory\n")


def test_command_line_odd_inputs(key: Ed25519PrivateKey, pub: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(signed(key, make_bundle(key, small())))
    monkeypatch.setattr("sys.argv", ["verify_bundle", str(good), "--pubkey", pub])
    assert main() == 0  # the process's own arguments
    assert capsys.readouterr().out.startswith(f"bundle for {OID} verifies")
    keyfile = tmp_path / "key.pub"
    keyfile.write_bytes("ed25519:é\n".encode())  # a key file that is not ASCII
    assert main([str(good), "--pubkey", str(keyfile)]) == 1
    assert capsys.readouterr().err == (
        f"bundle does NOT verify: the public key file {keyfile} is not ASCII text "
        "(expected ed25519:<base64>)\n")


def test_a_signature_with_stray_characters_is_refused(key: Ed25519PrivateKey,
                                                      pub: str) -> None:
    """The signature field is outside what it signs: only strict base64 is read, so
    characters slipped into it are not skipped over."""
    doc = json.loads(signed(key, make_bundle(key, small())))
    doc["signature"] = doc["signature"][:8] + "!" + doc["signature"][8:]
    with pytest.raises(BundleError, match=r"^the signature is not valid for this bundle "
                                          r"and key$"):
        verify_bytes((canonical(doc) + "\n").encode(), pub)
