"""Reading orders; lift requests and approvals (through the lift workflow,
``enforcer.lifts``: only a lift request whose consent rule is met moves an order to
``lifting``; there is no endpoint that deletes or lifts a ban directly)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from enforcer.api import jsonbody, views
from enforcer.api import responses as r
from enforcer.api.context import ctx_of, read_body, require
from enforcer.api.errors import ApiError, invalid
from enforcer.api.intake import body_doc
from enforcer.api.models import NO_CONTROL, ApprovalIn, LiftIn
from enforcer.auth import Permission
from enforcer.domain.mac import Mac
from enforcer.domain.model import OrderState, Reason
from enforcer.errors import MacError
from enforcer.lifts import LiftError
from enforcer.store import LiftRequestRecord, NotFound, UserRecord

router = APIRouter()
M = TypeVar("M", bound=BaseModel)
Reader = Annotated[UserRecord, Depends(require(Permission.ORDER_READ))]
#: An order or lift request id in a path (``ord_...``, ``lift_...``).
RecordId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_CONTROL)]


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await read_body(request, ctx_of(request).settings.api.max_body_bytes)
    doc = jsonbody.loads(raw or b"{}")
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise invalid(e) from None


_LIST_PARAMS = frozenset({"state", "reason", "account", "ticket", "mac", "limit", "offset"})


@router.get("/v1/orders", summary="List orders, newest first (filters combine)",
            response_model=r.OrderList, responses=r.errors(*r.AUTH))
async def list_orders(
    request: Request, _user: Reader,
    state: OrderState | None = None, reason: Reason | None = None,
    account: Annotated[str | None, Query(min_length=1, max_length=200,
                                         pattern=NO_CONTROL)] = None,
    ticket: Annotated[str | None, Query(min_length=1, max_length=200,
                                        pattern=NO_CONTROL)] = None,
    mac: Annotated[str | None, Query(min_length=1, max_length=40, pattern=NO_CONTROL,
                                     description="a device or eCM MAC")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    ctx = ctx_of(request)
    unknown = sorted(set(request.query_params) - _LIST_PARAMS)
    if unknown:
        raise ApiError(422, "invalid", "unknown query parameter(s)",
                       fields={u: f"unknown; use {', '.join(sorted(_LIST_PARAMS))}"
                               for u in unknown})
    wanted_mac = None
    if mac is not None:
        try:
            wanted_mac = str(Mac(mac))
        except MacError as e:
            raise ApiError(422, "invalid", "invalid MAC address", fields={"mac": str(e)}) \
                from None
    orders = await ctx.db(ctx.store.list_orders, state, reason, limit, offset,
                          account=account, ticket=ticket, mac=wanted_mac)
    return {"orders": [views.order_summary(o) for o in orders], "limit": limit,
            "offset": offset}


@router.get("/v1/orders/{order_id}", summary="One order with devices, targets and lifts",
            response_model=r.OrderDetail, response_model_exclude_unset=True,
            responses=r.errors(*r.AUTH, 404))
async def get_order(request: Request, order_id: RecordId, _user: Reader) -> dict[str, Any]:
    ctx = ctx_of(request)
    try:
        order = await ctx.db(ctx.store.get_order, order_id)
    except NotFound:
        raise ApiError(404, "not_found", f"no order {order_id}") from None
    targets = await ctx.db(ctx.store.targets_for_order, order_id)
    lifts = await ctx.db(ctx.store.lift_requests_for_order, order_id)
    out = views.order_detail(order, targets, lifts,
                             layer_of=ctx.engine.layer_of)
    covering = await ctx.db(ctx.store.orders_naming, [d.mac for d in order.devices] + [
        d.ecm_mac for d in order.devices if d.ecm_mac is not None])
    out["coverage"] = views.coverage(order, covering, ctx.policy)
    out["linked_orders"] = sorted({c.id for c in covering} - {order.id})
    out["breaches"] = views.breaches(await ctx.db(
        ctx.store.audit_entries, order_id=order_id, action="ban.breach", limit=10_000))
    out["order_layers"] = list(order.layers) if order.layers is not None else None
    origins = views.device_origins(
        await ctx.db(ctx.store.audit_entries, order_id=order_id, action="order.accepted"),
        await ctx.db(ctx.store.audit_entries, order_id=order_id, action="order.amended",
                     limit=100_000))
    for d in out["devices"]:
        d["origin"] = origins.get(d["mac"])
    return out


@router.get("/v1/lifts/{lift_id}", summary="One lift request with its approvals",
            response_model=r.LiftView, responses=r.errors(*r.AUTH, 404))
async def get_lift(request: Request, lift_id: RecordId, _user: Reader) -> dict[str, Any]:
    ctx = ctx_of(request)
    try:
        return views.lift(await ctx.db(ctx.store.get_lift_request, lift_id))
    except NotFound:
        raise ApiError(404, "not_found", f"no lift request {lift_id}") from None


async def _stays(ctx: Any, order_id: str) -> list[dict[str, Any]]:
    """MACs of the order other active orders hold: they stay blocked when it is lifted."""
    order = await ctx.db(ctx.store.get_order, order_id)
    covering = await ctx.db(ctx.store.orders_naming, [d.mac for d in order.devices] + [
        d.ecm_mac for d in order.devices if d.ecm_mac is not None])
    others = [c for c in covering if c.id != order_id]
    return [c for c in views.coverage(order, others, ctx.policy) if c["orders"]]


def _lift_error(e: LiftError) -> ApiError:
    return ApiError(e.status, e.code, e.message)


@router.post("/v1/orders/{order_id}/lift", status_code=202, openapi_extra=body_doc("LiftIn"),
             summary="Ask to lift a ban (order -> lift_pending; approvals needed)",
             response_model=r.LiftRequested, responses=r.errors(*r.BODY, 404, 409))
async def request_lift(
    request: Request, order_id: RecordId,
    user: Annotated[UserRecord, Depends(require(Permission.LIFT_REQUEST))],
) -> JSONResponse:
    ctx = ctx_of(request)
    body = await parse_body(request, LiftIn)
    try:
        lift = await ctx.db(ctx.lifts.request, order_id, user, reason=body.reason,
                            ttl_hours=body.ttl_hours, on_behalf_of=body.on_behalf_of)
    except NotFound:
        raise ApiError(404, "not_found", f"no order {order_id}") from None
    except LiftError as e:
        raise _lift_error(e) from None
    return JSONResponse(
        {"order_id": order_id, "state": OrderState.LIFT_PENDING.value,
         "lift_request": views.lift(lift), "note": _pending_note(lift),
         "stays_blocked": await _stays(ctx, order_id)},
        status_code=202, headers={"Location": f"/v1/lifts/{lift.id}"})


def _pending_note(lift: LiftRequestRecord) -> str:
    got = sum(1 for a in lift.approvals if a.decision == "approve")
    return (f"the ban stays in force until {lift.needed} of {len(lift.electorate or ())} "
            f"approver(s) consent ({lift.rule}); {got} so far; expires "
            f"{lift.expires_at.isoformat()}")


@router.post("/v1/orders/{order_id}/approvals", status_code=201,
             openapi_extra=body_doc("ApprovalIn"),
             summary="Approve or refuse the order's open lift request (caller's own token)",
             response_model=r.Decision, responses=r.errors(*r.BODY, 404, 409))
async def approve(
    request: Request, order_id: RecordId,
    user: Annotated[UserRecord, Depends(require(Permission.LIFT_APPROVE))],
) -> JSONResponse:
    ctx = ctx_of(request)
    body = await parse_body(request, ApprovalIn)
    try:
        lift, outcome = await ctx.db(ctx.lifts.decide, order_id, user,
                                     decision=body.decision,
                                     lift_request_id=body.lift_request_id, note=body.note)
    except NotFound as e:
        raise ApiError(404, "not_found", str(e)) from None
    except LiftError as e:
        raise _lift_error(e) from None
    notes = {"approved": "consent complete: the order is lifting; the engine removes every "
                         "block and confirms the modem forwards again",
             "refused": "lift refused: the ban stays in force",
             "recorded": _pending_note(lift)}
    order = await ctx.db(ctx.store.get_order, order_id)
    return JSONResponse({"lift_request": views.lift(lift), "outcome": outcome,
                         "order_state": order.state.value, "note": notes[outcome],
                         "stays_blocked": await _stays(ctx, order_id)},
                        status_code=201)
