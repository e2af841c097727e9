"""Bearer-token endpoints: auth, orders, lifts and approvals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Role, TargetState
from enforcer.store import TargetSpec
from tests.api.api_env import Env, order_body

pytestmark = pytest.mark.asyncio


async def test_missing_and_wrong_tokens_are_401(env: Env) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer " + env.tokens["engineer"] + "x"}):
        r = await env.client.get("/v1/orders", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
    r = await env.client.post("/v1/orders", json=order_body())
    assert r.status_code == 401
    assert env.store.list_orders() == [] and env.refusals()[-1]["status"] == 401


async def test_expired_and_disabled_tokens_are_401(env: Env) -> None:
    _, token = env.store.add_user("temp", Role.ENGINEER,
                                  expires_at=env.clock() + timedelta(minutes=1))
    hdr = {"Authorization": f"Bearer {token}"}
    assert (await env.client.get("/v1/orders", headers=hdr)).status_code == 200
    env.clock.advance(61)
    assert (await env.client.get("/v1/orders", headers=hdr)).status_code == 401
    env.store.disable_user("u-engineer", actor="test")
    assert (await env.client.get("/v1/orders", headers=env.auth("engineer"))).status_code == 401


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/v1/orders", {"engineer", "admin", "escalation-system"}),
    ("GET", "/v1/orders", {"engineer", "auditor", "admin", "approver", "escalation-system"}),
    ("GET", "/v1/devices", {"engineer", "admin", "auditor"}),
    ("GET", "/v1/where/00:11:22:33:44:55", {"engineer", "admin", "auditor"}),
    ("POST", "/v1/devices/cmts1/check", {"engineer", "admin"}),
    ("GET", "/v1/users", {"admin"}),
])
async def test_permission_table(env: Env, method: str, path: str, allowed: set[str]) -> None:
    for role in Role:
        body = order_body(ticket=f"T-{role.value}") if path == "/v1/orders" else None
        r = await env.client.request(method, path, json=body, headers=env.auth(role.value))
        if role.value in allowed:
            assert r.status_code < 400, (role, r.text)
        else:
            assert r.status_code == 403, (role, r.text)
            assert r.json()["error"]["code"] == "forbidden"


async def test_wrong_role_cannot_create_and_is_audited(env: Env) -> None:
    r = await env.client.post("/v1/orders", json=order_body(), headers=env.auth("auditor"))
    assert r.status_code == 403
    assert env.store.list_orders() == []
    refusal = env.refusals()[-1]
    assert refusal["status"] == 403
    actor = env.store.audit_entries(action="request.refused")[-1].actor
    assert actor == "u-auditor"


async def test_create_list_show(env: Env) -> None:
    r = await env.client.post("/v1/orders", json=order_body(reason="harassment"),
                              headers=env.auth("engineer"))
    assert r.status_code == 202
    order_id = r.json()["order_id"]
    assert r.headers["location"] == f"/v1/orders/{order_id}"
    assert env.engine.accepted == [order_id]
    order = env.store.get_order(order_id)
    assert order.source == "api" and order.created_by == "u-engineer"
    env.clock.advance(1)
    other = (await env.client.post("/v1/orders", json=order_body(),
                                   headers=env.auth("admin"))).json()["order_id"]

    listing = (await env.client.get("/v1/orders", headers=env.auth("auditor"))).json()
    assert [o["id"] for o in listing["orders"]] == [other, order_id]
    only = (await env.client.get("/v1/orders", params={"reason": "harassment"},
                                 headers=env.auth("auditor"))).json()
    assert [o["id"] for o in only["orders"]] == [order_id]
    r = await env.client.get("/v1/orders", params={"state": "bogus"},
                             headers=env.auth("auditor"))
    assert r.status_code == 422 and "state" in r.json()["error"]["fields"]
    r = await env.client.get("/v1/orders", params={"limit": 0}, headers=env.auth("auditor"))
    assert r.status_code == 422

    [t] = env.store.replace_targets(order_id, [
        TargetSpec("cmts1", Mac("00:11:22:33:44:55"), DeviceKind.CABLE_MODEM, "cm_ctrl")])
    env.clock.advance(4)
    env.store.update_target(t.id, actor="engine", audit_action="target.verified",
                            state=TargetState.VERIFIED, verified_at=env.clock(),
                            verdict="blocked")
    env.store.set_order_state(order_id, OrderState.VERIFIED, actor="engine")
    doc = (await env.client.get(f"/v1/orders/{order_id}", headers=env.auth("approver"))).json()
    assert doc["state"] == "verified" and doc["scope"] == "footprint"
    assert doc["time_to_verified_s"] == 5.0
    assert doc["devices"] == [{"mac": "00:11:22:33:44:55", "kind": "cable_modem",
                               "ecm_mac": None, "origin": {
                                   "source": "order", "by": "u-engineer",
                                   "at": doc["created_at"]}}]
    assert doc["evidence"][0]["offset"] == "00:01:02"
    (target,) = doc["targets"]
    assert target["state"] == "verified" and target["verdict"] == "blocked"
    assert target["time_to_verified_s"] == 5.0 and target["last_error"] is None
    assert "next_attempt_at" in target


async def test_unknown_order_is_404(env: Env) -> None:
    r = await env.client.get("/v1/orders/ord_nope", headers=env.auth("engineer"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_idempotency_key(env: Env) -> None:
    hdr = {**env.auth("engineer"), "Idempotency-Key": "k1"}
    a = await env.client.post("/v1/orders", json=order_body(), headers=hdr)
    b = await env.client.post("/v1/orders", json=order_body(), headers=hdr)
    assert a.json()["order_id"] == b.json()["order_id"] and b.json()["created"] is False
    c = await env.client.post("/v1/orders", json=order_body(ticket="other"), headers=hdr)
    assert c.status_code == 409
    assert len(env.store.list_orders()) == 1


async def test_api_body_validation(env: Env) -> None:
    r = await env.client.post("/v1/orders", json=order_body(node="nowhere"),
                              headers=env.auth("engineer"))
    assert r.status_code == 422 and "node" in r.json()["error"]["fields"]
    assert env.store.list_orders() == [] and env.refusals()[-1]["code"] == "invalid"


async def _order(env: Env) -> str:
    r = await env.client.post("/v1/orders", json=order_body(), headers=env.auth("engineer"))
    order_id: str = r.json()["order_id"]
    return order_id


async def test_lift_and_approvals_are_recorded_but_lift_nothing(env: Env) -> None:
    # the default policy needs 2 members of lift-approvers
    env.store.add_user("u-approver-2", Role.APPROVER, groups=("lift-approvers",))
    order_id = await _order(env)
    r = await env.client.post(f"/v1/orders/{order_id}/approvals", json={},
                              headers=env.auth("approver"))
    assert r.status_code == 409  # nothing to approve yet
    r = await env.client.post(f"/v1/orders/{order_id}/lift", json={"reason": "paid"},
                              headers=env.auth("approver"))
    assert r.status_code == 403
    r = await env.client.post(f"/v1/orders/{order_id}/lift", json={"reason": "paid"},
                              headers=env.auth("engineer"))
    assert r.status_code == 202 and r.json()["state"] == "lift_pending"
    lift_id = r.json()["lift_request"]["id"]
    assert r.headers["location"] == f"/v1/lifts/{lift_id}"
    r = await env.client.post(f"/v1/orders/{order_id}/approvals",
                              json={"decision": "approve"}, headers=env.auth("engineer"))
    assert r.status_code == 403  # engineers cannot approve
    r = await env.client.post(f"/v1/orders/{order_id}/approvals",
                              json={"decision": "approve", "note": "ok"},
                              headers=env.auth("approver"))
    assert r.status_code == 201
    assert r.json()["lift_request"]["approvals"][0]["approver"] == "u-approver"
    r = await env.client.post(f"/v1/orders/{order_id}/approvals",
                              json={"lift_request_id": lift_id}, headers=env.auth("approver"))
    assert r.status_code == 409  # one decision per approver
    r = await env.client.post(f"/v1/orders/{order_id}/approvals",
                              json={"decision": "perhaps"}, headers=env.auth("approver"))
    assert r.status_code == 422 and "decision" in r.json()["error"]["fields"]
    assert env.store.get_order(order_id).state is OrderState.LIFT_PENDING  # still banned
    doc = (await env.client.get(f"/v1/lifts/{lift_id}", headers=env.auth("auditor"))).json()
    assert doc["order_id"] == order_id and len(doc["approvals"]) == 1
    r = await env.client.post(f"/v1/orders/{order_id}/lift", json={"reason": "again"},
                              headers=env.auth("engineer"))
    assert r.status_code == 409


async def test_lift_errors(env: Env) -> None:
    r = await env.client.post("/v1/orders/ord_nope/lift", json={"reason": "x"},
                              headers=env.auth("engineer"))
    assert r.status_code == 404
    order_id = await _order(env)
    r = await env.client.post(f"/v1/orders/{order_id}/lift", json={},
                              headers=env.auth("engineer"))
    assert r.status_code == 422 and "reason" in r.json()["error"]["fields"]
    r = await env.client.post(f"/v1/orders/{order_id}/approvals",
                              json={"lift_request_id": "lift_nope"},
                              headers=env.auth("approver"))
    assert r.status_code == 404
    r = await env.client.get("/v1/lifts/lift_nope", headers=env.auth("auditor"))
    assert r.status_code == 404
