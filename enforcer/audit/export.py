"""``enforcer audit export ORDER --out FILE``: one signed evidence bundle for an order.

The bundle holds the audit chain segment from the order's first entry to the head
(with the anchors inside it; entries of other orders and users redacted to ``{seq,
prev_hash, hash}`` unless ``full_chain``) and sections derived from the order's
entries alone: the order (ticket, account, reason, scope, state), its devices, the
evidence references (e.g. a call-recording link and offset), targets and their
verification results, lift requests with every decision, amendments and the
timeline, each item naming the seqs it comes from. Push transcripts are included with
secrets scrubbed, with the SHA-256 of the stored transcript that the chain carries.
The whole is signed with the enforcer's Ed25519 evidence key. The file is canonical
JSON; ``enforcer.audit.verify_bundle`` checks it offline.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enforcer.audit.anchor import Anchor
from enforcer.audit.proof import authentic
from enforcer.audit.signing import PREFIX, fingerprint, raw_public
from enforcer.audit.verify_bundle import FORMAT, canonical, derive_sections
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


def _authentic_segment(store: Store, segment: Sequence[AuditRecord],
                       legacy_until: int) -> None:
    """Refuse to sign entries that are not authentic (HMAC) or not linked."""
    prev: str | None = None
    for r in segment:
        if prev is not None and r.prev_hash != prev:
            raise ChainBroken(r.seq, "prev_hash does not match the previous entry's hash")
        why = authentic(r, store.audit_keys, legacy_until)
        if why is not None:
            raise ChainBroken(r.seq, why)
        prev = r.hash


class ChainBroken(Exception):
    """The chain segment a bundle would hold does not verify: nothing is signed."""

    def __init__(self, seq: int, why: str) -> None:
        super().__init__(f"audit chain broken at seq {seq}: {why}")
        self.seq = seq


def build_bundle(store: Store, order_id: str, *, signing_key: Ed25519PrivateKey,
                 anchors: Sequence[Anchor] = (), secrets: Iterable[str] = (),
                 full_chain: bool = False, legacy_until: int = 0) -> dict[str, Any]:
    """The signed bundle document ``{"bundle", "sha256", "signature"}``. Every section
    is derived from the order's chain entries (``derive_sections``), which the bundle
    holds; the entries are checked against the audit key first (raises
    :class:`ChainBroken`; :class:`NotFound` for an unknown order)."""
    store.get_order(order_id)
    targets = store.targets_for_order(order_id)
    own = store.audit_entries(order_id=order_id, limit=1_000_000)
    segment = _segment(store, own[0].seq if own else 1)
    _authentic_segment(store, segment, legacy_until)
    entries = [_entry(r) if full_chain or r.order_id == order_id
               else {"seq": r.seq, "prev_hash": r.prev_hash, "hash": r.hash, "redacted": True}
               for r in segment]
    first = segment[0].seq if segment else 0
    last = segment[-1].seq if segment else 0
    secret_list = list(secrets)
    raw_pub = raw_public(signing_key)
    bundle: dict[str, Any] = {
        "format": FORMAT,
        "order_id": order_id,
        "exported_at": iso_utc(store.clock()),
        "signer": {"public_key": PREFIX + base64.b64encode(raw_pub).decode(),
                   "fingerprint": fingerprint(raw_pub)},
        "sections": derive_sections(entries, order_id),
        "transcripts": [{"target_id": t.id, "device": t.device, "mac": str(t.mac),
                         "mechanism": t.mechanism, "sha256": t.transcript_sha256,
                         "text": scrub(t.transcript, secret_list)}
                        for t in targets if t.transcript],
        "chain": {"first_seq": first, "last_seq": last,
                  "head_hash": segment[-1].hash if segment else "", "entries": entries,
                  "anchors": [a.as_dict() for a in anchors if first <= a.seq <= last]},
        "how_to_verify": "python -m enforcer.audit.verify_bundle FILE --pubkey "
                         "ed25519:<key from `enforcer audit pubkey`> (needs the "
                         "cryptography package)",
    }
    text = canonical(bundle).encode("utf-8")
    return {"bundle": bundle, "sha256": hashlib.sha256(text).hexdigest(),
            "signature": base64.b64encode(signing_key.sign(text)).decode()}


def write_bundle(doc: dict[str, Any], out: Path) -> None:
    """Write ``doc`` as canonical JSON plus a newline (the only accepted byte form)."""
    out.write_bytes((canonical(doc) + "\n").encode("utf-8"))
