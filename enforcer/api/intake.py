"""Order intake: the signed escalation webhook and ``POST /v1/orders``. Both validate the
body, check the node against the inventory, commit the order (idempotently), then
wake the engine and answer 202. A refused request creates no order."""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from enforcer.api import jsonbody
from enforcer.api import responses as r
from enforcer.api.context import ApiContext, ctx_of, read_body, require
from enforcer.api.errors import ApiError, invalid
from enforcer.api.models import OrderRequest
from enforcer.api.ratelimit import retry_after
from enforcer.api.signature import SignatureError, verify
from enforcer.auth import Permission
from enforcer.logging import order_context
from enforcer.store import IdempotencyConflict, UserRecord

log = logging.getLogger(__name__)
router = APIRouter()


def body_doc(model: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model}"}}}}}


def _rate_limit(ctx: ApiContext) -> None:
    wait = ctx.bucket.take()
    if wait > 0:
        raise ApiError(429, "rate_limited", "too many order requests; retry later",
                       headers={"Retry-After": retry_after(wait)})


def _parse(ctx: ApiContext, raw: bytes) -> OrderRequest:
    doc = jsonbody.loads(raw)
    try:
        req = OrderRequest.model_validate(doc)
    except ValidationError as e:
        raise invalid(e, "the order request is invalid") from None
    if req.node is not None:
        known = ctx.engine.node_names()
        if req.node not in known:
            raise invalid([{"loc": ("node",), "msg": f"unknown node {req.node!r}"}],
                          "the order request is invalid")
    return req


async def _accept(ctx: ApiContext, req: OrderRequest, *, actor: str, source: str,
                  idempotency: tuple[str, str] | None) -> JSONResponse:
    try:
        order, created = await ctx.db(ctx.store.create_order,
                                      req.to_spec(ctx.policy.default_scope), actor=actor,
                                      source=source, idempotency=idempotency)
    except IdempotencyConflict as e:
        raise ApiError(409, "idempotency_conflict", str(e)) from None
    with order_context(order.id):
        log.info("order %s from %s (%s, %s)", "accepted" if created else "replayed", source,
                 order.reason.value, order.scope.value,
                 extra={"event": "order.accepted" if created else "order.replayed",
                        "source": source, "reason": order.reason.value, "actor": actor})
        if created:
            ctx.metrics.orders_accepted.labels(source=source, reason=order.reason.value).inc()
            ctx.notifier.notify("ban.imposed", {
                "order_id": order.id, "reason": order.reason.value, "ticket": order.ticket,
                "account": order.account, "scope": order.scope.value, "source": source,
                "devices": [{"mac": str(d.mac), "kind": d.kind.value} for d in order.devices]})
        ctx.engine.order_accepted(order.id)  # also on a replay: waking is harmless
    return JSONResponse(
        {"order_id": order.id, "state": order.state.value, "created": created},
        status_code=202, headers={"Location": f"/v1/orders/{order.id}"})


async def signed_body(request: Request, *, keys: list[bytes], tolerance_s: int, actor: str,
                      headers: tuple[str | None, str | None, str | None]
                      ) -> tuple[bytes, tuple[str, str]]:
    """The raw body of a Standard Webhooks request, proven by its signature under one of
    ``keys`` (401 otherwise), and its idempotency key (webhook id, body digest). From
    here on the request's actor is ``actor``."""
    ctx = ctx_of(request)
    raw = await read_body(request, ctx.settings.api.max_body_bytes)
    webhook_id, timestamp, signature = headers
    try:
        verify(keys=keys, webhook_id=webhook_id, timestamp=timestamp, signature=signature,
               body=raw, now=ctx.clock(), tolerance_s=tolerance_s)
    except SignatureError as e:
        raise ApiError(401, e.code, str(e)) from None
    assert webhook_id is not None
    request.state.actor = actor  # proven by the signature from here on
    return raw, (webhook_id, hashlib.sha256(raw).hexdigest())


@router.post("/v1/hooks/escalation", status_code=202, openapi_extra=body_doc("OrderRequest"),
             summary="Ban request from the escalation system (Standard Webhooks signature)",
             response_model=r.OrderAccepted | r.AmendmentResult,
             responses=r.errors(401, 404, 409, 413, 422, 429))
async def escalation_webhook(
    request: Request,
    webhook_id: Annotated[str | None, Header()] = None,
    webhook_timestamp: Annotated[str | None, Header()] = None,
    webhook_signature: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    ctx = ctx_of(request)
    # The signature is checked before the intake bucket is touched: unsigned posts must
    # not spend the tokens the escalation system and the engineers share.
    raw, idempotency = await signed_body(
        request, keys=ctx.keys, tolerance_s=ctx.settings.webhook.tolerance_s,
        actor="escalation-system", headers=(webhook_id, webhook_timestamp,
                                            webhook_signature))
    _rate_limit(ctx)
    doc = jsonbody.loads(raw)
    if isinstance(doc, dict) and "amend" in doc:
        return await _amend(ctx, doc, idempotency)
    req = _parse(ctx, raw)
    return await _accept(ctx, req, actor="escalation-system", source="webhook",
                         idempotency=idempotency)


async def _amend(ctx: ApiContext, doc: dict[str, Any],
                 idempotency: tuple[str, str]) -> JSONResponse:
    """The escalation system amends an order it filed (by id or by ticket)."""
    from datetime import UTC, datetime

    from enforcer.api.amendments import amend_response, check_node
    from enforcer.api.models import EscalationAmend
    from enforcer.domain.model import Role

    try:
        body = EscalationAmend.model_validate(doc).amend
    except ValidationError as e:
        raise invalid(e, "the amendment is invalid") from None
    check_node(ctx, body.node)
    order_id = body.order_id
    if order_id is None:
        found = await ctx.db(ctx.store.list_orders, ticket=body.ticket, active_only=True,
                             limit=2)
        if not found:
            raise ApiError(404, "not_found", f"no active order for ticket {body.ticket!r}")
        if len(found) > 1:
            raise ApiError(409, "ambiguous", f"several active orders for ticket "
                           f"{body.ticket!r}; name the order_id")
        order_id = found[0].id
    system = UserRecord(id=0, name="escalation-system", role=Role.ESCALATION_SYSTEM,
                        token_prefix="", created_at=datetime.now(UTC), disabled=False,
                        expires_at=None)
    return await amend_response(ctx, order_id, system, body.to_changes(), may_downgrade=True,
                                idempotency=idempotency)


@router.post("/v1/orders", status_code=202, openapi_extra=body_doc("OrderRequest"),
             summary="Ban request from a person or system with a bearer token",
             response_model=r.OrderAccepted, responses=r.errors(*r.BODY, 409, 429))
async def create_order(
    request: Request,
    user: Annotated[UserRecord, Depends(require(Permission.ORDER_CREATE))],
    idempotency_key: Annotated[str | None, Header(max_length=80)] = None,
) -> JSONResponse:
    ctx = ctx_of(request)
    _rate_limit(ctx)  # after ``require``: the bearer token is already proven
    raw = await read_body(request, ctx.settings.api.max_body_bytes)
    req = _parse(ctx, raw)
    idem = None
    if idempotency_key:
        idem = (f"api:{user.name}:{idempotency_key}", hashlib.sha256(raw).hexdigest())
    return await _accept(ctx, req, actor=user.name, source="api", idempotency=idem)
