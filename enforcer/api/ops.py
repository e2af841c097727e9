"""Devices, where, plan (thin wrappers over the engine), users, health and metrics."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from enforcer.api import responses as r
from enforcer.api import views
from enforcer.api.context import ctx_of, require
from enforcer.api.errors import ApiError
from enforcer.api.intake import body_doc
from enforcer.api.models import NO_CONTROL, TrustIn, UserIn
from enforcer.api.orders import parse_body
from enforcer.api.ratelimit import retry_after
from enforcer.auth import Permission
from enforcer.domain.mac import Mac
from enforcer.domain.model import Role
from enforcer.errors import HostKeyError, InputError, MacError, TransportError
from enforcer.store import Conflict, UserRecord
from enforcer.store.users import check_user_name

router = APIRouter()
DeviceReader = Annotated[UserRecord, Depends(require(Permission.DEVICE_READ))]
Admin = Annotated[UserRecord, Depends(require(Permission.USER_ADMIN))]
Reconciler = Annotated[UserRecord, Depends(require(Permission.DEVICE_CHECK))]
DeviceName = Annotated[str, Path(min_length=1, max_length=100, pattern=NO_CONTROL)]


def _engine_error(e: Exception) -> ApiError:
    if isinstance(e, LookupError):
        return ApiError(404, "not_found", str(e).strip("'\""))
    if isinstance(e, InputError):
        return ApiError(422, "invalid", str(e))
    return ApiError(502, "device_error", str(e))


@router.post("/v1/reconcile", summary="Run a full reconcile cycle on this instance's "
             "devices now", response_model=r.ReconcileResult,
             responses=r.errors(401, 403, 501))
async def reconcile_now(request: Request, _user: Reconciler) -> dict[str, Any]:
    return dict(await ctx_of(request).engine.reconcile_all())


@router.get("/v1/cluster", summary="Instances, device leases and their ages",
            response_model=r.ClusterStatus, response_model_exclude_unset=True,
            responses=r.errors(401, 403))
async def cluster(request: Request, _user: DeviceReader) -> dict[str, Any]:
    return dict(await ctx_of(request).engine.cluster_status())


@router.get("/v1/devices", summary="Inventory devices and their last known state",
            response_model=r.DeviceList, responses=r.errors(401, 403))
async def devices(request: Request, _user: DeviceReader) -> dict[str, Any]:
    return {"devices": ctx_of(request).engine.devices()}


@router.post("/v1/devices/{name}/check", summary="Contact a device now",
             response_model=r.DeviceCheck, response_model_exclude_unset=True,
             responses=r.errors(*r.AUTH, 404, 502))
async def check_device(
    request: Request, name: DeviceName,
    _user: Annotated[UserRecord, Depends(require(Permission.DEVICE_CHECK))],
) -> dict[str, Any]:
    try:
        return dict(await ctx_of(request).engine.check_device(name))
    except (LookupError, InputError, TransportError) as e:
        raise _engine_error(e) from None


@router.post("/v1/devices/{name}/trust", openapi_extra=body_doc("TrustIn"),
             summary="Pin the SSH host key the device presents now, if it is the "
             "expected one (devices trust --expect)", response_model=r.TrustResult,
             responses=r.errors(*r.BODY, 404, 409, 502))
async def trust_device(
    request: Request, name: DeviceName,
    user: Annotated[UserRecord, Depends(require(Permission.DEVICE_TRUST))],
) -> dict[str, Any]:
    body = await parse_body(request, TrustIn)
    try:
        return dict(await ctx_of(request).engine.trust_device(name, user.name, body.expect))
    except HostKeyError as e:
        raise ApiError(409, "host_key_conflict", str(e)) from None
    except (LookupError, InputError, TransportError) as e:
        raise _engine_error(e) from None


@router.get("/v1/where/{mac}", summary="Where a MAC is registered right now",
            response_model=r.WhereResult, responses=r.errors(*r.AUTH, 404, 429, 502))
async def where(
    request: Request,
    mac: Annotated[str, Path(min_length=1, max_length=40, pattern=NO_CONTROL)],
    user: DeviceReader,
) -> dict[str, Any]:
    wait = ctx_of(request).where_allowed(user.name)
    if wait > 0:  # each lookup asks every device: one user must not keep them all busy
        raise ApiError(429, "rate_limited", "too many /v1/where lookups; retry later",
                       headers={"Retry-After": retry_after(wait)})
    try:
        parsed = Mac(mac)
    except MacError as e:
        raise ApiError(422, "invalid", "invalid MAC address", fields={"mac": str(e)}) from None
    ctx = ctx_of(request)
    try:
        sightings = await ctx.engine.where(parsed)
    except (LookupError, InputError, TransportError) as e:
        raise _engine_error(e) from None
    holders = await ctx.db(ctx.store.orders_naming, [parsed])
    return {"mac": str(parsed), "sightings": sightings,
            "orders": views.holding(ctx.policy, holders)}


@router.get("/v1/plan", summary="Dry run: the targets the engine would push",
            response_model=r.PlanResult, responses=r.errors(*r.AUTH, 404, 502))
async def plan(
    request: Request, _user: DeviceReader,
    order_id: Annotated[str | None, Query(min_length=1, max_length=64,
                                          pattern=NO_CONTROL)] = None,
) -> dict[str, Any]:
    try:
        targets = await ctx_of(request).engine.plan(order_id)
    except (LookupError, InputError, TransportError) as e:
        raise _engine_error(e) from None
    return {"order_id": order_id, "targets": targets}


@router.get("/v1/users", summary="API users (never their tokens)",
            response_model=r.UserList, responses=r.errors(401, 403))
async def list_users(request: Request, _user: Admin) -> dict[str, Any]:
    ctx = ctx_of(request)
    return {"users": [views.user(u) for u in await ctx.db(ctx.store.list_users)]}


@router.post("/v1/users", status_code=201, openapi_extra=body_doc("UserIn"),
             summary="Create a user; the token is in this answer only",
             response_model=r.UserCreated, responses=r.errors(*r.BODY, 409))
async def add_user(request: Request, user: Admin) -> JSONResponse:
    ctx = ctx_of(request)
    body = await parse_body(request, UserIn)
    if body.role is Role.APPROVER:
        # Separation of duties: whoever holds the admin token must not be able to mint
        # the approvals a lift needs. Approvers (and their groups) are made on the
        # daemon's host with ``enforcer users add``, which needs the configuration.
        raise ApiError(403, "local_only", "approvers are created only with the local "
                       "command on the daemon's host: enforcer users add NAME "
                       "--role approver --group GROUP")
    try:
        check_user_name(body.name)
    except ValueError as e:
        raise ApiError(422, "invalid", str(e), fields={"name": str(e)}) from None
    expires = (ctx.clock() + timedelta(days=body.expires_in_days)
               if body.expires_in_days else None)
    try:
        rec, token = await ctx.db(ctx.store.add_user, body.name, body.role, expires,
                                  actor=user.name)
    except Conflict as e:
        raise ApiError(409, "conflict", str(e)) from None
    except ValueError as e:
        raise ApiError(422, "invalid", str(e)) from None
    return JSONResponse({"user": views.user(rec), "token": token}, status_code=201)


@router.get("/healthz", summary="The process is up", response_model=r.Health,
            responses=r.errors())
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database reachable and engine ready",
            response_model=r.Ready,
            responses={503: {"model": r.Ready, "description": "not ready (same body)"},
                       **r.errors()})
async def readyz(request: Request) -> JSONResponse:
    ctx = ctx_of(request)
    db_ok = await ctx.db(ctx.store.ping)
    engine_ok, why = ctx.engine.ready()
    ok = db_ok and engine_ok
    body = {"ready": ok, "checks": {
        "database": "ok" if db_ok else "unreachable", "engine": why}}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics (text exposition format)",
            response_class=Response, responses={200: {"content": {"text/plain": {
                "schema": {"type": "string"}}}, "description": "the metrics"}, **r.errors()})
async def metrics(request: Request) -> Response:
    registry = ctx_of(request).metrics.registry
    data = await ctx_of(request).db(generate_latest, registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
