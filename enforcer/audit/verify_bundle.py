"""Verify an evidence bundle offline: ``python -m enforcer.audit.verify_bundle FILE``.

Standard library only, so a recipient can read and run it without installing the
enforcer. Checks, in order (the first failure is reported):

1. the file is exactly the canonical JSON encoding of its content plus one newline
   (so no byte can change unnoticed, whitespace included);
2. ``sha256`` is the SHA-256 of the canonical JSON of ``bundle``;
3. the chain segment is contiguous, each entry's ``prev_hash`` is the previous entry's
   ``hash``, every full entry's hash recomputes (SHA-256 over the canonical JSON of
   ``{seq, at, actor, action, order_id, payload, prev_hash}``), and the head matches;
4. every anchor inside the segment matches the entry it names;
5. every timeline entry, approval and push transcript digest is backed by a full chain
   entry of the order.

Exit 0 when the bundle verifies, 1 when it does not (the first failure is named).
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

FORMAT = "enforcer-evidence-bundle/1"
GENESIS = "0" * 64
_ENTRY_KEYS = ("seq", "at", "actor", "action", "order_id", "payload", "prev_hash")


class BundleError(Exception):
    """The bundle does not verify."""


def canonical(obj: Any) -> str:
    """Sorted keys, no spaces, UTF-8 (the audit chain's canonical JSON)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def entry_hash(entry: dict[str, Any]) -> str:
    doc = {k: entry[k] for k in _ENTRY_KEYS}
    return hashlib.sha256(canonical(doc).encode("utf-8")).hexdigest()


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
        if not e.get("redacted") and entry_hash(e) != e["hash"]:
            raise BundleError(f"seq {seq}: hash does not match the entry's content")
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


def _backed(b: dict[str, Any], by_seq: dict[int, dict[str, Any]]) -> int:
    order_id = b["order_id"]
    mine = [e for e in by_seq.values() if not e.get("redacted") and e["order_id"] == order_id]
    for t in b["timeline"]:
        e = by_seq.get(t["seq"])
        if e is None or e.get("redacted") or e["order_id"] != order_id or \
                e["action"] != t["action"] or e["at"] != t["at"]:
            raise BundleError(f"timeline seq {t['seq']} ({t['action']}) is not in the chain")
    for a in b["approvals"]:
        if not any(e["action"] == "lift.approval" and e["actor"] == a["approver"]
                   and e["payload"].get("lift_request_id") == a["lift_request_id"]
                   and e["payload"].get("decision") == a["decision"] for e in mine):
            raise BundleError(f"approval by {a['approver']} on {a['lift_request_id']} is "
                              "not in the chain")
    for t in b["transcripts"]:
        if not any(e["payload"].get("target_id") == t["target_id"]
                   and e["payload"].get("transcript_sha256") == t["sha256"] for e in mine):
            raise BundleError(f"transcript digest of target {t['target_id']} is not in the "
                              "chain")
    return len(mine)


def verify_bytes(raw: bytes) -> str:
    """Verify a bundle's bytes; returns a one-line summary or raises BundleError."""
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
            raise BundleError(f"unknown format {b['format']!r}")
        by_seq = _chain(b)
        own = _backed(b, by_seq)
    except (KeyError, TypeError, AttributeError) as e:
        raise BundleError(f"malformed bundle ({type(e).__name__}: {e})") from None
    chain = b["chain"]
    redacted = sum(1 for e in chain["entries"] if e.get("redacted"))
    return (f"bundle for {b['order_id']} verifies: {own} entries of the order, seq "
            f"{chain['first_seq']}..{chain['last_seq']} linked ({redacted} other entries "
            f"redacted), head {chain['head_hash'][:16]}..., {len(chain['anchors'])} "
            "anchor(s) match")


def verify_file(path: str) -> str:
    with open(path, "rb") as f:
        return verify_bytes(f.read())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m enforcer.audit.verify_bundle FILE", file=sys.stderr)
        return 2
    try:
        print(verify_file(args[0]))
    except OSError as e:
        print(f"cannot read {args[0]}: {e.strerror}", file=sys.stderr)
        return 2
    except BundleError as e:
        print(f"bundle does NOT verify: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
