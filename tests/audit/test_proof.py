"""``prove_lift``: a lift is proven only by authentic chain entries that meet the policy
for the order's reason as the chain records it. Each insider attack on the database
(state flip, forged rows, forged or recomputed entries, a changed reason) is refused,
and the gate audits and counts the refusal once per interval."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from enforcer.audit.anchor import FileAnchorSink, anchor_now
from enforcer.audit.guard import ChainGuard
from enforcer.audit.proof import LiftGate, prove_lift
from enforcer.domain.model import OrderState, Role
from enforcer.lifts import evaluate
from enforcer.metrics import Metrics
from enforcer.policy import Policy
from enforcer.store import Store, canonical_json
from enforcer.store.audit import entry_hash
from tests.audit.conftest import make_order
from tests.lifts.conftest import BOARD, policy_with


@pytest.fixture
def policy() -> Policy:
    return policy_with(BOARD)  # unanimous board of hs-board, for every reason


@pytest.fixture
def board(store: Store) -> list[str]:
    for name in ("alice", "bob", "carol"):
        store.add_user(name, Role.APPROVER, groups=("hs-board",))
    return ["alice", "bob", "carol"]


def _request(store: Store, order_id: str, board: list[str]) -> str:
    return store.request_lift(order_id, requested_by="eng", reason="resolved",
                              group="hs-board", rule="unanimous", needed=len(board),
                              electorate=board).id


def _sql(store: Store, stmt: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(stmt), params)


def _forge_entry(store: Store, action: str, order_id: str, actor: str,
                 payload: dict[str, object], *, key_id: str | None) -> None:
    """Append an entry as an insider with database access but no key would: the
    links and a SHA-256 recomputed, under the real key id or none."""
    head = store.audit_entries(limit=1_000_000)[-1]
    at = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)
    body = canonical_json(payload)
    import json

    h = entry_hash(seq=head.seq + 1, at=at, actor=actor, action=action, order_id=order_id,
                   payload=json.loads(body), prev_hash=head.hash)
    _sql(store, "INSERT INTO audit_log (seq, at, actor, action, order_id, payload, prev_hash,"
         " hash, key_id) VALUES (:s, :at, :actor, :action, :o, :p, :prev, :h, :k)",
         s=head.seq + 1, at=at.replace(tzinfo=None), actor=actor, action=action, o=order_id,
         p=body, prev=head.hash, h=h, k=key_id)


def test_a_consented_lift_is_proven(store: Store, policy: Policy, board: list[str]) -> None:
    oid = make_order(store)
    lift_id = _request(store, oid, board)
    for name in board:
        store.decide_lift(lift_id, approver=name, decision="approve", note=None,
                          evaluate=evaluate)
    assert store.get_order(oid).state is OrderState.LIFTING
    proof = prove_lift(store, policy, oid)
    assert proof.ok and proof.lift_request_id == lift_id, proof
    assert proof.approvers == ("alice", "bob", "carol") and proof.reason == \
        "threat_of_violence"
    assert prove_lift(store, policy, oid, lift_id).ok


def test_a_state_flip_is_not_a_lift(store: Store, policy: Policy) -> None:
    oid = make_order(store)
    _sql(store, "UPDATE orders SET state = 'lifting' WHERE id = :o", o=oid)
    proof = prove_lift(store, policy, oid)
    assert not proof.ok and "no lift.approved entry" in proof.why


def test_forged_request_and_approval_rows_are_not_a_lift(store: Store, policy: Policy,
                                                         board: list[str]) -> None:
    oid = make_order(store)
    lift_id = _request(store, oid, board)
    store.decide_lift(lift_id, approver="alice", decision="approve", note=None,
                      evaluate=evaluate)
    now = datetime(2025, 3, 1, 12, 30)
    for name in ("bob", "carol"):
        _sql(store, "INSERT INTO approvals (lift_request_id, approver, decision, note, "
             "created_at) VALUES (:l, :a, 'approve', NULL, :t)", l=lift_id, a=name, t=now)
    _sql(store, "UPDATE lift_requests SET state = 'approved' WHERE id = :l", l=lift_id)
    _sql(store, "UPDATE orders SET state = 'lifting' WHERE id = :o", o=oid)
    proof = prove_lift(store, policy, oid)
    assert not proof.ok and "no lift.approved entry" in proof.why
    assert not prove_lift(store, policy, oid, lift_id).ok


@pytest.mark.parametrize("keyed", [True, False])
def test_forged_entries_with_recomputed_hashes_are_not_a_lift(
        store: Store, policy: Policy, board: list[str], keyed: bool) -> None:
    oid = make_order(store)
    lift_id = _request(store, oid, board)
    store.decide_lift(lift_id, approver="alice", decision="approve", note=None,
                      evaluate=evaluate)
    key_id = store.audit_keys.current if keyed else None
    for name in ("bob", "carol"):
        _forge_entry(store, "lift.approval", oid, name,
                     {"lift_request_id": lift_id, "decision": "approve", "note": None},
                     key_id=key_id)
    _forge_entry(store, "lift.approved", oid, "carol",
                 {"lift_request_id": lift_id, "rule": "unanimous", "needed": 3},
                 key_id=key_id)
    _sql(store, "UPDATE orders SET state = 'lifting' WHERE id = :o", o=oid)
    proof = prove_lift(store, policy, oid)
    assert not proof.ok
    assert ("not made with the audit key" if keyed else "is not keyed") in proof.why


def test_a_rewritten_approval_actor_is_not_a_lift(store: Store, policy: Policy,
                                                  board: list[str]) -> None:
    """An insider rewrites who made an approval entry (the chain is plain data to
    them): the entry no longer authenticates, so nothing is proven."""
    oid = make_order(store)
    lift_id = _request(store, oid, board)
    for name in board:
        store.decide_lift(lift_id, approver=name, decision="approve", note=None,
                          evaluate=evaluate)
    seq = next(e for e in store.audit_entries(order_id=oid) if e.action == "lift.approval").seq
    _sql(store, "UPDATE audit_log SET actor = 'dave' WHERE seq = :s", s=seq)
    proof = prove_lift(store, policy, oid)
    assert not proof.ok and "not made with the audit key" in proof.why


def test_the_policy_comes_from_the_chains_reason(store: Store, board: list[str]) -> None:
    """The request froze "any" (as the policy for the row's reason said); the chain's
    reason needs the board's unanimity: not proven. Changing the row's reason changes
    nothing."""
    strict = policy_with(BOARD)
    oid = make_order(store)
    lift_id = store.request_lift(oid, requested_by="eng", reason="x", group="hs-board",
                                 rule="any", needed=1, electorate=board).id
    store.decide_lift(lift_id, approver="alice", decision="approve", note=None,
                      evaluate=evaluate)
    _sql(store, "UPDATE orders SET reason = 'non_payment' WHERE id = :o", o=oid)
    proof = prove_lift(store, strict, oid)
    assert not proof.ok and "rule 'any'" in proof.why and proof.reason == \
        "threat_of_violence"
    lenient = policy_with({"group": "hs-board", "rule": "any"})
    assert prove_lift(store, lenient, oid).ok
    # An amendment in the chain changes the reason the proof uses.
    store.record_event("eng", "order.amended", oid, {"after": {"reason": "fraud"}})
    mixed = policy_with({"group": "hs-board", "rule": "any"})
    assert prove_lift(store, mixed, oid).reason == "fraud"


def test_approval_rows_must_agree_with_the_chain(store: Store, policy: Policy,
                                                 board: list[str]) -> None:
    oid = make_order(store)
    lift_id = _request(store, oid, board)
    for name in board:
        store.decide_lift(lift_id, approver=name, decision="approve", note=None,
                          evaluate=evaluate)
    _sql(store, "INSERT INTO approvals (lift_request_id, approver, decision, note, "
         "created_at) VALUES (:l, 'mallory', 'approve', NULL, :t)", l=lift_id,
         t=datetime(2025, 3, 1, 12, 30))
    proof = prove_lift(store, policy, oid)
    assert not proof.ok and "disagree with the chain" in proof.why


def test_a_broken_chain_or_truncation_past_the_anchor_is_not_a_lift(
        store: Store, policy: Policy, board: list[str], tmp_path: Path) -> None:
    oid = make_order(store)
    lift_id = _request(store, oid, board)
    for name in board:
        store.decide_lift(lift_id, approver=name, decision="approve", note=None,
                          evaluate=evaluate)
    anchors = tmp_path / "anchors" / "anchors.jsonl"
    guard = ChainGuard(store, anchors)
    anchor_now(store, [FileAnchorSink(anchors)])
    assert prove_lift(store, policy, oid, guard=guard).ok
    _sql(store, "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)")
    proof = prove_lift(store, policy, oid, guard=guard)
    assert not proof.ok and "audit chain broken" in proof.why


def test_gate_audits_and_counts_once_per_interval(store: Store, policy: Policy) -> None:
    oid = make_order(store)
    _sql(store, "UPDATE orders SET state = 'lifting' WHERE id = :o", o=oid)
    metrics = Metrics(CollectorRegistry())
    gate = LiftGate(store, policy, metrics, interval_s=3600)
    for _ in range(3):
        assert asyncio.run(gate.allows(oid)) is False
    unproven = [e for e in store.audit_entries(order_id=oid) if e.action == "lift.unproven"]
    assert len(unproven) == 1 and "no lift.approved" in unproven[0].payload["why"]
    assert metrics.registry.get_sample_value("enforcer_lift_unproven_total") == 1.0


def test_an_order_without_targets_is_not_lifted_without_a_lift_scan() -> None:
    """A flipped order with no targets: no device answered for a lift (the gate records
    no scan), so deriving its state keeps it lifting instead of a vacuous "lifted"."""
    from types import SimpleNamespace

    from enforcer.domain.lifecycle import derive

    ban = SimpleNamespace(device="cbr8-1", phase="ban", ok=True, detail={})
    assert derive("lifting", [], {"cbr8-1": ban}, [])[0] == "lifting"
    lift = SimpleNamespace(device="cbr8-1", phase="lift", ok=True, detail={})
    assert derive("lifting", [], {"cbr8-1": lift}, [])[0] == "lifted"
