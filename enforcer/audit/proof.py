"""Proof that a lift was consented to, from the audit trail alone.

The engine removes a block on a lift only when :func:`prove_lift` says so. The proof
never trusts a database row for what matters; it reads the order's audit entries,
checks each one is authentic (HMAC under the audit key, linked to the entry before
it) and that the chain is intact up to its newest anchor, and then requires:

* the order's reason from the chain: ``order.accepted``'s ``reason``, overridden by the
  newest ``order.amended`` entry's ``after.reason``;
* a ``lift.requested`` entry (``lift_request_id``) with the group, rule, needed and
  electorate frozen when it was made, and those agree with the policy for that reason
  (the requester excluded from the electorate unless the policy allows);
* ``lift.approval`` entries (decision ``approve``) from members of that electorate,
  each member counted once, enough for the rule (unanimous: all of them and no
  refusal), after the request;
* the ``lift.approved`` entry for that request, after them;
* and the database's approval rows for that request agree with those entries.

Anything else is not a proof: the engine leaves every block in place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from enforcer.policy import Policy, Rule
from enforcer.store import AuditRecord, NotFound, Store
from enforcer.store.audit import entry_hash, hmac_equal
from enforcer.store.auditkey import AuditKeyring
from enforcer.store.schema import AuditEntry

if TYPE_CHECKING:
    from enforcer.audit.guard import ChainGuard

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiftProof:
    """``ok`` when the lift ``lift_request_id`` is backed by the chain; ``why`` says
    what was found (or missing). ``reason``: the order's reason per the chain."""

    ok: bool
    lift_request_id: str | None
    why: str
    reason: str | None = None
    approvers: tuple[str, ...] = ()
    # For an amendment's request: the downgrade it approved, as the chain recorded it.
    amendment: dict[str, Any] | None = None


def authentic(r: AuditRecord, keys: AuditKeyring, legacy_until: int) -> str | None:
    """Why the entry ``r`` is not authentic, or None."""
    if r.key_id is None and r.seq > legacy_until:
        return f"entry {r.seq} ({r.action}) is not keyed"
    want = entry_hash(seq=r.seq, at=r.at, actor=r.actor, action=r.action,
                      order_id=r.order_id, payload=r.payload, prev_hash=r.prev_hash,
                      key_id=r.key_id, keys=keys)
    if want is None:
        return f"entry {r.seq} ({r.action}) is keyed with unknown key {r.key_id}"
    if not hmac_equal(want, r.hash):
        return f"entry {r.seq} ({r.action}) was not made with the audit key"
    return None


def _linked(store: Store, entries: Sequence[AuditRecord]) -> str | None:
    """Why an entry is not linked to the one before it in the stored chain, or None."""
    want = {r.seq - 1: r for r in entries if r.seq > 1}
    seqs = sorted(want)
    found: dict[int, str] = {}
    with store.read_session() as session:
        for i in range(0, len(seqs), 500):
            found.update({int(s): str(h) for s, h in session.execute(
                select(AuditEntry.seq, AuditEntry.hash).where(
                    AuditEntry.seq.in_(seqs[i:i + 500])))})
    for seq in seqs:
        if found.get(seq) != want[seq].prev_hash:
            return f"entry {seq + 1} ({want[seq].action}) is not linked to entry {seq}"
    return None


def chain_reason(entries: Sequence[AuditRecord]) -> str | None:
    """The order's reason per its entries (accepted, then the newest amendment)."""
    reason: str | None = None
    for r in entries:
        if r.action == "order.accepted":
            reason = str(r.payload.get("reason")) if r.payload.get("reason") else None
        elif r.action == "order.amended" and reason is not None:
            after = r.payload.get("after")
            if isinstance(after, dict) and after.get("reason"):
                reason = str(after["reason"])
    return reason


def _policy_mismatch(req: dict[str, Any], policy: Policy, reason: str) -> str | None:
    try:
        lp = policy.for_reason(reason).lift
    except (KeyError, ValueError):
        return f"reason {reason!r} has no policy"
    electorate = req.get("electorate")
    if not isinstance(electorate, list) or not electorate:
        return "the request recorded no electorate"
    if req.get("rule") != lp.rule.value:
        return f"the request recorded rule {req.get('rule')!r}, the policy for {reason} " \
               f"says {lp.rule.value!r}"
    if req.get("group") != lp.group:
        return f"the request recorded group {req.get('group')!r}, the policy for {reason} " \
               f"says {lp.group!r}"
    if req.get("needed") != lp.needed(len(electorate)):
        return f"the request recorded needed={req.get('needed')!r}, the policy for " \
               f"{reason} needs {lp.needed(len(electorate))} of {len(electorate)}"
    if not lp.requester_may_approve:
        asked = {req.get("requested_by"), req.get("on_behalf_of")} - {None}
        if asked & set(electorate):
            return "the requester is in the electorate, which the policy forbids"
    return None


def evaluate_entries(req: dict[str, Any], decisions: Sequence[AuditRecord]
                     ) -> tuple[bool, tuple[str, ...], str]:
    """Whether the ``lift.approval`` entries meet the request's frozen rule."""
    electorate = set(req.get("electorate") or ())
    first: dict[str, str] = {}
    for d in decisions:
        if d.actor in electorate and d.actor not in first:
            first[d.actor] = str(d.payload.get("decision"))
    yes = tuple(sorted(a for a, v in first.items() if v == "approve"))
    no = [a for a, v in first.items() if v == "refuse"]
    unanimous = req.get("rule") == Rule.UNANIMOUS.value
    needed = len(electorate) if unanimous else int(req.get("needed") or 0)
    if unanimous and no:
        return False, yes, f"refused by {', '.join(sorted(no))} (unanimous rule)"
    if needed < 1 or len(yes) < needed:
        return False, yes, f"{len(yes)} approval(s) in the chain, {needed} needed"
    return True, yes, f"approved by {', '.join(yes)} ({req.get('rule')})"


def prove_lift(store: Store, policy: Policy, order_id: str,
               lift_request_id: str | None = None, *,
               guard: ChainGuard | None = None, legacy_until: int = 0) -> LiftProof:
    """Whether the chain proves a consented lift of ``order_id``: the request
    ``lift_request_id``, or (None) the order's newest approved one. ``guard`` also checks
    the chain up to its newest anchor (incrementally); without one, unkeyed entries are
    accepted up to ``legacy_until``."""
    if guard is not None:
        verdict = guard.check()
        if not verdict.ok:
            return LiftProof(False, lift_request_id, f"audit chain broken: {verdict.reason}")
        legacy_until = guard.legacy_until
    entries = store.audit_entries(order_id=order_id, limit=1_000_000)
    for r in entries:
        bad = authentic(r, store.audit_keys, legacy_until)
        if bad is not None:
            return LiftProof(False, lift_request_id, bad)
    bad = _linked(store, entries)
    if bad is not None:
        return LiftProof(False, lift_request_id, bad)
    reason = chain_reason(entries)
    if reason is None:
        return LiftProof(False, lift_request_id, "no order.accepted entry in the chain")
    approved = {str(r.payload.get("lift_request_id")): r for r in entries
                if r.action == "lift.approved"}
    if lift_request_id is None:
        newest = max(approved.values(), key=lambda r: r.seq, default=None)
        if newest is None:
            return LiftProof(False, None, "no lift.approved entry in the chain", reason)
        lift_request_id = str(newest.payload.get("lift_request_id"))
    done = approved.get(lift_request_id)
    if done is None:
        return LiftProof(False, lift_request_id,
                         f"no lift.approved entry for {lift_request_id} in the chain", reason)
    requested = [r for r in entries if r.action == "lift.requested"
                 and r.payload.get("lift_request_id") == lift_request_id]
    if len(requested) != 1 or requested[0].seq > done.seq:
        return LiftProof(False, lift_request_id,
                         f"no lift.requested entry for {lift_request_id} before its approval",
                         reason)
    req = {**requested[0].payload, "requested_by": requested[0].actor}
    # The policy that governed when the request was made (a consented downgrade may
    # change the reason afterwards; an upgrade supersedes any open request).
    asked_under = chain_reason([r for r in entries if r.seq < requested[0].seq]) or reason
    bad = _policy_mismatch(req, policy, asked_under)
    if bad is not None:
        return LiftProof(False, lift_request_id, bad, reason)
    decisions = [r for r in entries if r.action == "lift.approval"
                 and r.payload.get("lift_request_id") == lift_request_id
                 and requested[0].seq < r.seq <= done.seq]
    ok, yes, why = evaluate_entries(req, decisions)
    if not ok:
        return LiftProof(False, lift_request_id, why, reason, yes)
    bad = _rows_disagree(store, lift_request_id, decisions)
    if bad is not None:
        return LiftProof(False, lift_request_id, bad, reason, yes)
    amendment = req.get("amendment")
    return LiftProof(True, lift_request_id, why, reason, yes,
                     amendment if isinstance(amendment, dict) else None)


def _rows_disagree(store: Store, lift_request_id: str,
                   decisions: Sequence[AuditRecord]) -> str | None:
    """Why the database's approval rows for the request differ from the chain."""
    try:
        lift = store.get_lift_request(lift_request_id)
    except NotFound:
        return None  # a missing row: the chain still proves the lift
    rows = sorted((a.approver, a.decision) for a in lift.approvals)
    chain = sorted((str(d.actor), str(d.payload.get("decision"))) for d in decisions)
    if rows != chain:
        extra = sorted(set(rows) - set(chain))
        return (f"the approvals rows of {lift_request_id} disagree with the chain"
                + (f" (not in the chain: {extra})" if extra else ""))
    return None


@dataclass
class LiftGate:
    """What the engine asks before removing a block on a lift. An unproven lift is
    refused; it is audited (``lift.unproven``), counted
    (``enforcer_lift_unproven_total``) and logged at most once per order per
    ``interval_s``; the refusal itself happens every time."""

    store: Store
    policy: Policy
    metrics: Any
    guard: ChainGuard | None = None
    interval_s: float = 300.0
    _reported: dict[str, float] = field(default_factory=dict)

    def prove(self, order_id: str, lift_request_id: str | None = None) -> LiftProof:
        return prove_lift(self.store, self.policy, order_id, lift_request_id,
                          guard=self.guard)

    async def allows(self, order_id: str, lift_request_id: str | None = None) -> bool:
        return (await self.check(order_id, lift_request_id)).ok

    async def check(self, order_id: str, lift_request_id: str | None = None) -> LiftProof:
        """The proof; a failed one is audited, counted and logged (rate-limited)."""
        proof = await asyncio.to_thread(self.prove, order_id, lift_request_id)
        if proof.ok:
            self._reported.pop(order_id, None)
            return proof
        now = time.monotonic()
        last = self._reported.get(order_id)
        if last is None or now - last >= self.interval_s:
            self._reported[order_id] = now
            self.metrics.lift_unproven.inc()
            log.error("order %s: lift NOT proven by the audit trail (%s); every block stays "
                      "in place", order_id, proof.why,
                      extra={"event": "lift.unproven", "order_id": order_id,
                             "lift_request_id": proof.lift_request_id})
            await asyncio.to_thread(
                self.store.record_event, "engine", "lift.unproven", order_id,
                {"lift_request_id": proof.lift_request_id, "why": proof.why,
                 "reason": proof.reason, "approvers": list(proof.approvers)})
        return proof
