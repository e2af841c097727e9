"""``enforcer audit verify --full``: the whole keyed chain, and the chain against every
anchor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from enforcer.audit.anchor import Anchor, check_anchors
from enforcer.store import Store
from enforcer.store.schema import AuditEntry


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    first_bad_seq: int | None
    reason: str
    anchors_checked: int = 0


def verify_store(store: Store, anchors: Sequence[Anchor] = (),
                 legacy_until: int | None = 0) -> Verdict:
    """Walk the whole chain (modified, deleted, inserted, reordered or unkeyed entries),
    then check every anchor: an anchored entry that differs, or an anchor past the
    chain's end (truncation), is named."""
    ok, bad, reason = store.verify_audit(legacy_until)
    if not ok:
        return Verdict(False, bad, reason, 0)
    if not anchors:
        return Verdict(True, None, reason + "; no anchors checked", 0)
    seqs = sorted({a.seq for a in anchors})
    with store.read_session() as session:
        last = session.scalar(select(func.max(AuditEntry.seq))) or 0
        chain: dict[int, str] = {}
        for i in range(0, len(seqs), 500):
            rows = session.execute(select(AuditEntry.seq, AuditEntry.hash)
                                   .where(AuditEntry.seq.in_(seqs[i:i + 500])))
            chain.update({int(s): str(h) for s, h in rows})
    broken = check_anchors(chain, int(last), anchors)
    if broken is not None:
        return Verdict(False, broken[0], broken[1], len(anchors))
    return Verdict(True, None, f"{reason}; {len(anchors)} anchor(s) match", len(anchors))
