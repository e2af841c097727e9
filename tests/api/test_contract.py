"""The API as a contract (in process, real SQLite store): ``/openapi.json`` is valid
OpenAPI 3.1 and declares, for every operation, its response model and each error status
with the one error body; docs/api.md's endpoint reference is generated from it; inputs
are bounded and control characters refused with a 422 naming the field, before the
store; edge inputs that once answered 500 answer 4xx."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from enforcer.api import docgen
from enforcer.api.signature import SignatureError, sign, verify
from tests.api.api_env import KEY_NEW, Env, order_body

pytestmark = pytest.mark.asyncio

ERROR_REF = "#/components/schemas/ErrorBody"


async def _doc(env: Env) -> dict[str, Any]:
    r = await env.client.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


async def test_openapi_is_valid_3_1_and_declares_every_answer(env: Env) -> None:
    doc = await _doc(env)
    validate(doc)  # raises on an invalid document
    assert doc["openapi"].startswith("3.1")
    ops = docgen.operations(doc)
    assert len(ops) >= 20
    for method, path, op in ops:
        codes = set(op["responses"])
        ok = [c for c in codes if c.startswith("2")]
        assert len(ok) == 1, (method, path, codes)
        content = op["responses"][ok[0]]["content"]
        schema = next(iter(content.values()))["schema"]
        assert schema, f"{method} {path}: success answer has an empty schema"
        for code in codes - set(ok):
            if path == "/readyz" and code == "503":
                continue  # not ready: the same body as ready
            ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            assert ref == ERROR_REF, (method, path, code)
        if path.startswith("/v1/") and "hooks" not in path:
            assert {"401", "403"} <= codes, (method, path)
        if op.get("requestBody") or op.get("parameters"):
            assert "422" in codes, (method, path)
        if op.get("requestBody"):
            assert "413" in codes, (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


async def test_docs_reference_is_generated_from_openapi(env: Env) -> None:
    doc = await _doc(env)
    text = docgen.DOC.read_text(encoding="utf-8")
    assert docgen.current_section(text) == docgen.reference(doc), \
        "docs/api.md is out of date: run python -m enforcer.api.docgen"
    declared = {(m, p) for m, p, _ in docgen.operations(doc)}
    # ... and every endpoint the prose names exists (paths written with {id} or {name}).
    shape = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for m, p in declared}
    named = set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/(?:v1/|healthz|readyz|metrics)"
                           r"[^`?\s]*)", text))
    assert named
    for method, path in named:
        if path.startswith("/ui"):
            continue
        assert (method, re.sub(r"\{[^}]+\}", "{}", path)) in shape, (method, path)
    assert "`/docs`" in text and "Swagger UI" in text


async def test_the_daemon_serves_the_document_docgen_renders(env: Env) -> None:
    assert docgen.reference(await _doc(env)) == docgen.reference(docgen.openapi_document())


@pytest.mark.parametrize("field", ["ticket", "account", "node", "requested_by"])
async def test_nul_and_control_characters_refused_in_identifiers(env: Env, field: str) -> None:
    for bad in ("A\u0000B", "A\u001bB", "A\u007fB", "A\u0085B", "A\nB"):
        r = await env.client.post("/v1/orders", json=order_body(**{field: bad}),
                                  headers=env.auth("engineer"))
        assert r.status_code == 422, (field, bad, r.text)
        assert "control characters" in r.json()["error"]["fields"][field]
        r = await env.hook(order_body(**{field: bad}), msg_id=f"m-{field}-{ord(bad[1])}")
        assert r.status_code == 422 and field in r.json()["error"]["fields"]
    assert env.store.list_orders(limit=10) == []


async def test_free_text_keeps_line_breaks_refuses_other_controls(env: Env) -> None:
    r = await env.client.post("/v1/orders", json=order_body(note="line 1\nline 2\ttab"),
                              headers=env.auth("engineer"))
    assert r.status_code == 202, r.text
    for bad in ("A\u0000B", "bell\u0007"):
        r = await env.client.post("/v1/orders", json=order_body(note=bad, ticket="T2"),
                                  headers=env.auth("engineer"))
        assert r.status_code == 422 and "note" in r.json()["error"]["fields"]
    r = await env.client.post("/v1/orders", json=order_body(
        evidence=[{"kind": "k", "ref": "r\u0000"}]), headers=env.auth("engineer"))
    assert r.status_code == 422 and "evidence.0.EvidenceIn.ref" in r.json()["error"]["fields"]
    order_id = env.store.list_orders(limit=1)[0].id
    r = await env.client.post(f"/v1/orders/{order_id}/lift", json={"reason": "a\u0000"},
                              headers=env.auth("engineer"))
    assert r.status_code == 422 and "reason" in r.json()["error"]["fields"]
    r = await env.client.post(f"/v1/orders/{order_id}/amendments",
                              json={"note": "x\u0000", "reason": "threat_of_violence"},
                              headers=env.auth("engineer"))
    assert r.status_code == 422 and "note" in r.json()["error"]["fields"]
    assert len(env.store.list_orders(limit=10)) == 1


async def test_parameters_bounded_and_clean(env: Env) -> None:
    auditor = env.auth("auditor")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"offset": 2**63}, "offset"), ({"offset": 10**7 + 1}, "offset"),
        ({"limit": 1001}, "limit"), ({"account": "a\u0000"}, "account"),
        ({"ticket": "x" * 201}, "ticket"), ({"mac": "\u0000"}, "mac")]
    for params, field in cases:
        r = await env.client.get("/v1/orders", params=params, headers=auditor)
        assert r.status_code == 422, (params, r.text)
        assert field in r.json()["error"]["fields"]
    for path, field in [("/v1/orders/ord_%00x", "order_id"), ("/v1/lifts/" + "x" * 65,
                                                                "lift_id"),
                        ("/v1/accounts/a%01b", "account"), ("/v1/where/%00", "mac"),
                        ("/v1/plan?order_id=%00", "order_id")]:
        r = await env.client.get(path, headers=env.auth("engineer"))
        assert r.status_code == 422, (path, r.text)
        assert field in r.json()["error"]["fields"], r.text
    r = await env.client.post("/v1/devices/a%00b/check", headers=env.auth("engineer"))
    assert r.status_code == 422 and "name" in r.json()["error"]["fields"]
    # ... and authentication still comes first.
    r = await env.client.get("/v1/orders/ord_%00x")
    assert r.status_code == 401


@pytest.mark.parametrize("depth", [33, 900, 990, 1000, 5000])
async def test_deep_json_is_refused_before_parsing(env: Env, depth: int) -> None:
    raw = b'{"a":' * depth + b"1" + b"}" * depth
    r = await env.client.post("/v1/orders", content=raw, headers={
        **env.auth("engineer"), "content-type": "application/json"})
    assert r.status_code == 422 and "nested deeper" in r.json()["error"]["fields"]["body"]
    r = await env.hook(raw, msg_id=f"deep-{depth}")
    assert r.status_code == 422 and "nested deeper" in r.json()["error"]["fields"]["body"]
    amend = b'{"amend": ' + b"[" * depth + b"]" * depth + b"}"
    r = await env.hook(amend, msg_id=f"deep-amend-{depth}")
    assert r.status_code == 422, r.text


async def test_nesting_inside_strings_does_not_count(env: Env) -> None:
    r = await env.client.post("/v1/orders", json=order_body(note="[" * 100 + '\\"{' * 50),
                              headers=env.auth("engineer"))
    assert r.status_code == 202, r.text


async def test_unicode_digit_timestamp_is_401_not_500(env: Env) -> None:
    raw = b"{}"
    for stamp in ("\u00b2", "\u0661\u0662", "\uff11", "1\u00b2", " 1", "-1", "1e9", ""):
        wid = "msg_digits"
        r = await env.client.post("/v1/hooks/escalation", content=raw, headers={
            b"webhook-id": wid.encode(), b"webhook-timestamp": stamp.encode(),
            b"webhook-signature": sign(KEY_NEW, wid, 0, raw).encode()})
        assert r.status_code == 401, (stamp, r.text)
    with pytest.raises(SignatureError) as e:
        from datetime import UTC, datetime
        verify(keys=[KEY_NEW], webhook_id="m", timestamp="\u00b2", signature="v1,x",
               body=raw, now=datetime.now(UTC), tolerance_s=300)
    assert e.value.code == "bad_timestamp"
