"""Engine wrappers, users, health, metrics, OpenAPI and error handling."""

from __future__ import annotations

import pytest

from enforcer.domain.model import Role
from enforcer.engine.contract import DeviceRow, PlanRow, Sighting
from tests.api.api_env import Env, order_body

pytestmark = pytest.mark.asyncio


async def test_devices_and_check(env: Env) -> None:
    r = await env.client.get("/v1/devices", headers=env.auth("auditor"))
    assert [d["name"] for d in r.json()["devices"]] == ["cmts1", "cmts2"]
    r = await env.client.post("/v1/devices/cmts1/check", headers=env.auth("engineer"))
    assert r.status_code == 200 and r.json() == {"name": "cmts1", "reachable": True,
                                                 "error": None, "platform": "lab"}
    r = await env.client.post("/v1/devices/nope/check", headers=env.auth("engineer"))
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    assert ("check_device", "nope") in env.engine.calls


async def test_trust_needs_the_expected_fingerprint(env: Env) -> None:
    r = await env.client.post("/v1/devices/cmts1/trust", headers=env.auth("engineer"))
    assert r.status_code == 422 and "expect" in r.json()["error"]["fields"], r.text
    r = await env.client.post("/v1/devices/cmts1/trust", json={"expect": "md5:aa"},
                              headers=env.auth("engineer"))
    assert r.status_code == 422 and "expect" in r.json()["error"]["fields"], r.text
    assert not [c for c in env.engine.calls if c[0] == "trust_device"]
    other = "SHA256:" + "B" * 43
    r = await env.client.post("/v1/devices/cmts1/trust", json={"expect": other},
                              headers=env.auth("engineer"))
    assert r.status_code == 409 and "not the expected" in r.json()["error"]["message"]


async def test_where(env: Env) -> None:
    seen = Sighting(device="cmts1", mac="00:11:22:33:44:55", verdict="forwarding",
                    state="online", error=None)
    env.engine.sightings["00:11:22:33:44:55"] = [seen]
    r = await env.client.get("/v1/where/0011.2233.4455", headers=env.auth("engineer"))
    assert r.json() == {"mac": "00:11:22:33:44:55", "sightings": [dict(seen)], "orders": []}
    r = await env.client.post("/v1/orders", json=order_body(), headers=env.auth("engineer"))
    order_id = r.json()["order_id"]
    r = await env.client.get("/v1/where/0011.2233.4455", headers=env.auth("engineer"))
    [held] = r.json()["orders"]
    assert held["order_id"] == order_id and held["state"] == "accepted"
    assert set(held["consent"]) == {"group", "rule", "n"}
    r = await env.client.get("/v1/where/ff:ff:ff:ff:ff:ff", headers=env.auth("engineer"))
    assert r.status_code == 422 and "broadcast" in r.json()["error"]["fields"]["mac"]


async def test_plan(env: Env) -> None:
    env.engine.plans[None] = [PlanRow(order_id="ord_a", device="cmts1",
                                      mac="00:11:22:33:44:55", kind="cable_modem",
                                      mechanism="cm-ctrl", current_state="pending",
                                      action="apply")]
    r = await env.client.get("/v1/plan", headers=env.auth("auditor"))
    assert r.json() == {"order_id": None, "targets": env.engine.plans[None]}
    r = await env.client.get("/v1/plan", params={"order_id": "ord_x"},
                             headers=env.auth("auditor"))
    assert r.status_code == 404


async def test_users_admin(env: Env) -> None:
    r = await env.client.post("/v1/users", json={"name": "dana", "role": "engineer",
                                                 "expires_in_days": 30},
                              headers=env.auth("admin"))
    assert r.status_code == 201
    token = r.json()["token"]
    assert env.store.authenticate(token) is not None
    assert r.json()["user"]["expires_at"] is not None
    names = [u["name"] for u in (await env.client.get(
        "/v1/users", headers=env.auth("admin"))).json()["users"]]
    assert "dana" in names and all("token" not in u for u in names)
    r = await env.client.post("/v1/users", json={"name": "dana", "role": "auditor"},
                              headers=env.auth("admin"))
    assert r.status_code == 409
    r = await env.client.post("/v1/users", json={"name": "eve", "role": "god"},
                              headers=env.auth("admin"))
    assert r.status_code == 422 and "role" in r.json()["error"]["fields"]


async def test_admin_cannot_create_approvers_or_groups(env: Env) -> None:
    """Separation of duties: the admin token alone cannot mint the approvals an ordinary
    lift needs. Approvers and group membership are made only on the daemon's host."""
    before = env.store.eligible_approvers(None)
    for body in ({"name": "sock1", "role": "approver"},
                 {"name": "sock2", "role": "approver", "expires_in_days": 1}):
        r = await env.client.post("/v1/users", json=body, headers=env.auth("admin"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "local_only", r.text
    r = await env.client.post("/v1/users", json={"name": "sock3", "role": "engineer",
                                                 "groups": ["hs-board"]},
                              headers=env.auth("admin"))
    assert r.status_code == 422 and "groups" in r.json()["error"]["fields"], r.text
    r = await env.client.patch("/v1/users/u-approver", json={"groups": ["hs-board"]},
                               headers=env.auth("admin"))
    assert r.status_code in (404, 405)
    assert env.store.eligible_approvers(None) == before
    assert all(u.name not in ("sock1", "sock2", "sock3") for u in env.store.list_users())


async def test_reserved_actor_names_refused(env: Env) -> None:
    for name in ("engine", "Reconciler", "watcher", "system", "escalation-system", "cli",
                 "anonymous"):
        r = await env.client.post("/v1/users", json={"name": name, "role": "engineer"},
                                  headers=env.auth("admin"))
        assert r.status_code == 422 and "reserved" in r.text, (name, r.text)
        with pytest.raises(ValueError, match="reserved"):
            env.store.add_user(name, Role.ENGINEER)


async def test_health_and_readiness(env: Env) -> None:
    assert (await env.client.get("/healthz")).json() == {"status": "ok"}
    r = await env.client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    env.engine.is_ready = (False, "inventory not loaded")
    r = await env.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "ok", "engine": "inventory not loaded"}


async def test_readiness_fails_without_database(env: Env) -> None:
    env.store.ping = lambda: False  # type: ignore[method-assign]
    r = await env.client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["database"] == "unreachable"


async def test_metrics(env: Env) -> None:
    await env.client.post("/v1/orders", json=order_body(), headers=env.auth("engineer"))
    await env.client.post("/v1/orders", json=order_body(node="x"), headers=env.auth("engineer"))
    r = await env.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'enforcer_orders{reason="fraud",state="accepted"} 1.0' in text
    assert 'enforcer_orders_accepted_total{reason="fraud",source="api"} 1.0' in text
    assert 'enforcer_intake_refused_total{reason="invalid"} 1.0' in text
    assert env.sample("enforcer_http_requests_total",
                      {"route": "/v1/orders", "method": "POST", "code": "202"}) == 1
    for name in ("enforcer_pushes_total", "enforcer_push_duration_seconds",
                 "enforcer_time_to_verified_seconds", "enforcer_device_up",
                 "enforcer_snmp_requests_total", "enforcer_snmp_retries_total",
                 "enforcer_snmp_errors_total", "enforcer_ssh_sessions_total",
                 "enforcer_banned_mac_sightings_total", "enforcer_targets",
                 "enforcer_audit_chain_ok"):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


async def test_openapi(env: Env) -> None:
    doc = (await env.client.get("/openapi.json")).json()
    for path in ("/v1/hooks/escalation", "/v1/orders", "/v1/orders/{order_id}",
                 "/v1/orders/{order_id}/lift", "/v1/orders/{order_id}/approvals",
                 "/v1/devices", "/v1/where/{mac}", "/v1/plan", "/healthz", "/readyz"):
        assert path in doc["paths"], path
    body = doc["paths"]["/v1/hooks/escalation"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/OrderRequest")
    assert "DeviceIn" in doc["components"]["schemas"]


async def test_unknown_route_and_method(env: Env) -> None:
    r = await env.client.get("/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await env.client.delete("/v1/orders")
    assert r.status_code == 405 and "error" in r.json()


async def test_unexpected_error_is_a_generic_500(env: Env,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> list[DeviceRow]:
        raise RuntimeError("secret detail")

    env.engine.devices = boom  # type: ignore[method-assign]
    r = await env.client.get("/v1/devices", headers=env.auth("engineer"))
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal",
                                  "message": "internal error; see the daemon's log"}}
    assert "secret detail" not in r.text
    assert any("unhandled RuntimeError" in rec.getMessage() for rec in caplog.records)
