"""The lift workflow (``enforcer.lifts``) called directly on a real SQLite store: the
rule evaluation at every edge, the notification payloads, the refusals' codes, and a
decision addressed to another order's lift request (refused, through the API too)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from enforcer.domain.model import Role
from enforcer.lifts import LiftError, LiftWorkflow, _event_payload, evaluate, expire_lifts
from enforcer.notify import LogNotifier
from enforcer.policy import Policy
from enforcer.store.records import ApprovalRecord, LiftRequestRecord
from tests.lifts.conftest import BOARD, LiftEnv, policy_with

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def lift(rule: str | None, needed: int | None, electorate: tuple[str, ...] | None,
         *decisions: tuple[str, str]) -> LiftRequestRecord:
    return LiftRequestRecord(
        "lr1", "o1", "req", "why", "open", T0, T0 + timedelta(hours=1),
        tuple(ApprovalRecord("lr1", who, d, None, T0) for who, d in decisions),
        rule=rule, needed=needed, electorate=electorate)


ABC = ("a", "b", "c")


@pytest.mark.parametrize(("rule", "needed", "decisions", "verdict"), [
    ("unanimous", 3, [], None),
    ("unanimous", 3, [("a", "approve"), ("b", "approve")], None),
    ("unanimous", 3, [("a", "approve"), ("b", "approve"), ("c", "approve")], "approved"),
    ("unanimous", 3, [("a", "refuse")], "refused"),
    ("unanimous", 3, [("a", "approve"), ("b", "approve"), ("c", "refuse")], "refused"),
    # a stale ``needed`` does not weaken unanimity: every member must approve
    ("unanimous", 1, [("a", "approve")], None),
    ("unanimous", 1, [("a", "approve"), ("b", "refuse")], "refused"),
    ("any", 1, [("a", "refuse"), ("b", "refuse")], None),
    ("any", 1, [("a", "refuse"), ("b", "refuse"), ("c", "refuse")], "refused"),
    ("any", 1, [("a", "refuse"), ("c", "approve")], "approved"),
    ("n_of_m", 2, [("a", "approve")], None),
    ("n_of_m", 2, [("a", "approve"), ("b", "refuse")], None),
    ("n_of_m", 2, [("a", "approve"), ("b", "approve")], "approved"),
    ("n_of_m", 2, [("a", "refuse"), ("b", "approve")], None),
    ("n_of_m", 2, [("a", "refuse"), ("b", "refuse")], "refused"),
    ("n_of_m", 2, [("a", "refuse"), ("b", "approve"), ("c", "approve")], "approved"),
    ("n_of_m", 3, [("a", "approve"), ("b", "approve"), ("c", "approve")], "approved"),
    ("n_of_m", 3, [("a", "refuse")], "refused"),
    # decisions by people outside the frozen electorate never count
    ("any", 1, [("mallory", "approve")], None),
    ("unanimous", 3, [("mallory", "refuse")], None),
    ("n_of_m", 2, [("x", "approve"), ("y", "approve"), ("a", "approve")], None),
])
def test_evaluate(rule: str, needed: int, decisions: list[tuple[str, str]],
                  verdict: str | None) -> None:
    assert evaluate(lift(rule, needed, ABC, *decisions)) == verdict


def test_evaluate_needs_the_frozen_policy() -> None:
    yes = ("a", "approve")
    assert evaluate(lift(None, 1, ABC, yes)) is None
    assert evaluate(lift("any", None, ABC, yes)) is None
    assert evaluate(lift("any", 1, None, yes)) is None
    assert evaluate(lift("any", 1, (), yes)) is None
    assert evaluate(lift("any", 1, ("a",), yes)) == "approved"


def test_event_payload_is_the_whole_request() -> None:
    lr = LiftRequestRecord(
        "lr9", "o9", "eve", "settled", "open", T0, T0 + timedelta(hours=2),
        (ApprovalRecord("lr9", "a", "approve", "ok", T0),
         ApprovalRecord("lr9", "b", "refuse", None, T0)),
        on_behalf_of="union rep", group="hs-board", rule="n_of_m", needed=2,
        electorate=("a", "b", "c"), amendment={"after": {"scope": "node"}})
    assert _event_payload(lr, "harassment", extra=1) == {
        "order_id": "o9", "reason": "harassment", "lift_request_id": "lr9",
        "requested_by": "eve", "on_behalf_of": "union rep", "why": "settled",
        "group": "hs-board", "rule": "n_of_m", "needed": 2, "electorate": ["a", "b", "c"],
        "expires_at": "2026-01-01T02:00:00+00:00", "state": "open",
        "approvals": [{"approver": "a", "decision": "approve", "note": "ok"},
                      {"approver": "b", "decision": "refuse", "note": None}],
        "amendment": {"after": {"scope": "node"}}, "extra": 1}
    assert _event_payload(lift("any", 1, None), "fraud")["electorate"] == []


class Flow:
    def __init__(self, env: LiftEnv, policy: Policy) -> None:
        self.env, self.notifier, self.woken = env, LogNotifier(), list[str]()
        self.wf = LiftWorkflow(env.store, policy, self.notifier, self.woken.append)

    def user(self, name: str) -> Any:
        return self.env.store.get_user(name)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        return list(self.notifier.events)


async def flow(make_env: Callable[[Policy], Any], policy: Policy,
               members: tuple[str, ...] = ("alice", "bob", "carol")) -> Flow:
    env: LiftEnv = await make_env(policy)
    for name in members:
        env.add(name, groups=("hs-board",))
    env.add("dave")
    return Flow(env, policy)


async def test_request_then_unanimous_approval_notifies_each_step(
        make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with(BOARD))
    order_id = await f.env.verified_order()
    lr = f.wf.request(order_id, f.user("u-engineer"), reason="settled", ttl_hours=2,
                      on_behalf_of="union rep")
    assert (lr.electorate, lr.needed, lr.rule, lr.group) == (
        ("alice", "bob", "carol"), 3, "unanimous", "hs-board")
    assert lr.expires_at - lr.created_at == timedelta(hours=2)
    assert (lr.on_behalf_of, lr.requested_by, lr.reason) == ("union rep", "u-engineer",
                                                            "settled")
    assert lr.amendment is None
    [(event, payload)] = f.events()
    assert event == "lift.requested"
    assert payload == _event_payload(lr, "harassment")
    assert payload["reason"] == "harassment" and payload["why"] == "settled"
    for who in ("alice", "bob"):
        got, outcome = f.wf.decide(order_id, f.user(who), decision="approve", note="n")
        assert outcome == "recorded" and got.state == "open"
    assert f.woken == [] and len(f.events()) == 1
    got, outcome = f.wf.decide(order_id, f.user("carol"), decision="approve",
                               lift_request_id=lr.id)
    assert (outcome, got.state) == ("approved", "approved")
    assert f.woken == [order_id]
    event, payload = f.events()[-1]
    assert event == "lift.approved" and payload == _event_payload(got, "harassment")
    assert [a["approver"] for a in payload["approvals"]] == ["alice", "bob", "carol"]
    # who did what is who the audit log says did it
    audit = [(e.action, e.actor) for e in f.env.store.audit_entries(order_id=order_id)
             if e.action.startswith("lift.")]
    assert audit == [("lift.requested", "u-engineer"), ("lift.approval", "alice"),
                     ("lift.approval", "bob"), ("lift.approval", "carol"),
                     ("lift.approved", "carol")]


async def test_refusal_notifies_and_never_wakes_the_engine(
        make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with(BOARD))
    order_id = await f.env.verified_order("threat_of_violence")
    f.wf.request(order_id, f.user("u-engineer"), reason="r")
    got, outcome = f.wf.decide(order_id, f.user("bob"), decision="refuse", note="no")
    assert (outcome, got.state) == ("refused", "refused")
    assert f.woken == []
    event, payload = f.events()[-1]
    assert event == "lift.refused" and payload["reason"] == "threat_of_violence"
    assert payload["state"] == "refused"
    assert payload["approvals"] == [{"approver": "bob", "decision": "refuse", "note": "no"}]


async def test_a_lift_request_of_another_order_is_refused(
        make_env: Callable[[Policy], Any]) -> None:
    """Approving order B's lift request through order A's URL must not count."""
    f = await flow(make_env, policy_with({"group": "hs-board", "rule": "any"}))
    a = await f.env.verified_order()
    b = await f.env.verified_order()
    f.wf.request(a, f.user("u-engineer"), reason="a")
    lr_b = f.wf.request(b, f.user("u-engineer"), reason="b")
    with pytest.raises(LiftError) as e:
        f.wf.decide(a, f.user("alice"), decision="approve", lift_request_id=lr_b.id)
    assert (e.value.status, e.value.code, e.value.message) == (
        404, "not_found", f"no lift request {lr_b.id} for order {a}")
    assert f.env.store.get_lift_request(lr_b.id).approvals == ()
    assert f.env.store.get_lift_request(lr_b.id).state == "open"
    assert f.woken == []


async def test_a_lift_request_of_another_order_is_refused_through_the_api(
        make_env: Callable[[Policy], Any]) -> None:
    env: LiftEnv = await make_env(policy_with({"group": "hs-board", "rule": "any"}))
    env.add("alice", groups=("hs-board",))
    a, b = await env.verified_order(), await env.verified_order()
    assert (await env.lift(a)).status_code == 202
    lr_b = (await env.lift(b)).json()["lift_request"]["id"]
    r = await env.decide(a, "alice", lift_request_id=lr_b)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert env.state(a) == env.state(b) == "lift_pending"
    assert env.store.get_lift_request(lr_b).approvals == ()
    assert env.engine.accepted.count(b) == env.engine.accepted.count(a) == 1  # intake only
    assert (await env.decide(b, "alice", lift_request_id=lr_b)).json()["outcome"] == (
        "approved")


async def test_refusals_carry_their_codes(make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with(BOARD))
    order_id = await f.env.verified_order()
    with pytest.raises(LiftError) as e:
        f.wf.decide(order_id, f.user("alice"), decision="approve")
    assert (e.value.status, e.value.code, e.value.message) == (
        409, "conflict", f"order {order_id} has no open lift request")
    with pytest.raises(LiftError) as e:
        f.wf.request(order_id, f.user("u-engineer"), reason="r", ttl_hours=72.5)
    assert (e.value.status, e.value.code, e.value.message) == (
        422, "invalid", "ttl_hours: at most 72 for harassment (policy time limit)")
    lr = f.wf.request(order_id, f.user("u-engineer"), reason="r", ttl_hours=72)
    assert lr.expires_at - lr.created_at == timedelta(hours=72)
    with pytest.raises(LiftError) as e:
        f.wf.request(order_id, f.user("u-engineer"), reason="again")
    assert (e.value.status, e.value.code, e.value.message) == (
        409, "conflict", f"order {order_id} is lift_pending; it cannot be lifted now")
    with pytest.raises(LiftError) as e:
        f.wf.decide(order_id, f.user("u-engineer"), decision="approve")
    assert (e.value.status, e.value.code, e.value.message) == (
        403, "forbidden", "only approvers decide on lift requests")
    with pytest.raises(LiftError) as e:
        f.wf.decide(order_id, f.user("dave"), decision="approve")
    assert (e.value.status, e.value.code) == (403, "forbidden")
    f.wf.decide(order_id, f.user("alice"), decision="approve")
    with pytest.raises(LiftError) as e:
        f.wf.decide(order_id, f.user("alice"), decision="approve")
    assert (e.value.status, e.value.code) == (409, "conflict")
    assert str(e.value) == e.value.message
    assert [ev for ev, _ in f.events()] == ["lift.requested"]


async def test_expiry_on_decision_notifies_once_and_is_a_409(
        make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with(BOARD))
    order_id = await f.env.verified_order()
    lr = f.wf.request(order_id, f.user("u-engineer"), reason="r", ttl_hours=1)
    f.env.clock.advance(3600)
    with pytest.raises(LiftError) as e:
        f.wf.decide(order_id, f.user("alice"), decision="approve", lift_request_id=lr.id)
    assert (e.value.status, e.value.code) == (409, "lift_expired")
    event, payload = f.events()[-1]
    assert event == "lift.expired" and payload["lift_request_id"] == lr.id
    assert payload["state"] == "expired" and payload["reason"] == "harassment"
    with pytest.raises(LiftError) as e:  # already expired: refused, not notified again
        f.wf.decide(order_id, f.user("bob"), decision="approve", lift_request_id=lr.id)
    assert (e.value.status, e.value.code) == (409, "lift_expired")
    assert [ev for ev, _ in f.events()].count("lift.expired") == 1


async def test_expire_lifts_counts_and_notifies_each(
        make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with(BOARD))
    orders = [await f.env.verified_order(r) for r in ("harassment", "fraud")]
    lrs = [f.wf.request(o, f.user("u-engineer"), reason="r", ttl_hours=1) for o in orders]
    n = len(f.events())
    assert await expire_lifts(f.env.store, f.notifier) == 0
    f.env.clock.advance(3600)
    assert await expire_lifts(f.env.store, f.notifier) == 2
    got = f.events()[n:]
    assert [e for e, _ in got] == ["lift.expired", "lift.expired"]
    assert {(p["lift_request_id"], p["reason"], p["state"]) for _, p in got} == {
        (lrs[0].id, "harassment", "expired"), (lrs[1].id, "fraud", "expired")}
    later = f.env.clock() + timedelta(hours=5)
    assert await expire_lifts(f.env.store, f.notifier, lambda: later) == 0
    o3 = await f.env.verified_order("fraud")
    f.wf.request(o3, f.user("u-engineer"), reason="r", ttl_hours=2)
    assert await expire_lifts(f.env.store, f.notifier) == 0  # the store's clock: not yet
    soon = f.env.clock() + timedelta(hours=1)
    assert await expire_lifts(f.env.store, f.notifier, lambda: soon) == 0
    later = f.env.clock() + timedelta(hours=2)
    assert await expire_lifts(f.env.store, f.notifier, lambda: later) == 1  # the given one


async def test_the_requester_on_the_board_is_refused_unless_the_policy_allows(
        make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with(BOARD))
    order_id = await f.env.verified_order()
    with pytest.raises(LiftError) as e:
        f.wf.request(order_id, f.user("alice"), reason="r")
    assert (e.value.status, e.value.code) == (422, "invalid")
    assert e.value.message == (
        "you are alice, a member of group hs-board who must decide on this harassment "
        "lift; the policy does not let the person who asks approve, and the board is "
        "never made smaller: let a non-member file the request, naming no board member")
    with pytest.raises(LiftError) as e:
        f.wf.request(order_id, f.user("dave"), reason="r", on_behalf_of="bob")
    assert e.value.message.startswith("on_behalf_of names bob, a member of group hs-board")
    assert f.env.store.lift_requests_for_order(order_id) == []


async def test_the_requester_may_decide_when_the_policy_says_so(
        make_env: Callable[[Policy], Any]) -> None:
    g = await flow(make_env, policy_with({**BOARD, "requester_may_approve": True}), ())
    g.env.add("erin", groups=("hs-board",))
    o2 = await g.env.verified_order()
    lr = g.wf.request(o2, g.user("erin"), reason="r")
    assert lr.electorate == ("erin",) and lr.requested_by == "erin"
    assert g.wf.decide(o2, g.user("erin"), decision="approve")[1] == "approved"


async def test_a_board_too_small_for_the_rule_is_a_conflict_naming_it(
        make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with({"group": "hs-board", "rule": "n_of_m", "n": 4}))
    order_id = await f.env.verified_order()
    with pytest.raises(LiftError) as e:
        f.wf.request(order_id, f.user("u-engineer"), reason="r")
    assert (e.value.status, e.value.code, e.value.message) == (
        409, "conflict", "harassment needs n_of_m consent (4) from group hs-board, which "
        "has 3 eligible approver(s); add approvers before requesting the lift")


async def test_an_empty_group_is_a_conflict(make_env: Callable[[Policy], Any]) -> None:
    g = await flow(make_env, policy_with({"group": "nobody", "rule": "any"}), ())
    o2 = await g.env.verified_order()
    with pytest.raises(LiftError) as e:
        g.wf.request(o2, g.user("u-engineer"), reason="r")
    assert e.value.message == ("harassment needs any consent from group nobody, which "
                               "has 0 eligible approver(s); add approvers before requesting "
                               "the lift")


async def test_a_board_exactly_big_enough(make_env: Callable[[Policy], Any]) -> None:
    h = await flow(make_env, policy_with({"group": "hs-board", "rule": "n_of_m", "n": 3}))
    o3 = await h.env.verified_order()
    assert h.wf.request(o3, h.user("u-engineer"), reason="r").needed == 3


async def test_no_group_means_every_approver(make_env: Callable[[Policy], Any]) -> None:
    k = await flow(make_env, policy_with({"group": None, "rule": "unanimous"}), ())
    o4 = await k.env.verified_order()
    assert k.wf.request(o4, k.user("u-engineer"), reason="r").electorate == (
        "dave", "u-approver")
    assert k.env.store.get_user("u-approver").role is Role.APPROVER


async def test_no_group_is_named_the_approver_role(make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with({"group": None, "rule": "n_of_m", "n": 5}), ())
    order_id = await f.env.verified_order("fraud")
    with pytest.raises(LiftError) as e:
        f.wf.request(order_id, f.user("u-engineer"), reason="r")
    assert e.value.message == ("fraud needs n_of_m consent (5) from the approver role, "
                               "which has 2 eligible approver(s); add approvers before "
                               "requesting the lift")
    with pytest.raises(LiftError) as e:
        f.wf.request(order_id, f.user("dave"), reason="r")
    assert e.value.message.startswith("you are dave, a member of the approver role who "
                                      "must decide on this fraud lift")


async def test_an_amendment_rides_on_the_request(make_env: Callable[[Policy], Any]) -> None:
    f = await flow(make_env, policy_with(BOARD))
    order_id = await f.env.verified_order()
    change = {"before": {"scope": "footprint"}, "after": {"scope": "node"},
              "changes": ["scope"]}
    lr = f.wf.request(order_id, f.user("u-engineer"), reason="narrower", amendment=change)
    assert lr.amendment == change
    assert f.env.store.get_lift_request(lr.id).amendment == change
    assert f.events()[-1][1]["amendment"] == change
