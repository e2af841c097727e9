"""Amendments through the HTTP API and the signed webhook: upgrades at once,
downgrades as a lift of that part with the governing policy's consent, every one an
audit entry; bad amendments refused with nothing changed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from enforcer.amend import AmendWorkflow, Changes
from enforcer.api.signature import sign
from enforcer.domain.model import OrderState, Reason, Scope
from enforcer.lifts import LiftError, LiftWorkflow
from enforcer.policy import Policy, parse_policy
from tests.api.api_env import KEY_NEW
from tests.lifts.conftest import BOARD, LiftEnv

pytestmark = pytest.mark.asyncio
MODEM, OTHER = "00:11:22:33:44:55", "00:11:22:33:44:66"


async def _amend(env: LiftEnv, oid: str, body: dict[str, Any],
                 role: str = "engineer") -> httpx.Response:
    return await env.client.post(f"/v1/orders/{oid}/amendments", json=body,
                                 headers=env.auth(role))


def _amended(env: LiftEnv, oid: str) -> list[dict[str, Any]]:
    return [e.payload for e in env.store.audit_entries(order_id=oid,
                                                       action="order.amended")]


def _board_policy() -> Policy:
    reasons: dict[str, Any] = {r.value: {"default_scope": "node", "lift": {
        "rule": "n_of_m", "n": 2}} for r in Reason}
    for r in ("harassment", "threat_of_violence"):
        reasons[r] = {"default_scope": "footprint", "lift": BOARD}
    reasons["non_payment"] = {"default_scope": "node",
                              "lift": {"group": "billing", "rule": "any"}}
    return parse_policy({"reasons": reasons}, "test policy")


@pytest.fixture
async def board(make_env: Any) -> LiftEnv:
    """The story's policy shape: harassment and threats lift with the whole board
    (unanimous, footprint); fraud with two of any approvers; non_payment with one of
    billing."""
    e: LiftEnv = await make_env(_board_policy())
    for name in ("alice", "bob", "carol"):
        e.add(name, groups=("hs-board",))
    e.add("dave")
    e.add("erin")
    return e


async def test_upgrade_takes_effect_at_once_and_is_audited(board: LiftEnv) -> None:
    oid = await board.verified_order(reason="fraud")
    r = await _amend(board, oid, {"reason": "threat_of_violence", "scope": "footprint",
                                  "add_devices": [{"mac": OTHER, "kind": "cable_modem"}],
                                  "note": "he threatened the call centre", "ticket": "E-9"})
    assert r.status_code == 202, r.text
    doc = r.json()
    assert {c["field"] for c in doc["applied"]} == {"reason", "scope", "devices"}
    assert doc["pending"] is None and doc["state"] == "enforcing"
    order = board.store.get_order(oid)
    assert order.reason.value == "threat_of_violence" and order.scope.value == "footprint"
    assert {str(d.mac) for d in order.devices} == {MODEM, OTHER}
    [entry] = _amended(board, oid)
    assert entry["kind"] == "upgrade" and entry["ticket"] == "E-9"
    assert entry["note"] == "he threatened the call centre"
    assert [c[0] for c in entry["changes"]] == ["reason", "scope", "devices"]
    assert entry["before"]["reason"] == "fraud" and entry["after"]["reason"] == (
        "threat_of_violence")
    assert oid in board.engine.accepted  # the engine is woken to enforce it
    shown = (await board.client.get(f"/v1/orders/{oid}", headers=board.auth("auditor"))).json()
    origin = {d["mac"]: d["origin"]["source"] for d in shown["devices"]}
    assert origin == {MODEM: "order", OTHER: "amendment"}
    # From now on the lift needs the whole board.
    r = await board.lift(oid)
    assert r.json()["lift_request"]["electorate"] == ["alice", "bob", "carol"]
    assert (await board.decide(oid, "dave")).status_code == 403  # was eligible for fraud


async def test_downgrade_is_a_lift_of_that_part(board: LiftEnv) -> None:
    oid = await board.verified_order()  # harassment: the board, unanimous
    await _amend(board, oid, {"add_devices": [{"mac": OTHER, "kind": "cable_modem"}]})
    board.store.set_order_state(oid, OrderState.VERIFIED, actor="engine")
    r = await _amend(board, oid, {"remove_macs": [OTHER], "reason": "fraud",
                                  "note": "wrong box"})
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["applied"] == [] and doc["state"] == "lift_pending"
    assert doc["superseded_lift_requests"] == [] and doc["replayed"] is False
    pending = doc["pending"]
    assert pending["electorate"] == ["alice", "bob", "carol"] and pending["rule"] == (
        "unanimous")
    # Nothing changed yet.
    order = board.store.get_order(oid)
    assert order.reason.value == "harassment" and len(order.devices) == 2
    for who in ("alice", "bob"):
        assert (await board.decide(oid, who)).json()["outcome"] == "recorded"
    assert board.store.get_order(oid).reason.value == "harassment"
    assert (await board.decide(oid, "carol")).json()["outcome"] == "approved"
    order = board.store.get_order(oid)
    assert order.reason.value == "fraud" and [str(d.mac) for d in order.devices] == [MODEM]
    assert order.state.value == "enforcing"  # the engine releases the part now
    downgrade = [e for e in _amended(board, oid) if e["kind"] == "downgrade"]
    assert downgrade and downgrade[0]["lift_request_id"] == pending["id"]


async def test_downgrade_refused_leaves_everything(board: LiftEnv) -> None:
    oid = await board.verified_order()
    r = await _amend(board, oid, {"scope": "node", "node": "node-a"})
    assert r.status_code == 202 and r.json()["pending"] is not None
    # No note: the request names the parts; it carries the downgrade it would apply.
    request = board.store.get_lift_request(r.json()["pending"]["id"])
    assert request.reason == "amendment: scope"
    assert request.amendment is not None
    assert request.amendment["changes"] == [["scope", ["footprint", "node-a"],
                                             ["node", "node-a"]]]
    assert (await board.decide(oid, "alice", "refuse")).json()["outcome"] == "refused"
    r = await _amend(board, oid, {"scope": "node", "node": "node-a", "reason": "fraud"})
    request = board.store.get_lift_request(r.json()["pending"]["id"])
    assert request.reason == "amendment: reason, scope"
    assert (await board.decide(oid, "alice", "refuse")).json()["outcome"] == "refused"
    order = board.store.get_order(oid)
    assert order.scope.value == "footprint" and order.state.value == "verified"
    assert [e["kind"] for e in _amended(board, oid)] == []


async def test_roles_and_bad_amendments_change_nothing(board: LiftEnv) -> None:
    oid = await board.verified_order()
    before = board.store.get_order(oid)
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("escalation-system", {"scope": "node", "node": "node-a"}, 403),  # downgrade: no lift right
        ("auditor", {"reason": "threat_of_violence"}, 403),
        ("approver", {"reason": "threat_of_violence"}, 403),
        ("engineer", {}, 422),  # changes nothing
        ("engineer", {"remove_macs": [MODEM]}, 422),  # no device left
        ("engineer", {"remove_macs": [OTHER]}, 422),  # not on the order
        ("engineer", {"add_devices": [{"mac": MODEM, "kind": "cable_modem"}]}, 422),
        ("engineer", {"node": "nowhere"}, 422),
        ("engineer", {"remove_layers": ["cmts", "headend"]}, 422),
        ("engineer", {"reason": "theft"}, 422),
        ("engineer", {"bogus": 1}, 422),
    ]
    for role, body, status in cases:
        r = await _amend(board, oid, body, role)
        assert r.status_code == status, (role, body, r.text)
        assert r.json()["error"]["code"] == {403: "forbidden", 422: "invalid"}[status]
    r = await _amend(board, oid, {"scope": "node", "node": "node-a",
                                  "remove_layers": ["headend"]}, "escalation-system")
    assert r.json()["error"]["message"] == (
        "the amendment weakens the ban (scope, layers): that is a lift of that part and "
        "needs a role that may request lifts")
    r = await _amend(board, oid, {})
    assert r.json()["error"]["message"] == "the amendment changes nothing"
    r = await board.client.post("/v1/orders/ord_missing/amendments",
                                json={"reason": "fraud"}, headers=board.auth("engineer"))
    assert r.status_code == 404
    assert board.store.get_order(oid) == before
    assert _amended(board, oid) == []


async def test_upgrade_supersedes_an_open_lift_request(board: LiftEnv) -> None:
    oid = await board.verified_order(reason="fraud")
    r = await board.lift(oid)
    lift_id = r.json()["lift_request"]["id"]
    r = await _amend(board, oid, {"reason": "threat_of_violence"})
    assert r.json()["superseded_lift_requests"] == [lift_id]
    assert board.store.get_lift_request(lift_id).state == "superseded"
    assert (await board.decide(oid, "alice")).status_code == 409  # nothing open


async def test_webhook_amends_by_ticket_once(board: LiftEnv) -> None:
    oid = await board.verified_order(reason="fraud")
    ticket = board.store.get_order(oid).ticket
    body = {"amend": {"ticket": ticket, "reason": "threat_of_violence",
                      "note": "escalated: threat of violence"}}

    async def post(doc: dict[str, Any], msg_id: str) -> httpx.Response:
        raw = json.dumps(doc).encode()
        stamp = str(int(board.clock().timestamp()))
        return await board.client.post("/v1/hooks/escalation", content=raw, headers={
            "webhook-id": msg_id, "webhook-timestamp": stamp,
            "webhook-signature": sign(KEY_NEW, msg_id, stamp, raw),
            "content-type": "application/json"})

    r = await post(body, "amend-1")
    assert r.status_code == 202, r.text
    assert r.json()["order_id"] == oid and r.json()["replayed"] is False
    assert board.store.get_order(oid).reason.value == "threat_of_violence"
    r = await post(body, "amend-1")  # the same delivery again: nothing new
    assert r.status_code == 202 and r.json()["replayed"] is True
    assert r.json()["applied"] == []  # the upgrade was applied by the first delivery
    assert len(_amended(board, oid)) == 1
    r = await post({"amend": {**body["amend"], "scope": "footprint"}}, "amend-1")
    assert r.status_code == 409 and r.json()["error"] == {
        "code": "idempotency_conflict", "message": f"webhook-id 'amend-1' was already used "
        f"for order {oid} with a different body"}
    r = await post({"amend": {"ticket": "no-such-ticket", "reason": "fraud"}}, "amend-2")
    assert r.status_code == 404
    r = await post({"amend": {"reason": "fraud"}}, "amend-3")
    assert r.status_code == 422  # which order?
    # A downgrade from the escalation system waits for the board, like anyone's.
    r = await post({"amend": {"order_id": oid, "reason": "fraud"}}, "amend-4")
    assert r.status_code == 202 and r.json()["pending"]["electorate"] == [
        "alice", "bob", "carol"]
    assert board.store.get_order(oid).reason.value == "threat_of_violence"
    r = await post({"amend": {"order_id": oid, "reason": "fraud"}}, "amend-4")
    assert r.status_code == 202 and r.json()["replayed"] is True
    assert len(board.store.lift_requests_for_order(oid)) == 1


async def test_order_view_names_every_holder(board: LiftEnv) -> None:
    first = await board.verified_order(reason="harassment")
    second = await board.verified_order(reason="fraud")
    r = await board.client.get(f"/v1/orders/{second}", headers=board.auth("auditor"))
    doc = r.json()
    assert doc["linked_orders"] == [first]
    [cov] = doc["coverage"]
    assert cov["mac"] == MODEM
    assert {o["order_id"]: o["consent"]["rule"] for o in cov["orders"]} == {
        first: "unanimous", second: "n_of_m"}
    assert cov["governing"]["group"] == BOARD["group"]
    assert doc["breaches"] == {"count": 0, "recent": []}
    r = await board.lift(second)
    [stays] = r.json()["stays_blocked"]  # the lift's result says what stays, and for whom
    assert stays["mac"] == MODEM and [o["order_id"] for o in stays["orders"]] == [first]
    [accepted] = board.store.audit_entries(order_id=second, action="order.accepted")
    assert accepted.payload["linked_orders"] == [first]  # linked at intake, in the trail



async def test_an_order_no_longer_held_cannot_be_amended(board: LiftEnv) -> None:
    oid = await board.verified_order(reason="fraud")
    board.store.set_order_state(oid, OrderState.LIFTED, actor="engine")
    r = await _amend(board, oid, {"reason": "threat_of_violence"})
    assert r.status_code == 409 and r.json()["error"] == {
        "code": "conflict", "message": f"order {oid} is lifted; it cannot be amended"}
    assert _amended(board, oid) == []


class _LateStore:
    """The store as a second delivery of the same webhook id sees it: it looked for a
    receipt before the first delivery committed, so it found none."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def replayed(self, idempotency: tuple[str, str]) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _StaleOrderStore(_LateStore):
    """... and read the order before the first delivery changed it."""

    def __init__(self, store: Any, order: Any) -> None:
        super().__init__(store)
        self._order = order

    def get_order(self, order_id: str) -> Any:
        assert order_id == self._order.id
        return self._order


async def test_two_deliveries_of_one_webhook_id_racing(board: LiftEnv) -> None:
    """The receipt is checked again inside the amendment's transaction: a delivery with
    the same id and another body that raced past the first check is still refused."""
    oid = await board.verified_order(reason="fraud")
    policy = _board_policy()
    first = AmendWorkflow(store=board.store, policy=policy,
                          lifts=LiftWorkflow(store=board.store, policy=policy,
                                             notifier=board.notifier, wake=lambda _: None))
    late = AmendWorkflow(store=_LateStore(board.store), policy=first.policy, lifts=first.lifts)
    user = board.store.get_user("u-escalation-system")
    before = board.store.get_order(oid)
    first.amend(oid, user, Changes(reason=Reason.THREAT_OF_VIOLENCE), may_downgrade=False,
                idempotency=("w-race", "body-1"))
    with pytest.raises(LiftError) as err:
        late.amend(oid, user, Changes(scope=Scope.FOOTPRINT, reason=Reason.THREAT_OF_VIOLENCE,
                                      node=None), may_downgrade=False,
                   idempotency=("w-race", "body-2"))
    assert (err.value.status, err.value.code, err.value.message) == (
        409, "idempotency_conflict",
        f"webhook-id 'w-race' was already used for order {oid} with a different body")
    assert len(_amended(board, oid)) == 1
    # The same body raced past the first check, having read the order before the first
    # delivery committed: found inside the transaction, a replay that reports nothing
    # applied (the first delivery applied it).
    stale = _StaleOrderStore(board.store, before)
    again = AmendWorkflow(store=stale, policy=first.policy, lifts=first.lifts).amend(
        oid, user, Changes(reason=Reason.THREAT_OF_VIOLENCE), may_downgrade=False,
        idempotency=("w-race", "body-1"))
    assert again.replayed is True and again.applied == [] and again.pending is None
    assert len(_amended(board, oid)) == 1
