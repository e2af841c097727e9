"""The lift workflow through the API with the recording fake engine: consent rules,
who may approve, expiry, and binding of a decision to one lift request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from enforcer.lifts import expire_lifts
from enforcer.policy import Policy
from tests.lifts.conftest import BOARD, LiftEnv, policy_with

pytestmark = pytest.mark.asyncio


async def test_board_of_three_unanimous(board: LiftEnv) -> None:
    order_id = await board.verified_order()
    r = await board.lift(order_id)
    assert r.status_code == 202, r.text
    lift = r.json()["lift_request"]
    assert lift["electorate"] == ["alice", "bob", "carol"] and lift["needed"] == 3
    assert lift["rule"] == "unanimous" and lift["group"] == "hs-board"
    woken = list(board.engine.accepted)
    for i, who in enumerate(("alice", "bob"), 1):
        r = await board.decide(order_id, who)
        assert r.status_code == 201, r.text
        assert r.json()["outcome"] == "recorded" and r.json()["order_state"] == "lift_pending"
        assert f"{i} so far" in r.json()["note"]
        assert board.state(order_id) == "lift_pending"  # two of three: still banned
    assert board.engine.accepted == woken  # the engine was not asked to lift anything
    r = await board.decide(order_id, "carol", note="agreed at the board meeting")
    assert r.status_code == 201 and r.json()["outcome"] == "approved"
    assert board.state(order_id) == "lifting" and board.engine.accepted[-1] == order_id
    assert board.store.get_lift_request(lift["id"]).state == "approved"
    events = [e for e, _ in board.notifier.events]
    assert events == ["ban.imposed", "lift.requested", "lift.approved"]
    actions = [e.action for e in board.store.audit_entries(order_id=order_id)]
    assert actions[-3:] == ["lift.approval", "lift.approved", "order.state"]


async def test_one_refusal_ends_a_unanimous_request(board: LiftEnv) -> None:
    order_id = await board.verified_order()
    await board.lift(order_id)
    assert (await board.decide(order_id, "alice")).json()["outcome"] == "recorded"
    r = await board.decide(order_id, "bob", "refuse", note="not safe yet")
    assert r.json()["outcome"] == "refused" and r.json()["order_state"] == "verified"
    assert (await board.decide(order_id, "carol")).status_code == 409  # nothing open
    assert board.state(order_id) == "verified"
    assert [e for e, _ in board.notifier.events][-1] == "lift.refused"
    assert (await board.lift(order_id)).status_code == 202  # may be asked again


async def test_outside_group_double_and_wrong_role_are_refused_and_audited(
        board: LiftEnv) -> None:
    order_id = await board.verified_order()
    await board.lift(order_id)
    r = await board.decide(order_id, "dave")
    assert r.status_code == 403 and "not one of the approvers" in r.json()["error"]["message"]
    assert (await board.decide(order_id, "alice")).status_code == 201
    r = await board.decide(order_id, "alice")
    assert r.status_code == 409 and "already decided" in r.json()["error"]["message"]
    r = await board.decide(order_id, "alice", "refuse")
    assert r.status_code == 409  # a decision cannot be changed either
    for role in ("engineer", "admin", "auditor", "escalation-system"):
        assert (await board.decide(order_id, role)).status_code == 403
    rejected = [e.payload["why"] for e in board.store.audit_entries(
        order_id=order_id, action="lift.approval_rejected")]
    assert rejected == ["not_eligible", "duplicate", "duplicate"]
    refused = [e.payload["status"] for e in board.store.audit_entries(
        action="request.refused")]
    assert refused.count(403) == 5 and refused.count(409) == 2
    assert board.state(order_id) == "lift_pending"


async def test_on_behalf_of_a_board_member_is_refused_and_shrinks_nothing(
        board: LiftEnv) -> None:
    """Naming a board member as the person who asked never removes that member from the
    electorate (which would let two of three lift a unanimous ban): it is a 422 that
    says why, nothing changes, and a normal unanimous lift still works afterwards."""
    order_id = await board.verified_order()
    r = await board.lift(order_id, on_behalf_of="alice")
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "alice" in message and "hs-board" in message and "never made smaller" in message
    assert board.state(order_id) == "verified"
    assert board.store.lift_requests_for_order(order_id) == []
    r = await board.lift(order_id, on_behalf_of="erin (union rep, not on the board)")
    assert r.status_code == 202, r.text
    lr = r.json()["lift_request"]
    assert lr["electorate"] == ["alice", "bob", "carol"] and lr["needed"] == 3
    assert lr["on_behalf_of"].startswith("erin")
    for name in ("alice", "bob"):
        assert (await board.decide(order_id, name)).json()["outcome"] == "recorded"
    assert board.state(order_id) == "lift_pending"
    assert (await board.decide(order_id, "carol")).json()["outcome"] == "approved"
    assert board.state(order_id) == "lifting"


async def test_requester_may_approve_when_the_policy_says_so(
        make_env: Callable[[Policy], Any]) -> None:
    env: LiftEnv = await make_env(policy_with({**BOARD, "requester_may_approve": True}))
    for name in ("alice", "bob"):
        env.add(name, groups=("hs-board",))
    order_id = await env.verified_order()
    r = await env.lift(order_id, on_behalf_of="alice")
    assert r.json()["lift_request"]["electorate"] == ["alice", "bob"]
    assert (await env.decide(order_id, "alice")).json()["outcome"] == "recorded"


async def test_expired_request_is_refused_and_the_ban_stays(board: LiftEnv) -> None:
    order_id = await board.verified_order()
    lift_id = (await board.lift(order_id)).json()["lift_request"]["id"]
    await board.decide(order_id, "alice")
    board.clock.advance(72 * 3600 + 1)
    r = await board.decide(order_id, "bob", lift_request_id=lift_id)
    assert r.status_code == 409 and r.json()["error"]["code"] == "lift_expired"
    assert board.state(order_id) == "verified"
    assert board.store.get_lift_request(lift_id).state == "expired"
    assert "lift.expired" in [e for e, _ in board.notifier.events]
    # A new request: the decisions on the old one do not carry over, and a decision
    # addressed to the old request stays refused.
    new_id = (await board.lift(order_id)).json()["lift_request"]["id"]
    assert new_id != lift_id
    r = await board.decide(order_id, "carol", lift_request_id=lift_id)
    assert r.status_code == 409 and r.json()["error"]["code"] == "lift_expired"
    for who in ("alice", "bob"):
        assert (await board.decide(order_id, who)).json()["outcome"] == "recorded"
    assert (await board.decide(order_id, "carol")).json()["outcome"] == "approved"


async def test_expire_lifts_job(board: LiftEnv) -> None:
    order_id = await board.verified_order()
    await board.lift(order_id, ttl_hours=1)
    assert await expire_lifts(board.store, board.notifier, board.clock) == 0
    board.clock.advance(3601)
    assert await expire_lifts(board.store, board.notifier, board.clock) == 1
    assert board.state(order_id) == "verified"
    assert await expire_lifts(board.store, board.notifier, board.clock) == 0
    assert [e for e, _ in board.notifier.events][-1] == "lift.expired"
    r = await board.lift(order_id, ttl_hours=73)
    assert r.status_code == 422 and "time limit" in r.json()["error"]["message"]


async def test_request_needs_a_board_that_can_consent(
        make_env: Callable[[Policy], Any]) -> None:
    env: LiftEnv = await make_env(policy_with(BOARD))
    order_id = await env.verified_order()
    r = await env.lift(order_id)
    assert r.status_code == 409 and "0 eligible approver" in r.json()["error"]["message"]
    assert env.state(order_id) == "verified"


async def test_any_rule(make_env: Callable[[Policy], Any]) -> None:
    env: LiftEnv = await make_env(policy_with({"group": "billing", "rule": "any"}))
    for name in ("ann", "ben"):
        env.add(name, groups=("billing",))
    order_id = await env.verified_order("non_payment")
    await env.lift(order_id)
    assert (await env.decide(order_id, "ann", "refuse")).json()["outcome"] == "recorded"
    assert (await env.decide(order_id, "ben")).json()["outcome"] == "approved"
    assert env.state(order_id) == "lifting"


async def test_n_of_m_rule(make_env: Callable[[Policy], Any]) -> None:
    env: LiftEnv = await make_env(policy_with({"group": None, "rule": "n_of_m", "n": 2}))
    for name in ("ann", "ben", "cat"):
        env.add(name)
    order_id = await env.verified_order("fraud")
    lift = (await env.lift(order_id)).json()["lift_request"]
    assert lift["needed"] == 2  # group null: every approver (u-approver too)
    assert lift["electorate"] == ["ann", "ben", "cat", "u-approver"]
    assert (await env.decide(order_id, "ann")).json()["outcome"] == "recorded"
    assert (await env.decide(order_id, "ben", "refuse")).json()["outcome"] == "recorded"
    assert (await env.decide(order_id, "cat")).json()["outcome"] == "approved"
    # 2 of 4 again, refused: three refusals make two approvals unreachable.
    other = await env.verified_order("fraud")
    await env.lift(other)
    await env.decide(other, "ann", "refuse")
    await env.decide(other, "ben", "refuse")
    assert (await env.decide(other, "cat", "refuse")).json()["outcome"] == "refused"
    assert env.state(other) == "verified"


async def test_electorate_is_frozen_at_request_time(board: LiftEnv) -> None:
    order_id = await board.verified_order()
    await board.lift(order_id)
    board.add("mallory", groups=("hs-board",))  # joins the board after the request
    assert (await board.decide(order_id, "mallory")).status_code == 403
    board.store.disable_user("carol", actor="admin")  # a dissenter cannot be removed
    await board.decide(order_id, "alice")
    assert (await board.decide(order_id, "bob")).json()["outcome"] == "recorded"
    assert board.state(order_id) == "lift_pending"
