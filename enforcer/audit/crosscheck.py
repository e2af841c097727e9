"""State against trail: database rows that the audit chain does not justify.

``enforcer audit verify`` reports, besides a broken chain:

* an order whose state differs from the newest ``order.state`` entry (or from
  ``accepted`` when it has none), e.g. a state flipped with SQL;
* an order ``lifting`` or ``lifted`` without a lift :func:`prove_lift` accepts;
* a removed target without an entry removing it, or without the lift, the amendment
  or the mechanism fallback that justifies the removal;
* an approval row without the ``lift.approval`` entry that records that decision;
* an order the chain accepted that is missing from the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from enforcer.audit.proof import prove_lift
from enforcer.policy import Policy
from enforcer.store import AuditRecord, Store
from enforcer.store import schema as s


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # state, lift, target, approval, missing
    order_id: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "order_id": self.order_id, "detail": self.detail}


def _by_order(store: Store) -> dict[str, list[AuditRecord]]:
    out: dict[str, list[AuditRecord]] = defaultdict(list)
    after = 0
    while True:
        chunk = store.audit_entries(after_seq=after, limit=5000)
        if not chunk:
            return out
        for r in chunk:
            if r.order_id is not None:
                out[r.order_id].append(r)
        after = chunk[-1].seq


def cross_check(store: Store, policy: Policy, legacy_until: int = 0) -> list[Finding]:
    """Every disagreement between the database and the chain (empty: none)."""
    return list(_findings(store, policy, legacy_until))


def _findings(store: Store, policy: Policy, legacy_until: int) -> Iterator[Finding]:
    trail = _by_order(store)
    with store.read_session() as session:
        orders = session.execute(select(s.Order.id, s.Order.state)).all()
        targets = session.execute(select(s.Target.id, s.Target.order_id, s.Target.device,
                                         s.Target.mac, s.Target.state)).all()
        approvals = session.execute(select(
            s.Approval.lift_request_id, s.Approval.approver, s.Approval.decision,
            s.LiftRequest.order_id).join(
            s.LiftRequest, s.LiftRequest.id == s.Approval.lift_request_id)).all()
    proven: dict[str, bool] = {}
    present = {o for o, _ in orders}
    for order_id, entries in trail.items():
        if order_id not in present and any(r.action == "order.accepted" for r in entries):
            yield Finding("missing", order_id, "the chain accepted this order; the database "
                          "has no row for it")
    for order_id, state in orders:
        entries = trail.get(order_id, [])
        states = [r.payload.get("to") for r in entries if r.action == "order.state"]
        want = states[-1] if states else "accepted"
        if state != want:
            yield Finding("state", order_id, f"the database says {state}, the chain's last "
                          f"order.state entry says {want}")
        if state in ("lifting", "lifted") or want in ("lifting", "lifted"):
            proof = prove_lift(store, policy, order_id, legacy_until=legacy_until)
            proven[order_id] = proof.ok
            if not proof.ok:
                yield Finding("lift", order_id, f"{state} without a proven lift: {proof.why}")
    for target_id, order_id, device, mac, state in targets:
        if state != "removed":
            continue
        entries = trail.get(order_id, [])
        removing = [r for r in entries if r.payload.get("target_id") == target_id
                    and r.payload.get("state") == "removed"]
        if not removing:
            yield Finding("target", order_id, f"target {target_id} ({mac} on {device}) is "
                          "removed but no audit entry removes it")
            continue
        fallback = any(r.action == "target.fallback" for r in removing)
        amended = any(r.action == "order.amended" for r in entries)
        if not fallback and not amended:
            if order_id not in proven:
                proven[order_id] = prove_lift(store, policy, order_id,
                                              legacy_until=legacy_until).ok
            if not proven[order_id]:
                yield Finding("target", order_id, f"target {target_id} ({mac} on {device}) "
                              "was removed without a proven lift or amendment")
    for lift_id, approver, decision, order_id in approvals:
        if not any(r.action == "lift.approval" and r.actor == approver
                   and r.payload.get("lift_request_id") == lift_id
                   and r.payload.get("decision") == decision
                   for r in trail.get(order_id, [])):
            yield Finding("approval", order_id, f"approval row of {approver} ({decision}) on "
                          f"{lift_id} has no lift.approval entry in the chain")
