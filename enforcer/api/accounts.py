"""The provisioning feed's signed webhook, account history, and the dry run of an order
body (``POST /v1/plans``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from enforcer.api import jsonbody, views
from enforcer.api import responses as r
from enforcer.api.context import ctx_of, read_body, require
from enforcer.api.errors import ApiError, invalid
from enforcer.api.intake import _parse, body_doc, signed_body
from enforcer.api.models import NO_CONTROL, ProvisioningEvent
from enforcer.auth import Permission
from enforcer.domain.model import OrderState
from enforcer.provisioning import LinkRow
from enforcer.store import IdempotencyConflict, OrderRecord, UserRecord
from enforcer.store.errors import Conflict
from enforcer.store.records import OrderDeviceRecord

router = APIRouter()
Reader = Annotated[UserRecord, Depends(require(Permission.ORDER_READ))]


@router.post("/v1/hooks/provisioning", status_code=202,
             openapi_extra=body_doc("ProvisioningEvent"),
             summary="device.linked / device.unlinked from the provisioning system (signed)",
             response_model=r.LinkEventResult, responses=r.errors(401, 409, 413, 422))
async def provisioning_webhook(
    request: Request,
    webhook_id: Annotated[str | None, Header()] = None,
    webhook_timestamp: Annotated[str | None, Header()] = None,
    webhook_signature: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    ctx = ctx_of(request)
    prov = ctx.settings.provisioning
    raw, idempotency = await signed_body(
        request, keys=prov.keys(), tolerance_s=prov.tolerance_s, actor="provisioning",
        headers=(webhook_id, webhook_timestamp, webhook_signature))
    try:
        ev = ProvisioningEvent.model_validate(jsonbody.loads(raw))
    except ValidationError as e:
        raise invalid(e, "the provisioning event is invalid") from None
    d = ev.data
    row = LinkRow(d.account, d.mac, d.kind, d.ecm_mac)
    try:
        change, extended = await ctx.db(
            ctx.feed.event, ev.type, row, at=d.at.astimezone(UTC),
            idempotency=idempotency)
    except IdempotencyConflict as e:
        raise ApiError(409, "idempotency_conflict", str(e)) from None
    except Conflict as e:
        raise ApiError(409, "too_many_devices", str(e)) from None
    return JSONResponse({"outcome": change.outcome, "account": d.account, "mac": str(d.mac),
                         "orders_extended": extended}, status_code=202)


@router.get("/v1/accounts/{account}", summary="An account's history: orders, amendments, "
            "lifts and device links", response_model=r.AccountHistory,
            responses=r.errors(*r.AUTH))
async def account_history(
    request: Request,
    account: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_CONTROL)],
    _user: Reader,
) -> dict[str, Any]:
    ctx = ctx_of(request)
    if len(account) > 200 or not account.isprintable():
        raise ApiError(422, "invalid", "invalid account", fields={"account": "1-200 "
                                                                     "printable characters"})
    orders = await ctx.db(ctx.store.list_orders, account=account, limit=1000)
    events: list[dict[str, Any]] = []
    for o in orders:
        for e in await ctx.db(ctx.store.audit_entries, order_id=o.id, limit=100_000):
            if e.action in ("order.accepted", "order.amended") or e.action.startswith("lift."):
                events.append({"at": views.ts(e.at), "order_id": o.id, "action": e.action,
                               "actor": e.actor, "seq": e.seq})
    events.sort(key=lambda x: x["seq"])
    links = await ctx.db(ctx.store.links_of, account, linked_only=False)
    return {"account": account,
            "orders": [views.order_summary(o) for o in orders],
            "timeline": events,
            "links": [{"mac": str(x.mac), "kind": x.kind.value,
                       "ecm_mac": str(x.ecm_mac) if x.ecm_mac else None,
                       "linked": x.linked, "source": x.source,
                       "at": views.ts(x.event_at)} for x in links],
            "link_history": await ctx.db(ctx.store.link_history, account)}


@router.post("/v1/plans", openapi_extra=body_doc("OrderRequest"),
             summary="Dry run of an order body: targets per device, resets, consent",
             response_model=r.OrderPreview, responses=r.errors(*r.BODY, 404))
async def plan_order(
    request: Request,
    _user: Annotated[UserRecord, Depends(require(Permission.ORDER_CREATE))],
) -> dict[str, Any]:
    ctx = ctx_of(request)
    req = _parse(ctx, await read_body(request, ctx.settings.api.max_body_bytes))
    spec = req.to_spec(ctx.policy.default_scope)
    devices = [OrderDeviceRecord(d.mac, d.kind, d.ecm_mac) for d in spec.devices]
    from_links: list[str] = []
    if spec.all_devices:
        given = {d.mac for d in devices}
        for link in await ctx.db(ctx.store.links_of, spec.account):
            if link.mac not in given:
                devices.append(OrderDeviceRecord(link.mac, link.kind, link.ecm_mac))
                from_links.append(str(link.mac))
    now = datetime.now(UTC)
    order = OrderRecord(
        id="dry-run", ticket=spec.ticket, account=spec.account, reason=spec.reason,
        scope=spec.scope, node=spec.node, requested_by=spec.requested_by, note=spec.note,
        evidence=spec.evidence, state=OrderState.ACCEPTED, state_detail=None, source="api",
        created_by="dry-run", created_at=now, updated_at=now, enforced_at=None,
        verified_at=None, lifted_at=None, devices=tuple(devices),
        all_devices=spec.all_devices)
    try:
        rows = await ctx.engine.preview(order)
    except LookupError as e:
        raise ApiError(404, "not_found", str(e)) from None
    lp = ctx.policy.for_reason(spec.reason).lift
    electorate = await ctx.db(ctx.store.eligible_approvers, lp.group)
    return {
        "order": {**views.order_summary(order), "id": None, "state": None},
        "devices_from_links": from_links,
        "layers": list(ctx.policy.for_reason(spec.reason).layers),
        "targets": [r for r in rows if r.get("action") == "push"
                    or str(r.get("action", "")).startswith("share")],
        "lookups": rows,
        "resets": sorted({f"{r['device']} {r['mac']}" for r in rows if r.get("reset")}),
        "consent": {"group": lp.group, "rule": lp.rule.value, "n": lp.n,
                    "needed": lp.needed(len(electorate)), "electorate_now": electorate,
                    "time_limit_hours": lp.time_limit_hours},
        "note": "dry run: no order was created and no device was changed",
    }
