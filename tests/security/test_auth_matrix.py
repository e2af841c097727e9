"""Every endpoint x every role x every bad credential (missing, malformed, unknown,
wrong secret, expired, disabled). The table below is the expected policy, written out
independently of ``enforcer.auth.PERMISSIONS``; a route that is not in it fails the
completeness test, so a new endpoint cannot ship without its row here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from enforcer.api.testing import FAKE_FINGERPRINT
from enforcer.auth import PERMISSIONS, Permission
from enforcer.domain.model import Role
from tests.api.api_env import Env, order_body

EN, AU, AD, AP, ES = "engineer", "auditor", "admin", "approver", "escalation-system"
ALL = {EN, AU, AD, AP, ES}
MISSING = "ord_00000000000000000000000000"

#: (method, path template) -> roles allowed (None: no bearer token involved).
MATRIX: dict[tuple[str, str], set[str] | None] = {
    ("POST", "/v1/orders"): {EN, AD, ES},
    ("GET", "/v1/orders"): ALL,
    ("GET", "/v1/orders/{order_id}"): ALL,
    ("GET", "/v1/lifts/{lift_id}"): ALL,
    ("POST", "/v1/orders/{order_id}/lift"): {EN, AD},
    # Upgrades: whoever may file orders; a downgrade in it also needs lift.request.
    ("POST", "/v1/orders/{order_id}/amendments"): {EN, AD, ES},
    ("POST", "/v1/plans"): {EN, AD, ES},  # a dry run of an order body: whoever may file
    ("GET", "/v1/accounts/{account}"): ALL,
    ("POST", "/v1/orders/{order_id}/approvals"): {AP},
    ("GET", "/v1/devices"): {EN, AD, AU},
    ("GET", "/v1/cluster"): {EN, AD, AU},
    ("GET", "/v1/where/{mac}"): {EN, AD, AU},
    ("GET", "/v1/plan"): {EN, AD, AU},
    ("POST", "/v1/devices/{name}/check"): {EN, AD},
    ("POST", "/v1/devices/{name}/trust"): {EN, AD},
    ("POST", "/v1/reconcile"): {EN, AD},
    ("GET", "/v1/users"): {AD},
    ("POST", "/v1/users"): {AD},
    # Not bearer-authenticated: the webhook proves itself by signature; health and
    # metrics are for load balancers and Prometheus (no secrets, no order details).
    ("POST", "/v1/hooks/escalation"): None,
    ("POST", "/v1/hooks/provisioning"): None,
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/metrics"): None,
}
PARAMS = {"order_id": MISSING, "lift_id": "lift_0000", "mac": "00:11:22:33:44:55",
          "name": "cmts1", "account": "ACC-1"}
BEARER = [k for k, v in MATRIX.items() if v is not None]


def _url(path: str) -> str:
    return path.format(**PARAMS)


def _body(method: str, path: str) -> dict[str, Any] | None:
    if method != "POST":
        return None
    if path in ("/v1/orders", "/v1/plans"):
        return order_body()
    if path == "/v1/users":
        return {"name": "someone-new", "role": "auditor"}
    if path.endswith("/lift"):
        return {"reason": "test"}
    if path.endswith("/approvals"):
        return {"decision": "approve"}
    if path.endswith("/trust"):
        return {"expect": FAKE_FINGERPRINT}
    if path.endswith("/amendments"):
        return {"reason": "threat_of_violence"}
    return None


async def test_the_matrix_covers_every_route(env: Env) -> None:
    spec = (await env.client.get("/openapi.json")).json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == set(MATRIX), f"untested: {routes - set(MATRIX)}; " \
                                  f"gone: {set(MATRIX) - routes}"


def test_the_matrix_agrees_with_the_permission_table() -> None:
    allowed_sets = {frozenset(r.value for r in roles) for roles in PERMISSIONS.values()}
    for key, roles in MATRIX.items():
        if roles is not None:
            assert frozenset(roles) in allowed_sets, key
    assert {r.value for r in PERMISSIONS[Permission.DEVICE_TRUST]} == {EN, AD}


@pytest.mark.parametrize(("method", "path"), BEARER)
async def test_every_role(env: Env, method: str, path: str) -> None:
    allowed = MATRIX[(method, path)]
    assert allowed is not None
    for role in Role:
        r = await env.client.request(method, _url(path), json=_body(method, path),
                                     headers=env.auth(role.value))
        if role.value in allowed:
            assert r.status_code not in (401, 403), (role, r.status_code, r.text)
        else:
            assert r.status_code == 403, (role, r.status_code, r.text)
            err = r.json()["error"]
            assert err["code"] == "forbidden"
            assert role.value in err["message"]  # says who asked, and who may
            if method == "POST":
                last = env.refusals()[-1]
                assert (last["status"], last["path"]) == (403, _url(path))


def _bad_credentials(env: Env) -> dict[str, dict[str, str]]:
    real = env.tokens["admin"]
    prefix = "_".join(real.split("_")[:2])
    _, expired = env.store.add_user("expired-admin", Role.ADMIN,
                                    expires_at=env.clock() + timedelta(seconds=1))
    _, disabled = env.store.add_user("disabled-admin", Role.ADMIN)
    env.store.disable_user("disabled-admin", actor="test")
    env.clock.advance(2)
    return {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": "Basic " + real},
        "token without scheme": {"Authorization": real},
        "unknown": {"Authorization": "Bearer enf_deadbeef_" + "x" * 43},
        "right prefix, wrong secret": {"Authorization": f"Bearer {prefix}_{'y' * 43}"},
        "real token plus a byte": {"Authorization": f"Bearer {real}x"},
        "truncated": {"Authorization": f"Bearer {real[:-1]}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "disabled": {"Authorization": f"Bearer {disabled}"},
        "not a token": {"Authorization": "Bearer ' OR 1=1 --"},
    }


@pytest.mark.parametrize(("method", "path"), BEARER)
async def test_bad_credentials_are_401_and_refused_posts_are_audited(
        env: Env, method: str, path: str) -> None:
    before, n = len(env.store.list_orders()), len(env.refusals())
    bad = _bad_credentials(env)
    for label, headers in bad.items():
        r = await env.client.request(method, _url(path), json=_body(method, path),
                                     headers=headers)
        assert r.status_code == 401, (label, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthorized", label
        assert r.headers["www-authenticate"] == "Bearer"
    if method == "POST":
        # Anonymous refusals are counted one by one and audited once per client per
        # interval (a flood must not become a flood of audit entries).
        refusals = env.refusals()
        assert len(refusals) == n + 1
        entry = refusals[-1]
        assert entry["status"] == 401 and entry["code"] == "unauthorized"
        text = repr(entry)
        assert env.tokens["admin"] not in text and "Bearer" not in text
        route = path
        assert env.sample("enforcer_unauthenticated_refused_total",
                          {"route": route, "code": "unauthorized"}) == len(bad)
    assert len(env.store.list_orders()) == before  # nothing was created


async def test_a_bearer_token_does_not_replace_the_webhook_signature(env: Env) -> None:
    for role in Role:
        r = await env.client.post("/v1/hooks/escalation", json=order_body(),
                                  headers=env.auth(role.value))
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_signature"
    assert env.store.list_orders() == []


async def test_public_endpoints_need_no_token_and_reveal_nothing(env: Env) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        r = await env.client.get(path)
        assert r.status_code == 200, path
        for token in env.tokens.values():
            assert token not in r.text
        for secret in env.settings.secret_values():
            assert secret not in r.text


async def test_an_approval_counts_only_with_the_approvers_own_token(env: Env) -> None:
    # The approvals route is the only one for the approver role; others are 403 even
    # when they hold broader rights elsewhere (admin).
    r = await env.client.post(f"/v1/orders/{MISSING}/approvals", json={"decision": "approve"},
                              headers=env.auth("admin"))
    assert r.status_code == 403
    r = await env.client.post(f"/v1/orders/{MISSING}/approvals", json={"decision": "approve"},
                              headers=env.auth("approver"))
    assert r.status_code == 404
