"""The routes of the web page, ``/ui/``. Every read goes through the store and the
engine as the HTTP API's do; every decision goes through the lift workflow
(``enforcer.lifts.LiftWorkflow.decide``, what ``POST /v1/orders/{id}/approvals``
calls), so the page has no rules of its own. Every action is a plain HTML form."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from enforcer.api import views
from enforcer.api.context import ctx_of
from enforcer.api.errors import ApiError
from enforcer.api.models import ApprovalIn
from enforcer.api.ui import story
from enforcer.api.ui.web import (
    LOGIN_COOKIE,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    clear_session_cookie,
    csrf_ok,
    current,
    login_page,
    page,
    read_form,
    redirect,
    refuse,
    set_session_cookie,
    static_css,
)
from enforcer.auth import Permission, allowed, roles_for
from enforcer.domain.model import OrderState, Reason, Role
from enforcer.errors import ConfigError
from enforcer.lifts import LiftError
from enforcer.store import NotFound
from enforcer.store.sessions import UiSession

router = APIRouter(prefix="/ui", include_in_schema=False)
#: Newest audit entries shown on an order's page (all of them are in the bundle).
TIMELINE = 300
Page = Response


async def _signed_in(request: Request, permission: Permission) -> UiSession | Response:
    """The session, if it holds ``permission``; else the sign-in page (no session) or a
    403 page naming the roles that may."""
    session = await current(request)
    if session is None:
        return redirect("/ui/login")
    if not allowed(session.user.role, permission):
        return page(request, "error.html", session=session, status=403,
                    title="Not for your role",
                    message=f"Your role ({session.user.role.value}) may not see this page; "
                            f"it is for: {', '.join(roles_for(permission))}.")
    return session


@router.get("/static/ui.css")
async def css() -> Response:
    return Response(static_css(), media_type="text/css",
                    headers={"Cache-Control": "max-age=3600",
                             "X-Content-Type-Options": "nosniff"})


@router.get("/")
async def home(request: Request) -> Page:
    session = await current(request)
    if session is None:
        return redirect("/ui/login")
    if session.user.role is Role.APPROVER:
        return redirect("/ui/lifts")
    return redirect("/ui/orders")


@router.get("/login")
async def login_form(request: Request) -> Page:
    if await current(request) is not None:
        return redirect("/ui/")
    return login_page(request)


@router.post("/login")
async def login(request: Request) -> Page:
    ctx = ctx_of(request)
    form = await read_form(request)
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE), form):
        return await refuse(request, None, 403, "csrf",
                            "The sign-in form had expired. Open the sign-in page again.")
    token = form.get("token", "").strip()
    user = await ctx.db(ctx.store.authenticate, token) if token else None
    if user is None:
        await ctx.refused(request, ApiError(401, "unauthorized",
                                            "sign-in with an unknown, expired or disabled "
                                            "token"), None)
        return login_page(request, error="That token is unknown, expired or disabled.",
                          status=401)
    lifetime = timedelta(minutes=ctx.settings.api.ui_session_minutes)
    cookie, _ = await ctx.db(ctx.store.open_ui_session, user, lifetime,
                             client=request.client.host if request.client else None)
    resp = redirect("/ui/")
    set_session_cookie(resp, request, cookie, lifetime)
    resp.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return resp


@router.post("/logout")
async def logout(request: Request) -> Page:
    session = await current(request)
    form = await read_form(request)
    if session is not None and not csrf_ok(session.csrf, form):
        return await refuse(request, session, 403, "csrf",
                            "This form was not sent by your page. Reload and try again.")
    if session is not None:
        ctx = ctx_of(request)
        await ctx.db(ctx.store.close_ui_session, request.cookies[SESSION_COOKIE],
                     actor=session.user.name)
    resp = redirect("/ui/login")
    clear_session_cookie(resp, request)
    return resp


@router.get("/lifts")
async def lifts(request: Request) -> Page:
    session = await _signed_in(request, Permission.ORDER_READ)
    if isinstance(session, Response):
        return session
    ctx = ctx_of(request)
    cards = await ctx.db(story.open_lifts, ctx.store, session.user)
    return page(request, "lifts.html", session=session, title="Lift requests", cards=cards)


@router.get("/orders")
async def orders(request: Request,
                 state: Annotated[str | None, Query(max_length=40)] = None,
                 reason: Annotated[str | None, Query(max_length=40)] = None,
                 account: Annotated[str | None, Query(max_length=200)] = None) -> Page:
    session = await _signed_in(request, Permission.ORDER_READ)
    if isinstance(session, Response):
        return session
    ctx = ctx_of(request)
    st = OrderState(state) if state in {s.value for s in OrderState} else None
    rs = Reason(reason) if reason in {r.value for r in Reason} else None
    found = await ctx.db(ctx.store.list_orders, st, rs, 200, 0)
    if account:
        found = [o for o in found if account.lower() in o.account.lower()]
    return page(request, "orders.html", session=session, title="Orders", orders=found,
                states=[s.value for s in OrderState], reasons=[r.value for r in Reason],
                state=st.value if st else "", reason=rs.value if rs else "",
                account=account or "")


@router.get("/orders/{order_id}")
async def order(request: Request, order_id: str) -> Page:
    session = await _signed_in(request, Permission.ORDER_READ)
    if isinstance(session, Response):
        return session
    ctx = ctx_of(request)
    try:
        o = await ctx.db(ctx.store.get_order, order_id)
    except NotFound:
        return page(request, "error.html", session=session, status=404, title="Not found",
                    message=f"There is no order {order_id}.")
    targets = await ctx.db(ctx.store.targets_for_order, order_id)
    lift_reqs = await ctx.db(ctx.store.lift_requests_for_order, order_id)
    entries = await ctx.db(ctx.store.audit_entries, order_id=order_id, limit=100_000)
    cards = [story.LiftCard(o, lr, story.votes(lr),
                            sum(1 for a in lr.approvals if a.decision == "approve"),
                            story.story(o, targets, entries),
                            story.may_decide(session.user, lr)) for lr in lift_reqs]
    return page(request, "order.html", session=session, title=f"Order {o.id}", order=o,
                devices=story.by_device(targets), story=story.story(o, targets, entries),
                layers=views.layers(targets, ctx.engine.layer_of),
                cards=list(reversed(cards)), timeline=entries[-TIMELINE:],
                timeline_total=len(entries), describe=story.describe,
                moving=o.state.value in ("accepted", "enforcing", "lifting"))


@router.post("/orders/{order_id}/decision")
async def decide(request: Request, order_id: str) -> Page:
    session = await current(request)
    if session is None:
        return redirect("/ui/login")
    form = await read_form(request)
    if not csrf_ok(session.csrf, form):
        return await refuse(request, session, 403, "csrf",
                            "This form was not sent by your page. Reload and try again.")
    if not allowed(session.user.role, Permission.LIFT_APPROVE):
        return await refuse(request, session, 403, "forbidden",
                            f"Role {session.user.role.value} may not decide on lifts; "
                            f"allowed: {', '.join(roles_for(Permission.LIFT_APPROVE))}.")
    if form.get("decision") not in ("approve", "refuse"):
        return await refuse(request, session, 422, "invalid", "Choose Approve or Refuse.")
    try:  # the API's own body model: the same limits as POST .../approvals
        body = ApprovalIn.model_validate({
            "decision": form["decision"], "note": form.get("note", "").strip() or None,
            "lift_request_id": form.get("lift_request_id") or None})
    except ValidationError as e:
        why = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        return await refuse(request, session, 422, "invalid", f"The form is invalid: {why}")
    ctx = ctx_of(request)
    try:
        await ctx.db(ctx.lifts.decide, order_id, session.user, decision=body.decision,
                     lift_request_id=body.lift_request_id, note=body.note)
    except NotFound as e:
        return await refuse(request, session, 404, "not_found", str(e))
    except LiftError as e:
        return await refuse(request, session, e.status, e.code, e.message)
    return redirect(f"/ui/orders/{order_id}")


@router.get("/orders/{order_id}/evidence")
async def evidence(request: Request, order_id: str) -> Page:
    session = await _signed_in(request, Permission.EVIDENCE_EXPORT)
    if isinstance(session, Response):
        return session
    from enforcer.audit import read_anchor_file
    from enforcer.audit.export import ChainBroken, build_bundle
    from enforcer.audit.guard import CHECKPOINT, read_checkpoint
    from enforcer.audit.signing import load_signing_key
    from enforcer.audit.verify_bundle import canonical

    ctx = ctx_of(request)
    path = ctx.settings.anchor_file()
    anchors = read_anchor_file(path) if path.exists() else []
    secrets = ctx.settings.secret_values() + ctx.policy.secret_values()
    try:
        key = load_signing_key(ctx.settings.evidence_key_path())
        cp = read_checkpoint(path.parent / CHECKPOINT)
        doc = await ctx.db(build_bundle, ctx.store, order_id, signing_key=key,
                           anchors=anchors, secrets=secrets,
                           legacy_until=(cp.legacy_until if cp else 0) or 0)
    except NotFound:
        return page(request, "error.html", session=session, status=404, title="Not found",
                    message=f"There is no order {order_id}.")
    except (ChainBroken, ConfigError, ValueError) as e:
        return page(request, "error.html", session=session, status=503,
                    title="No bundle", message=f"No evidence bundle was made: {e}")
    await ctx.db(ctx.store.record_event, session.user.name, "evidence.exported", order_id,
                 {"sha256": doc["sha256"], "via": "ui"})
    return Response((canonical(doc) + "\n").encode("utf-8"), media_type="application/json",
                    headers={**SECURITY_HEADERS, "Content-Disposition":
                             f'attachment; filename="evidence-{order_id}.json"'})


@router.get("/devices")
async def devices(request: Request) -> Page:
    session = await _signed_in(request, Permission.DEVICE_READ)
    if isinstance(session, Response):
        return session
    ctx = ctx_of(request)
    rows = ctx.engine.devices()  # as GET /v1/devices does (the engine's own loop)
    return page(request, "devices.html", session=session, title="Devices", rows=rows)
