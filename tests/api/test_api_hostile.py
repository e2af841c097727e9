"""Hostile traffic at the API (issue: anonymous traffic starving intake, refusals
flooding the audit, malformed headers and bodies answered 500)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.api.api_env import Env, make_settings, order_body

pytestmark = pytest.mark.asyncio
SMALL_BUCKET = make_settings(intake_rate_per_s=0.001, intake_burst=3)


@pytest.mark.parametrize("settings", [SMALL_BUCKET])
async def test_unsigned_flood_does_not_starve_signed_or_engineer_orders(env: Env) -> None:
    """300 unsigned posts (100x the bucket) spend nothing: the escalation system and an
    engineer are still served."""
    raw = json.dumps(order_body()).encode()
    for i in range(300):
        headers = {"webhook-id": f"x{i}", "webhook-timestamp": "1", "webhook-signature":
                   "v1,AAAA", "content-type": "application/json"}
        r = await env.client.post("/v1/hooks/escalation", content=raw, headers=headers)
        assert r.status_code == 401
    assert (await env.hook(order_body(), msg_id="real-1")).status_code == 202
    r = await env.client.post("/v1/orders", json=order_body(ticket="ENG-1"),
                              headers=env.auth("engineer"))
    assert r.status_code == 202, r.text
    # Bad bearer tokens do not spend it either.
    for _ in range(50):
        r = await env.client.post("/v1/orders", json=order_body(),
                                  headers={"Authorization": "Bearer enf_00000000_" + "x" * 30})
        assert r.status_code == 401
    assert (await env.hook(order_body(), msg_id="real-2")).status_code == 202
    assert len(env.store.list_orders()) == 3
    assert env.sample("enforcer_unauthenticated_refused_total",
                      {"route": "/v1/hooks/escalation", "code": "bad_timestamp"}) is None
    assert env.sample("enforcer_unauthenticated_refused_total",
                      {"route": "/v1/hooks/escalation", "code": "stale_timestamp"}) == 300


async def test_anonymous_refusals_are_counted_and_summarised_not_each_audited(env: Env) -> None:
    for _ in range(300):
        r = await env.client.post("/v1/reconcile")
        assert r.status_code == 401
    refusals = env.refusals()
    assert len(refusals) == 1, refusals  # one entry per client per interval (60 s)
    assert env.sample("enforcer_unauthenticated_refused_total",
                      {"route": "/v1/reconcile", "code": "unauthorized"}) == 300
    # A known user's refusals are each audited (they are attributable).
    for _ in range(3):
        r = await env.client.post("/v1/reconcile", headers=env.auth("auditor"))
        assert r.status_code == 403
    assert len(env.refusals()) == 4


@pytest.mark.parametrize("settings", [make_settings(refusal_audit_interval_s=0)])
async def test_summary_counts_what_was_folded(env: Env) -> None:
    for _ in range(3):
        await env.client.post("/v1/reconcile")
    assert len(env.refusals()) == 3  # interval 0: every refusal is its own entry
    assert all("also_refused_since_last_entry" not in p for p in env.refusals())


async def test_long_webhook_id_is_stored_truncated(env: Env) -> None:
    raw = json.dumps(order_body()).encode()
    long_id = "A" * 12_000
    r = await env.client.post("/v1/hooks/escalation", content=raw, headers={
        "webhook-id": long_id, "webhook-timestamp": "1", "webhook-signature": "v1,x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_webhook_id"
    stored = env.refusals()[0]["webhook_id"]
    assert len(stored) < 300 and stored.startswith("A" * 200) and "12000" in stored
    assert long_id not in json.dumps(env.refusals())


@pytest.mark.parametrize("stamp", [
    "¹²³".encode("latin-1"),  # read back as "¹²³": str.isdigit() is True, int() fails
    "١٢٣٤٥٦٧٨٩٠".encode(), "１７００００００００".encode(), b"+1700000000", b"1_700_000_000",
    b"9" * 13])
async def test_non_ascii_digit_timestamp_is_401(env: Env, stamp: bytes) -> None:
    raw = json.dumps(order_body()).encode()
    r = await env.client.post("/v1/hooks/escalation", content=raw, headers={
        b"webhook-id": b"m1", b"webhook-timestamp": stamp, b"webhook-signature": b"v1,x"})
    assert r.status_code == 401 and r.json()["error"]["code"] in (
        "bad_timestamp", "missing_signature"), r.text


async def test_unicode_digit_timestamp_in_verify_is_refused() -> None:
    from datetime import UTC, datetime

    from enforcer.api.signature import SignatureError, verify
    with pytest.raises(SignatureError) as e:
        verify(keys=[b"k" * 32], webhook_id="m", timestamp="¹²³", signature="v1,x",
               body=b"{}", now=datetime.now(UTC), tolerance_s=300)
    assert e.value.code == "bad_timestamp"


@pytest.mark.parametrize("depth", [33, 1000, 30_000])
async def test_deeply_nested_json_is_422(env: Env, depth: int) -> None:
    raw = b"[" * depth + b"]" * depth
    r = await env.hook(raw)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json", r.text
    r = await env.client.post("/v1/orders", content=raw, headers=env.auth("engineer"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json", r.text
    nested: Any = order_body()
    nested["evidence"] = [{"kind": "x", "ref": "y", "offset": "z"}]
    assert (await env.hook(nested, msg_id=f"ok{depth}")).status_code == 202


async def test_duplicate_json_keys_are_422(env: Env) -> None:
    good = json.dumps(order_body())
    dup = good[:-1] + ', "account": "someone-else"}'
    r = await env.hook(dup.encode())
    assert r.status_code == 422 and "duplicate key" in r.text
    r = await env.client.post("/v1/orders", content=dup.encode(), headers=env.auth("engineer"))
    assert r.status_code == 422 and "duplicate key" in r.text
    nested = good.replace('"kind": "cable_modem"', '"kind": "cable_modem", "kind": "stb"')
    assert (await env.hook(nested.encode(), msg_id="n")).status_code == 422
    assert env.store.list_orders() == []


@pytest.mark.parametrize("settings", [make_settings(where_rate_per_s=0.001, where_burst=2)])
async def test_where_is_limited_per_user(env: Env) -> None:
    codes = [(await env.client.get("/v1/where/0011.2233.4455", headers=env.auth("engineer"))
              ).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    r = await env.client.get("/v1/where/0011.2233.4455", headers=env.auth("auditor"))
    assert r.status_code == 200  # another user has their own allowance
    calls = [c for c in env.engine.calls if c[0] == "where"]
    assert len(calls) == 3


async def test_client_disconnect_mid_body_is_not_an_error(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    app = env.client._transport.app  # type: ignore[attr-defined]
    raw, headers = env.signed(order_body())
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": raw[:10], "more_body": True},
                {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/hooks/escalation",
             "raw_path": b"/v1/hooks/escalation", "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
             + [(b"content-length", str(len(raw)).encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records
    assert any("disconnected" in r.getMessage() for r in caplog.records)
    assert env.store.list_orders() == []
