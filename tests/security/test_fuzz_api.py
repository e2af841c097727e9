"""Schemathesis against /openapi.json: every operation, each generated request sent
with a valid admin token, with an engineer token, with no token and with a wrong one
(and, for the webhook, correctly signed too, so the fuzzed body reaches validation).

Checks on every answer: no 5xx; no stack trace or Python internals in the body; every
error is the documented JSON shape; a refused request creates no order (orders only
appear with a 2xx from an intake endpoint, each one complete with its devices)."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry

from enforcer.api import create_app
from enforcer.api.signature import sign
from enforcer.api.testing import RecordingEngine
from enforcer.domain.model import Role
from enforcer.store import Store, upgrade
from tests.api.api_env import KEY_NEW, make_settings
from tests.reliability.harness import record

_WORK = Path(tempfile.mkdtemp(prefix="enforcer-fuzz-"))
_URL = f"sqlite:///{_WORK / 'fuzz.db'}"
upgrade(_URL)
STORE = Store.from_url(_URL)
APP = create_app(settings=make_settings(max_body_bytes=16384), store=STORE,
                 engine=RecordingEngine(), registry=CollectorRegistry())
TOKENS = {role.value: STORE.add_user(f"fuzz-{role.value}", role)[1] for role in Role}


def _post(path: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://enforcer") as c:
            return await c.post(path, content=raw, headers=headers)
    return asyncio.run(go())


schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

AUTH = {"admin": f"Bearer {TOKENS['admin']}", "engineer": f"Bearer {TOKENS['engineer']}",
        "none": None, "wrong": "Bearer enf_00000000_" + "A" * 43}
LEAKS = ("Traceback", 'File "/', "sqlalchemy", "pydantic_core", "site-packages",
         "enforcer/", "Exception", "0x7f")
COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    by_auth: dict[str, int] = {}
    by_path: dict[str, int] = {}
    for label, n in COUNTS.items():
        op, _, auth = label.rpartition(" [")
        by_auth[auth.rstrip("]")] = by_auth.get(auth.rstrip("]"), 0) + n
        path = op.split(" ", 1)[1]
        by_path[path] = by_path.get(path, 0) + n
    record("fuzz_schemathesis", {"requests_by_auth": by_auth, "requests_by_path": by_path,
                                 "operations": len({k.rpartition(" [")[0] for k in COUNTS}),
                                 "total": sum(COUNTS.values()),
                                 "orders_created": len(STORE.list_orders(limit=10_000))})


def _orders() -> int:
    return len(STORE.list_orders(limit=100_000))


def _check(label: str, method: str, path: str, status: int, text: str, before: int) -> None:
    COUNTS[label] = COUNTS.get(label, 0) + 1
    assert status < 500, (label, method, path, status, text[:500])
    for needle in LEAKS:
        assert needle not in text, (label, method, path, needle, text[:500])
    if status >= 400 and path not in ("/metrics",):
        body = json.loads(text)
        assert set(body) == {"error"} and body["error"]["code"], text[:300]
    created = _orders() - before
    if path in ("/v1/orders", "/v1/hooks/escalation") and method == "POST" and status == 202:
        assert created in (0, 1)
    else:
        assert created == 0, (label, method, path, status)


def _send(case: schemathesis.Case[Any], label: str, headers: dict[str, str]) -> None:
    before = _orders()
    response = case.call(headers=headers)
    _check(label, case.method, case.operation.path, response.status_code, response.text,
           before)


@schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_no_leaks_no_partial_orders(case: schemathesis.Case[Any]) -> None:
    base = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    for label, auth in AUTH.items():
        _send(case, f"{case.method} {case.operation.path} [{label}]",
              {**base, **({"Authorization": auth} if auth else {})})
    if case.operation.path == "/v1/hooks/escalation":
        # Signed with the real key: the fuzzed body goes on to JSON and field checks.
        raw = json.dumps(case.body).encode() if isinstance(case.body, dict | list) else (
            case.body if isinstance(case.body, bytes) else str(case.body).encode())
        wid, ts = f"msg_fuzz_{time.monotonic_ns()}", int(time.time())
        headers = {"webhook-id": wid, "webhook-timestamp": str(ts),
                   "webhook-signature": sign(KEY_NEW, wid, ts, raw),
                   "content-type": "application/json"}
        before = _orders()
        r = _post("/v1/hooks/escalation", raw, headers)
        _check("POST /v1/hooks/escalation [signed]", "POST", "/v1/hooks/escalation",
               r.status_code, r.text, before)
        if r.status_code == 202:
            order = STORE.get_order(r.json()["order_id"])
            # An account order (all_devices) may have no device linked yet.
            assert order.devices or order.all_devices, \
                "an accepted order always has its devices"


def test_oversized_and_malformed_bodies_are_refused_cleanly() -> None:
    before = _orders()
    token = {"Authorization": f"Bearer {TOKENS['engineer']}"}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("x" * 20000, {}), ("{", {}), ("[]", {}), ("\udcff", {}), ("null", {}),
        (json.dumps({"ticket": "t"} | {f"k{i}": i for i in range(500)}), {}),
        (json.dumps({"devices": [{"mac": "0011.2233.4455"}] * 100}), {}),
    ]
    for body, extra in cases:
        raw = body.encode("utf-8", "surrogatepass")
        r = _post("/v1/orders", raw, {**token, **extra})
        _check("POST /v1/orders [malformed]", "POST", "/v1/orders", r.status_code, r.text,
               before)
        assert r.status_code in (413, 422), (body[:40], r.status_code)
        wid, ts = "msg_malformed", int(time.time())
        r = _post("/v1/hooks/escalation", raw, {
            "webhook-id": wid, "webhook-timestamp": str(ts),
            "webhook-signature": sign(KEY_NEW, wid, ts, raw)})
        _check("POST /v1/hooks/escalation [malformed]", "POST", "/v1/hooks/escalation",
               r.status_code, r.text, before)
        assert r.status_code in (413, 422)

