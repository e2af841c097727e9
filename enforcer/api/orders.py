"""Reading orders, and the lift / approval requests (recorded only: the consent rules
come with the policy; nothing here lifts a ban)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from enforcer.api import views
from enforcer.api.context import ctx_of, read_body, require
from enforcer.api.errors import ApiError, invalid
from enforcer.api.intake import body_doc
from enforcer.api.models import ApprovalIn, LiftIn
from enforcer.auth import Permission
from enforcer.domain.model import OrderState, Reason
from enforcer.store import Conflict, NotFound, UserRecord

router = APIRouter()
M = TypeVar("M", bound=BaseModel)
Reader = Annotated[UserRecord, Depends(require(Permission.ORDER_READ))]
APPROVALS_NOTE = ("approvals are recorded; the lift happens only once the policy's consent "
                  "rules are met (not evaluated yet), so the ban stays in force")


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await read_body(request, ctx_of(request).settings.api.max_body_bytes)
    try:
        return model.model_validate(json.loads(raw or b"{}"))
    except ValueError as e:
        if isinstance(e, ValidationError):
            raise invalid(e) from None
        raise ApiError(422, "invalid_json", "the body is not valid JSON") from None


@router.get("/v1/orders", summary="List orders, newest first")
async def list_orders(
    request: Request, _user: Reader,
    state: OrderState | None = None, reason: Reason | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    ctx = ctx_of(request)
    orders = await ctx.db(ctx.store.list_orders, state, reason, limit, offset)
    return {"orders": [views.order_summary(o) for o in orders], "limit": limit,
            "offset": offset}


@router.get("/v1/orders/{order_id}", summary="One order with devices, targets and lifts")
async def get_order(request: Request, order_id: str, _user: Reader) -> dict[str, Any]:
    ctx = ctx_of(request)
    try:
        order = await ctx.db(ctx.store.get_order, order_id)
    except NotFound:
        raise ApiError(404, "not_found", f"no order {order_id}") from None
    targets = await ctx.db(ctx.store.targets_for_order, order_id)
    lifts = await ctx.db(ctx.store.lift_requests_for_order, order_id)
    return views.order_detail(order, targets, lifts)


@router.get("/v1/lifts/{lift_id}", summary="One lift request with its approvals")
async def get_lift(request: Request, lift_id: str, _user: Reader) -> dict[str, Any]:
    ctx = ctx_of(request)
    try:
        return views.lift(await ctx.db(ctx.store.get_lift_request, lift_id))
    except NotFound:
        raise ApiError(404, "not_found", f"no lift request {lift_id}") from None


@router.post("/v1/orders/{order_id}/lift", status_code=202, openapi_extra=body_doc("LiftIn"),
             summary="Ask to lift a ban (order -> lift_pending; approvals needed)")
async def request_lift(
    request: Request, order_id: str,
    user: Annotated[UserRecord, Depends(require(Permission.LIFT_REQUEST))],
) -> JSONResponse:
    ctx = ctx_of(request)
    body = await parse_body(request, LiftIn)
    try:
        lift = await ctx.db(ctx.store.request_lift, order_id, requested_by=user.name,
                            reason=body.reason, ttl=timedelta(hours=body.ttl_hours))
    except NotFound:
        raise ApiError(404, "not_found", f"no order {order_id}") from None
    except Conflict as e:
        raise ApiError(409, "conflict", str(e)) from None
    ctx.engine.order_accepted(order_id)
    return JSONResponse(
        {"order_id": order_id, "state": OrderState.LIFT_PENDING.value,
         "lift_request": views.lift(lift), "note": APPROVALS_NOTE},
        status_code=202, headers={"Location": f"/v1/lifts/{lift.id}"})


@router.post("/v1/orders/{order_id}/approvals", status_code=201,
             openapi_extra=body_doc("ApprovalIn"),
             summary="Record the caller's decision on the order's open lift request")
async def approve(
    request: Request, order_id: str,
    user: Annotated[UserRecord, Depends(require(Permission.LIFT_APPROVE))],
) -> JSONResponse:
    ctx = ctx_of(request)
    body = await parse_body(request, ApprovalIn)
    try:
        if body.lift_request_id:
            lift = await ctx.db(ctx.store.get_lift_request, body.lift_request_id)
            if lift.order_id != order_id:
                raise NotFound(f"no lift request {body.lift_request_id} for order {order_id}")
        else:
            await ctx.db(ctx.store.get_order, order_id)
            found = await ctx.db(ctx.store.open_lift_request, order_id)
            if found is None:
                raise Conflict(f"order {order_id} has no open lift request")
            lift = found
        lift = await ctx.db(ctx.store.record_approval, lift.id, approver=user.name,
                            decision=body.decision, note=body.note)
    except NotFound as e:
        raise ApiError(404, "not_found", str(e)) from None
    except Conflict as e:
        raise ApiError(409, "conflict", str(e)) from None
    if lift.state == "expired":
        raise ApiError(409, "lift_expired", f"lift request {lift.id} has expired")
    return JSONResponse({"lift_request": views.lift(lift), "note": APPROVALS_NOTE},
                        status_code=201)
