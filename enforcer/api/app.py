"""The FastAPI application: routers, error handling, request metrics, OpenAPI."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import enforcer
from enforcer.api import accounts, amendments, intake, ops, orders, ui
from enforcer.api.context import ApiContext, ctx_of
from enforcer.api.errors import ApiError, error_response, fields_from
from enforcer.api.models import BODY_MODELS
from enforcer.api.ratelimit import TokenBucket
from enforcer.config import Settings
from enforcer.engine.contract import EngineAPI
from enforcer.metrics import Metrics
from enforcer.policy import Policy, policy_for
from enforcer.store import Store
from enforcer.store.audit import Clock, utcnow

log = logging.getLogger("enforcer.api")


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if request.method != "GET" and request.url.path.startswith("/v1/"):
        await ctx_of(request).refused(request, exc, getattr(request.state, "actor", None))
    return exc.response()


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return await _on_api_error(
        request,
        ApiError(422, "invalid", "invalid request", fields=fields_from(list(exc.errors()))),
    )


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


class _Observe:
    """Count every request by route template; turn unexpected errors into a generic 500.
    Plain ASGI (Starlette's ``BaseHTTPMiddleware`` runs each request in an extra task
    with memory streams, a measurable share of a webhook's CPU)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [0]

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except ClientDisconnect:
            # The client went away mid-body: nothing to answer, nothing went wrong here.
            log.info("client disconnected during %s %s", scope.get("method"),
                     scope.get("path"))
            status[0] = status[0] or 499
        except Exception as e:
            log.error("unhandled %s on %s %s", type(e).__name__, scope.get("method"),
                      scope.get("path"), exc_info=e)
            if status[0]:
                raise  # the response has started: nothing else can be sent
            status[0] = 500
            await error_response(500, "internal", "internal error; see the daemon's log")(
                scope, receive, send)
        label = getattr(scope.get("route"), "path", "unmatched")
        self.metrics.http_requests.labels(
            route=label, method=scope.get("method", ""), code=str(status[0])).inc()


async def _to_ui() -> Response:
    """``/`` is for people: the web page (the API is under ``/v1/``, its description at
    ``/docs``)."""
    return RedirectResponse("/ui/", status_code=307)


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    base = app.openapi

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base()
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in BODY_MODELS:
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                comps.update(js.pop("$defs", {}))
                comps[model.__name__] = js
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def create_app(*, settings: Settings, store: Store, engine: EngineAPI,
               registry: CollectorRegistry, clock: Clock = utcnow,
               metrics: Metrics | None = None, policy: Policy | None = None,
               notifier: Any = None) -> FastAPI:
    """Build the API. Pass ``metrics`` when the engine shares the registry (build
    ``Metrics(registry)`` once); otherwise one is created on ``registry``. ``policy``
    defaults to the one named by ``settings.policy``; pass the daemon's ``notifier``
    (``enforcer.notify.build_notifier``) so the API and the engine share one."""
    from enforcer.amend import AmendWorkflow
    from enforcer.lifts import LiftWorkflow
    from enforcer.notify import build_notifier
    from enforcer.provisioning import Feed

    policy = policy or policy_for(settings)
    notifier = notifier or build_notifier(settings, store)
    m = metrics or Metrics(registry)
    m.bind_store(store)
    app = FastAPI(title="enforcer", version=enforcer.__version__,
                  description="Network enforcement agent: ban orders, lifts, devices.")
    lifts = LiftWorkflow(store=store, policy=policy, notifier=notifier,
                         wake=engine.order_accepted)
    amend = AmendWorkflow(store=store, policy=policy, lifts=lifts)
    app.state.ctx = ApiContext(
        settings=settings, store=store, engine=engine, metrics=m, clock=clock,
        bucket=TokenBucket(settings.api.intake_rate_per_s, settings.api.intake_burst),
        keys=settings.webhook.keys(), policy=policy, notifier=notifier, lifts=lifts,
        amend=amend,
        feed=Feed(store=store, amend=amend, wake=engine.order_accepted,
                  max_per_account=settings.provisioning.max_devices_per_account),
    )
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_middleware(_Observe, metrics=m)
    for r in (intake.router, orders.router, amendments.router, accounts.router, ops.router,
              ui.router):
        app.include_router(r)
    app.add_api_route("/", _to_ui, methods=["GET"], include_in_schema=False)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app
