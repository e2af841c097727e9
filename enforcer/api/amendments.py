"""Amending an order: ``POST /v1/orders/{id}/amendments`` (bearer token) and the
escalation webhook's ``{"amend": ...}`` body (``enforcer.api.intake``). Upgrades take
effect at once; downgrades open a lift request for that part (``enforcer.amend``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from enforcer.amend import Changes
from enforcer.api import responses as r
from enforcer.api import views
from enforcer.api.context import ApiContext, ctx_of, require
from enforcer.api.errors import ApiError, invalid
from enforcer.api.intake import body_doc
from enforcer.api.models import AmendmentIn
from enforcer.api.orders import RecordId, parse_body
from enforcer.auth import Permission, allowed
from enforcer.lifts import LiftError
from enforcer.logging import order_context
from enforcer.store import NotFound, UserRecord

router = APIRouter()


def check_node(ctx: ApiContext, node: str | None) -> None:
    if node is not None and node not in ctx.engine.node_names():
        raise invalid([{"loc": ("node",), "msg": f"unknown node {node!r}"}],
                      "the amendment is invalid")


async def amend_response(ctx: ApiContext, order_id: str, user: UserRecord, ch: Changes, *,
                         may_downgrade: bool,
                         idempotency: tuple[str, str] | None = None) -> JSONResponse:
    """Apply an amendment and answer 202 with what took effect and what waits."""
    try:
        res = await ctx.db(ctx.amend.amend, order_id, user, ch, may_downgrade=may_downgrade,
                           idempotency=idempotency)
    except NotFound:
        raise ApiError(404, "not_found", f"no order {order_id}") from None
    except LiftError as e:
        raise ApiError(e.status, e.code, e.message) from None
    with order_context(order_id):
        if res.applied:
            ctx.notifier.notify("ban.amended", {
                "order_id": order_id, "reason": res.order.reason.value, "by": user.name,
                "changes": [{"field": f, "before": b, "after": a} for f, b, a in res.applied]})
        ctx.engine.order_accepted(order_id)
    notes = []
    if res.applied:
        notes.append("upgrades in force now; the engine enforces and verifies them")
    if res.pending is not None:
        notes.append(f"downgrades wait for {res.pending.rule} consent of "
                     f"{res.pending.group or 'the approvers'}; the ban stays as it is")
    if res.superseded:
        notes.append("open lift request(s) superseded: " + ", ".join(res.superseded))
    return JSONResponse(
        {"order_id": order_id, "state": res.order.state.value, "replayed": res.replayed,
         "applied": [{"field": f, "before": b, "after": a} for f, b, a in res.applied],
         "pending": views.lift(res.pending) if res.pending is not None else None,
         "superseded_lift_requests": res.superseded, "note": "; ".join(notes)},
        status_code=202, headers={"Location": f"/v1/orders/{order_id}"})


@router.post("/v1/orders/{order_id}/amendments", status_code=202,
             openapi_extra=body_doc("AmendmentIn"),
             summary="Amend an order: upgrades at once, downgrades need the lift consent",
             response_model=r.AmendmentResult, responses=r.errors(*r.BODY, 404, 409))
async def amend_order(
    request: Request, order_id: RecordId,
    user: Annotated[UserRecord, Depends(require(Permission.ORDER_CREATE))],
) -> JSONResponse:
    ctx = ctx_of(request)
    body = await parse_body(request, AmendmentIn)
    check_node(ctx, body.node)
    return await amend_response(ctx, order_id, user, body.to_changes(),
                                may_downgrade=allowed(user.role, Permission.LIFT_REQUEST))
