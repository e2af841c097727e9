"""The signed escalation webhook: signatures, replay, validation, limits, auditing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from enforcer.api.signature import sign
from tests.api.api_env import KEY_OLD, Env, make_settings, order_body

pytestmark = pytest.mark.asyncio


async def test_good_request_is_committed_then_acknowledged(env: Env) -> None:
    r = await env.hook(order_body())
    assert r.status_code == 202
    doc = r.json()
    assert doc["state"] == "accepted" and doc["created"] is True
    assert r.headers["location"] == f"/v1/orders/{doc['order_id']}"
    order = env.store.get_order(doc["order_id"])  # committed before the 202
    assert order.source == "webhook" and order.created_by == "escalation-system"
    assert str(order.devices[0].mac) == "00:11:22:33:44:55"
    assert order.scope.value == "node"  # default for fraud
    assert [e.kind for e in order.evidence] == ["call_recording", "reference"]
    assert env.engine.accepted == [doc["order_id"]]
    assert env.sample("enforcer_orders_accepted_total",
                      {"source": "webhook", "reason": "fraud"}) == 1


@pytest.mark.parametrize(("reason", "scope"), [
    ("threat_of_violence", "footprint"), ("harassment", "footprint"), ("non_payment", "node")])
async def test_default_scope_by_reason(env: Env, reason: str, scope: str) -> None:
    r = await env.hook(order_body(reason=reason), msg_id=f"m-{reason}")
    assert env.store.get_order(r.json()["order_id"]).scope.value == scope


async def test_explicit_scope_wins(env: Env) -> None:
    r = await env.hook(order_body(scope="cmts"))
    assert env.store.get_order(r.json()["order_id"]).scope.value == "cmts"


async def test_key_rotation_accepts_old_key_and_any_listed_signature(env: Env) -> None:
    assert (await env.hook(order_body(), msg_id="a", key=KEY_OLD)).status_code == 202
    raw, headers = env.signed(order_body(ticket="T2"), msg_id="b")
    headers["webhook-signature"] = "v1,Zm9v " + headers["webhook-signature"] + " v2,abc"
    r = await env.client.post("/v1/hooks/escalation", content=raw, headers=headers)
    assert r.status_code == 202


async def _refused(env: Env, r_status: int, code: str, n_refusals: int = 1) -> None:
    assert env.store.list_orders() == []
    assert env.engine.accepted == []
    refusals = env.refusals()
    assert len(refusals) == n_refusals
    assert refusals[-1]["code"] == code and refusals[-1]["status"] == r_status


async def test_bad_signature(env: Env) -> None:
    r = await env.hook(order_body(), key=b"x" * 32)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    await _refused(env, 401, "bad_signature")
    payload = env.refusals()[0]
    assert "acct-9" not in json.dumps(payload)  # the body is never recorded
    assert payload["webhook_id"] == "msg_1"


async def test_signature_over_a_different_body(env: Env) -> None:
    raw, headers = env.signed(order_body())
    tampered = raw.replace(b"acct-9", b"acct-8")
    r = await env.client.post("/v1/hooks/escalation", content=tampered, headers=headers)
    assert r.status_code == 401
    await _refused(env, 401, "bad_signature")


@pytest.mark.parametrize("drop", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_missing_signature_headers(env: Env, drop: str) -> None:
    raw, headers = env.signed(order_body())
    del headers[drop]
    r = await env.client.post("/v1/hooks/escalation", content=raw, headers=headers)
    assert r.status_code == 401
    await _refused(env, 401, "missing_signature")


@pytest.mark.parametrize("offset", [-301, 301, -3600])
async def test_stale_or_future_timestamp(env: Env, offset: int) -> None:
    ts = int(env.clock().timestamp()) + offset
    r = await env.hook(order_body(), ts=ts)
    assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp"
    await _refused(env, 401, "stale_timestamp")


async def test_timestamp_within_tolerance(env: Env) -> None:
    r = await env.hook(order_body(), ts=int(env.clock().timestamp()) - 299)
    assert r.status_code == 202


async def test_non_numeric_timestamp(env: Env) -> None:
    raw, headers = env.signed(order_body())
    headers["webhook-timestamp"] = "yesterday"
    r = await env.client.post("/v1/hooks/escalation", content=raw, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_timestamp"


async def test_replay_same_body_returns_same_order(env: Env) -> None:
    first = await env.hook(order_body())
    env.clock.advance(10)
    again = await env.hook(order_body())
    assert again.status_code == 202
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.json()["created"] is False
    assert len(env.store.list_orders()) == 1
    assert env.sample("enforcer_orders_accepted_total",
                      {"source": "webhook", "reason": "fraud"}) == 1


async def test_replay_with_different_body_is_409(env: Env) -> None:
    first = await env.hook(order_body())
    r = await env.hook(order_body(account="someone-else"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict"
    assert [o.id for o in env.store.list_orders()] == [first.json()["order_id"]]
    assert env.refusals()[-1]["status"] == 409


async def test_malformed_json(env: Env) -> None:
    r = await env.hook(b'{"ticket": "T", ')
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
    await _refused(env, 422, "invalid_json")


@pytest.mark.parametrize(("body", "field", "text"), [
    (order_body(reason="grudge"), "reason", "threat_of_violence"),
    (order_body(devices=[{"mac": "00:11:22:33:44", "kind": "cable_modem"}]),
     "devices.0.mac", "not a MAC address"),
    (order_body(devices=[{"mac": "ff:ff:ff:ff:ff:ff", "kind": "cable_modem"}]),
     "devices.0.mac", "broadcast"),
    (order_body(devices=[{"mac": "01:00:5e:00:00:01", "kind": "cable_modem"}]),
     "devices.0.mac", "multicast"),
    (order_body(devices=[{"mac": "00:00:00:00:00:00", "kind": "cable_modem"}]),
     "devices.0.mac", "all-zero"),
    (order_body(devices=[{"mac": "00:11:22:33:44:55", "kind": "toaster"}]),
     "devices.0.kind", "cable_modem"),
    (order_body(devices=[]), "devices", "at least 1"),
    (order_body(node="node-zz"), "node", "unknown node 'node-zz'"),
    (order_body(scope="planet"), "scope", "footprint"),
    (order_body(colour="red"), "colour", "unknown field"),
    (order_body(ticket=""), "ticket", "at least 1"),
    (order_body(devices=[{"mac": "00:11:22:33:44:55", "kind": "cable_modem"},
                         {"mac": "0011.2233.4455", "kind": "set_top"}]),
     "body", "more than once"),
    (order_body(devices=[{"mac": "00:11:22:33:44:55", "kind": "cable_modem",
                          "ecm_mac": "00:11:22:33:44:56"}]), "devices.0", "set_top"),
])
async def test_invalid_bodies_name_each_field(env: Env, body: dict[str, object], field: str,
                                              text: str) -> None:
    r = await env.hook(body)
    assert r.status_code == 422, r.text
    fields = r.json()["error"]["fields"]
    assert text in fields[field]
    await _refused(env, 422, "invalid")
    assert env.refusals()[0]["fields"] == fields


async def test_several_bad_fields_are_all_named(env: Env) -> None:
    body = order_body(reason="x", account=None)
    body["devices"] = [{"mac": "zz", "kind": "cable_modem"}]
    r = await env.hook(body)
    assert set(r.json()["error"]["fields"]) == {"reason", "account", "devices.0.mac"}


async def test_set_top_with_ecm(env: Env) -> None:
    r = await env.hook(order_body(devices=[
        {"mac": "00:11:22:33:44:66", "kind": "set_top", "ecm_mac": "00-11-22-33-44-77"}]))
    assert r.status_code == 202
    dev = env.store.get_order(r.json()["order_id"]).devices[0]
    assert str(dev.ecm_mac) == "00:11:22:33:44:77"


@pytest.mark.parametrize("settings", [make_settings(max_body_bytes=300)])
async def test_body_too_large(env: Env) -> None:
    r = await env.hook(order_body(note="x" * 400))
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    await _refused(env, 413, "body_too_large")


@pytest.mark.parametrize("settings", [make_settings(max_body_bytes=300)])
async def test_body_too_large_without_content_length(env: Env) -> None:
    raw, headers = env.signed(order_body(note="x" * 400))

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 100):
            yield raw[i:i + 100]

    r = await env.client.post("/v1/hooks/escalation", content=chunks(), headers=headers)
    assert r.status_code == 413


@pytest.mark.parametrize("settings", [make_settings(intake_rate_per_s=0.01, intake_burst=2)])
async def test_rate_limit(env: Env) -> None:
    assert (await env.hook(order_body(), msg_id="a")).status_code == 202
    assert (await env.hook(order_body(), msg_id="b")).status_code == 202
    statuses = []
    for i in range(3):
        r = await env.hook(order_body(), msg_id=f"c{i}")
        statuses.append(r.status_code)
    assert statuses == [429, 429, 429]
    assert int(r.headers["retry-after"]) >= 1
    assert len(env.store.list_orders()) == 2
    refusals = env.refusals()
    assert refusals and refusals[0]["code"] == "rate_limited"  # coalesced, but audited
    assert env.sample("enforcer_intake_refused_total", {"reason": "rate_limited"}) == 3


async def test_signature_helper_matches_the_standard_example() -> None:
    # Example from the Standard Webhooks reference implementation.
    import base64
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    sig = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
