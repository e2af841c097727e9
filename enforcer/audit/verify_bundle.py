"""Verify an evidence bundle offline:
``python -m enforcer.audit.verify_bundle FILE --pubkey ed25519:<base64>``.

The standard library plus one package, ``cryptography`` (for Ed25519), so a recipient
can read and run it without installing the enforcer. Checks, in order (the first
failure is reported):

1. the file is exactly the canonical JSON encoding of its content plus one newline
   (so no byte can change unnoticed, whitespace included);
2. ``sha256`` is the SHA-256 of the canonical JSON of ``bundle``;
3. ``signature`` is a valid Ed25519 signature of that canonical JSON by the public key
   the recipient gives (``--pubkey``; obtained from the operator, ``enforcer audit
   pubkey``), and the bundle names that key;
4. the chain segment is contiguous and each entry's ``prev_hash`` is the previous
   entry's ``hash``, and the head matches (the entry hashes themselves are HMACs under
   the enforcer's audit key, which a recipient does not hold: the signature covers
   them);
5. every anchor inside the segment matches the entry it names;
6. every section (``order``, ``devices``, ``evidence``, ``targets``, ``verifications``,
   ``lift_requests``, ``amendments``, ``timeline``, ...) is exactly what
   :func:`derive_sections` re-derives from the order's chain entries, each item naming
   the seqs it comes from; every push transcript digest is backed by a chain entry.

Exit 0 when the bundle verifies, 1 when it does not (the first failure is named), 2 for
a usage error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from typing import Any

FORMAT = "enforcer-evidence-bundle/2"
GENESIS = "0" * 64
_VERIFY_ACTIONS = ("order.verification", "target.verified")
_LIFT_OUTCOMES = ("lift.approved", "lift.refused", "lift.expired")


class BundleError(Exception):
    """The bundle does not verify."""


def canonical(obj: Any) -> str:
    """Sorted keys, no spaces, UTF-8 (the audit chain's canonical JSON)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def parse_public_key(text: str) -> bytes:
    """The 32-byte key of ``ed25519:<base64>`` (or bare base64)."""
    raw = text.strip().removeprefix("ed25519:")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError("the public key is not base64 (expected ed25519:<base64>)") from None
    if len(key) != 32:
        raise BundleError("the public key is not a 32-byte Ed25519 key")
    return key


def derive_sections(entries: list[dict[str, Any]], order_id: str) -> dict[str, Any]:
    """Every section of a bundle, from the order's full chain entries alone (pure:
    the exporter and this verifier call the same function)."""
    mine = sorted((e for e in entries if not e.get("redacted")
                   and e.get("order_id") == order_id), key=lambda e: e["seq"])
    order: dict[str, Any] = {}
    devices: list[dict[str, Any]] = []
    evidence: dict[str, Any] = {}
    targets: dict[str, dict[str, Any]] = {}
    verifications: list[dict[str, Any]] = []
    lifts: dict[str, dict[str, Any]] = {}
    amendments: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    unproven: list[dict[str, Any]] = []
    for e in mine:
        a, p, seq = e["action"], e["payload"], e["seq"]
        if a == "order.accepted":
            order = {"seqs": [seq], "accepted_at": e["at"], "accepted_by": e["actor"],
                     "state": "accepted", **{k: p.get(k) for k in (
                         "ticket", "account", "reason", "scope", "node", "requested_by",
                         "note", "source")}}
            devices = [{**d, "seqs": [seq]} for d in p.get("devices") or []]
            evidence = {"seqs": [seq], "ticket": p.get("ticket"), "account": p.get("account"),
                        "requested_by": p.get("requested_by"),
                        "references": p.get("evidence") or []}
        elif a == "order.amended":
            after = p.get("after") if isinstance(p.get("after"), dict) else {}
            amendments.append({"seq": seq, "at": e["at"], "actor": e["actor"],
                               "before": p.get("before"), "after": after})
            for k in ("reason", "scope", "node"):
                if k in after:
                    order[k] = after[k]
            order.setdefault("seqs", []).append(seq)
            if isinstance(after.get("devices"), list):
                devices = [{**d, "seqs": [seq]} for d in after["devices"]]
        elif a == "order.ecm_learnt":
            for d in devices:
                if d.get("mac") == p.get("set_top"):
                    d["ecm_mac"] = p.get("ecm_mac")
                    d["seqs"] = [*d["seqs"], seq]
        elif a == "order.state":
            order["state"], order["state_detail"] = p.get("to"), p.get("detail")
            order.setdefault("seqs", []).append(seq)
        elif a == "targets.planned":
            for t in p.get("added") or []:
                key = f"{t.get('device')}|{t.get('mac')}|{t.get('mechanism')}"
                targets.setdefault(key, {**t, "state": "pending", "seqs": []})["seqs"] \
                    .append(seq)
            for t in p.get("revived") or []:  # a removed target planned again
                key = f"{t.get('device')}|{t.get('mac')}|{t.get('mechanism')}"
                row = targets.setdefault(key, {**t, "seqs": []})
                row["state"] = "pending"
                row["seqs"].append(seq)
        if a.startswith("target.") and "target_id" in p:
            key = f"{p.get('device')}|{p.get('mac')}|{p.get('mechanism')}"
            t = targets.setdefault(key, {"device": p.get("device"), "mac": p.get("mac"),
                                         "mechanism": p.get("mechanism"), "seqs": []})
            t["target_id"] = p["target_id"]
            t["seqs"].append(seq)
            for k in ("state", "transcript_sha256", "verdict", "last_error"):
                if k in p:
                    t[k] = p[k]
        if a in _VERIFY_ACTIONS:
            verifications.append({"seq": seq, "at": e["at"], "action": a, "result": p})
        elif a == "lift.requested":
            lifts[str(p.get("lift_request_id"))] = {
                "lift_request_id": p.get("lift_request_id"), "seqs": [seq],
                "requested_by": e["actor"], "requested_at": e["at"],
                **{k: p.get(k) for k in ("reason", "on_behalf_of", "group", "rule", "needed",
                                         "electorate", "expires_at")},
                "approvals": [], "outcome": None}
        elif a == "lift.approval" and str(p.get("lift_request_id")) in lifts:
            lr = lifts[str(p.get("lift_request_id"))]
            lr["approvals"].append({"seq": seq, "at": e["at"], "approver": e["actor"],
                                    "decision": p.get("decision"), "note": p.get("note")})
            lr["seqs"].append(seq)
        elif a in _LIFT_OUTCOMES and str(p.get("lift_request_id")) in lifts:
            lr = lifts[str(p.get("lift_request_id"))]
            lr["outcome"] = {"seq": seq, "at": e["at"], "actor": e["actor"],
                             "state": a.removeprefix("lift.")}
            lr["seqs"].append(seq)
        elif a == "lift.approval_rejected":
            rejected.append({"seq": seq, "at": e["at"], "actor": e["actor"], **p})
        elif a == "lift.unproven":
            unproven.append({"seq": seq, "at": e["at"], **p})
    return {
        "order": order, "devices": devices, "evidence": evidence,
        "targets": [targets[k] for k in sorted(targets)], "verifications": verifications,
        "lift_requests": list(lifts.values()), "amendments": amendments,
        "rejected_decisions": rejected, "unproven_lifts": unproven,
        "timeline": [{"seq": e["seq"], "at": e["at"], "actor": e["actor"],
                      "action": e["action"]} for e in mine],
    }


SECTIONS = ("order", "devices", "evidence", "targets", "verifications", "lift_requests",
            "amendments", "rejected_decisions", "unproven_lifts", "timeline")


def _signature(doc: dict[str, Any], b: dict[str, Any], pubkey: bytes) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signer = b["signer"]
    named = parse_public_key(signer["public_key"])
    if named != pubkey:
        raise BundleError("the bundle was signed by another key than the one given "
                          f"(it names fingerprint {signer.get('fingerprint')})")
    if hashlib.sha256(pubkey).hexdigest() != signer.get("fingerprint"):
        raise BundleError("the signer's fingerprint does not match its public key")
    try:
        sig = base64.b64decode(doc["signature"], validate=True)
        Ed25519PublicKey.from_public_bytes(pubkey).verify(sig, canonical(b).encode("utf-8"))
    except (binascii.Error, ValueError, InvalidSignature):
        raise BundleError("the signature is not valid for this bundle and key") from None


def _chain(b: dict[str, Any]) -> dict[int, dict[str, Any]]:
    chain = b["chain"]
    entries = chain["entries"]
    if not entries:
        raise BundleError("the chain segment is empty")
    by_seq: dict[int, dict[str, Any]] = {}
    prev = None
    for i, e in enumerate(entries):
        seq = chain["first_seq"] + i
        if e["seq"] != seq:
            raise BundleError(f"chain entry {i}: seq {e['seq']}, expected {seq}")
        if prev is None and seq == 1 and e["prev_hash"] != GENESIS:
            raise BundleError("seq 1 does not start from the genesis hash")
        if prev is not None and e["prev_hash"] != prev:
            raise BundleError(f"seq {seq}: prev_hash does not match seq {seq - 1}")
        prev, by_seq[seq] = e["hash"], e
    if chain["last_seq"] != chain["first_seq"] + len(entries) - 1:
        raise BundleError("last_seq does not match the number of entries")
    if chain["head_hash"] != prev:
        raise BundleError("head_hash is not the hash of the last entry")
    for a in chain["anchors"]:
        e = by_seq.get(a["seq"])
        if e is None or e["hash"] != a["hash"]:
            raise BundleError(f"anchor of {a['at']} (seq {a['seq']}) does not match the chain")
    return by_seq


def _sections(b: dict[str, Any], by_seq: dict[int, dict[str, Any]]) -> int:
    derived = derive_sections(list(by_seq.values()), b["order_id"])
    for name in SECTIONS:
        if canonical(b["sections"][name]) != canonical(derived[name]):
            raise BundleError(f"section {name!r} is not what the chain entries say")
    if "accepted_at" not in derived["order"]:  # only an order.accepted entry sets it
        raise BundleError("the chain segment holds no order.accepted entry of the order")
    digests = {t.get("transcript_sha256") for t in derived["targets"]}
    for t in b["transcripts"]:
        if t["sha256"] not in digests:
            raise BundleError(f"transcript digest of target {t['target_id']} is not in the "
                              "chain")
    return len(derived["timeline"])


def verify_bytes(raw: bytes, pubkey: str | bytes) -> str:
    """Verify a bundle's bytes against the signer's public key (``ed25519:<base64>``
    or the raw 32 bytes); returns a one-line summary or raises BundleError."""
    key = pubkey if isinstance(pubkey, bytes) else parse_public_key(pubkey)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BundleError(f"not a JSON document ({e})") from None
    try:
        if (canonical(doc) + "\n").encode("utf-8") != raw:
            raise BundleError("the file is not in canonical form: it was modified")
        b = doc["bundle"]
        if hashlib.sha256(canonical(b).encode("utf-8")).hexdigest() != doc["sha256"]:
            raise BundleError("sha256 does not match the bundle's content")
        if b["format"] != FORMAT:
            raise BundleError(f"unknown format {b['format']!r} (this verifier reads {FORMAT})")
        _signature(doc, b, key)
        by_seq = _chain(b)
        own = _sections(b, by_seq)
    except (KeyError, TypeError, AttributeError) as e:
        raise BundleError(f"malformed bundle ({type(e).__name__}: {e})") from None
    chain = b["chain"]
    redacted = sum(1 for e in chain["entries"] if e.get("redacted"))
    return (f"bundle for {b['order_id']} verifies: signed by {b['signer']['fingerprint'][:16]}"
            f"..., {own} entries of the order, seq {chain['first_seq']}..{chain['last_seq']} "
            f"linked ({redacted} other entries redacted), every section matches the chain, "
            f"head {chain['head_hash'][:16]}..., {len(chain['anchors'])} anchor(s) match")


def verify_file(path: str, pubkey: str | bytes) -> str:
    with open(path, "rb") as f:
        return verify_bytes(f.read(), pubkey)


def _read_key(arg: str) -> str:
    """``--pubkey`` is the key itself or a file holding it."""
    if arg.startswith("ed25519:"):
        return arg
    try:
        with open(arg, encoding="ascii") as f:
            return f.read().strip()
    except UnicodeDecodeError:
        raise BundleError(f"the public key file {arg} is not ASCII text (expected "
                          "ed25519:<base64>)") from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[1] != "--pubkey":
        print("usage: python -m enforcer.audit.verify_bundle FILE --pubkey "
              "ed25519:<base64>|KEYFILE", file=sys.stderr)
        return 2
    try:
        key = _read_key(args[2])
        print(verify_file(args[0], key))
    except OSError as e:
        print(f"cannot read {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    except BundleError as e:
        print(f"bundle does NOT verify: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
