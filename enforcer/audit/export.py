"""``enforcer audit export ORDER --out FILE``: one evidence bundle for an order.

The bundle holds the order (ticket, account, devices, evidence references such as a
call-recording link and offset), its timeline, lift requests and every decision, the
push transcripts with secrets scrubbed (with the SHA-256 of the stored transcript,
which the audit chain carries), the verification results, and the audit chain segment
from the order's first entry to the head, with the anchors inside it. Entries of other
orders and users are redacted to ``{seq, prev_hash, hash}`` unless ``full_chain``.
The file is canonical JSON; ``enforcer.audit.verify_bundle`` checks it offline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from enforcer.api import views
from enforcer.audit.anchor import Anchor
from enforcer.audit.verify_bundle import FORMAT, canonical
from enforcer.store import AuditRecord, Store
from enforcer.store.audit import iso_utc

SCRUBBED = "<scrubbed>"
_SECRET_PATTERNS = (
    # key = value / key: value / key value for the usual secret-bearing words
    re.compile(r"(?i)\b((?:password|passwd|secret|community|token|auth[-_ ]?key|"
               r"priv[-_ ]?key|auth[-_ ]?pass\w*|priv[-_ ]?pass\w*)(?:\s*[:=]\s*|\s+)"
               r"(?:[0-9]\s+)?)(\S+)"),  # IOS "secret 5 <hash>": the digit is the type
    # IOS-style SNMPv3: "auth sha <pw>", "priv aes 128 <pw>"
    re.compile(r"(?i)\b(auth\s+(?:md5|sha\S*)\s+)(\S+)"),
    re.compile(r"(?i)\b(priv\s+(?:des|3des|aes)(?:\s+\d+)?\s+)(\S+)"),
)
_VERIFY_ACTIONS = ("order.verification", "target.verified")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secret values and secret-looking assignments replaced."""
    for value in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, SCRUBBED)
    for pat in _SECRET_PATTERNS:
        text = pat.sub(lambda m: m.group(1) + SCRUBBED, text)
    return text


def _entry(r: AuditRecord) -> dict[str, Any]:
    return {"seq": r.seq, "at": iso_utc(r.at), "actor": r.actor, "action": r.action,
            "order_id": r.order_id, "payload": r.payload, "prev_hash": r.prev_hash,
            "hash": r.hash}


def _segment(store: Store, first: int) -> list[AuditRecord]:
    out: list[AuditRecord] = []
    after = first - 1
    while True:
        chunk = store.audit_entries(after_seq=after, limit=1000)
        if not chunk:
            return out
        out.extend(chunk)
        after = chunk[-1].seq


def build_bundle(store: Store, order_id: str, *, anchors: Sequence[Anchor] = (),
                 secrets: Iterable[str] = (), full_chain: bool = False) -> dict[str, Any]:
    """The bundle document ``{"bundle": ..., "sha256": ...}`` (raises NotFound)."""
    order = store.get_order(order_id)
    targets = store.targets_for_order(order_id)
    lifts = store.lift_requests_for_order(order_id)
    own = store.audit_entries(order_id=order_id, limit=1_000_000)
    segment = _segment(store, own[0].seq if own else 1)
    entries = [_entry(r) if full_chain or r.order_id == order_id
               else {"seq": r.seq, "prev_hash": r.prev_hash, "hash": r.hash, "redacted": True}
               for r in segment]
    first = segment[0].seq if segment else 0
    last = segment[-1].seq if segment else 0
    secret_list = list(secrets)
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "order_id": order_id,
        "exported_at": iso_utc(store.clock()),
        "order": views.order_detail(order, targets, lifts),
        "evidence": {"ticket": order.ticket, "account": order.account,
                     "requested_by": order.requested_by,
                     "references": [e.as_dict() for e in order.evidence]},
        "timeline": [{"seq": r.seq, "at": iso_utc(r.at), "actor": r.actor,
                      "action": r.action} for r in own],
        "approvals": [{"lift_request_id": lr.id, "approver": a.approver,
                       "decision": a.decision, "note": a.note,
                       "at": views.ts(a.created_at)} for lr in lifts for a in lr.approvals],
        "rejected_decisions": [{"seq": r.seq, "at": iso_utc(r.at), "actor": r.actor,
                                **r.payload} for r in own
                               if r.action == "lift.approval_rejected"],
        "transcripts": [{"target_id": t.id, "device": t.device, "mac": str(t.mac),
                         "mechanism": t.mechanism, "sha256": t.transcript_sha256,
                         "text": scrub(t.transcript, secret_list)}
                        for t in targets if t.transcript],
        "verifications": [{"seq": r.seq, "at": iso_utc(r.at), "action": r.action,
                           "result": r.payload} for r in own if r.action in _VERIFY_ACTIONS],
        "chain": {"first_seq": first, "last_seq": last,
                  "head_hash": segment[-1].hash if segment else "", "entries": entries,
                  "anchors": [a.as_dict() for a in anchors if first <= a.seq <= last]},
        "how_to_verify": "python -m enforcer.audit.verify_bundle FILE "
                         "(or: enforcer audit verify-bundle FILE)",
    }
    digest = hashlib.sha256(canonical(bundle).encode("utf-8")).hexdigest()
    return {"bundle": bundle, "sha256": digest}


def write_bundle(doc: dict[str, Any], out: Path) -> None:
    """Write ``doc`` as canonical JSON plus a newline (the only accepted byte form)."""
    out.write_bytes((canonical(doc) + "\n").encode("utf-8"))
