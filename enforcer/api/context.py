"""What every route needs (settings, store, engine, metrics, clock), body reading with a
size limit, bearer authentication, and auditing of refused requests."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from enforcer.api.engine import Engine
from enforcer.api.errors import ApiError
from enforcer.api.ratelimit import TokenBucket
from enforcer.auth import Permission, allowed, bearer_token, roles_for
from enforcer.config import Settings
from enforcer.metrics import Metrics
from enforcer.policy import Policy
from enforcer.store import Store, UserRecord
from enforcer.store.audit import Clock

if TYPE_CHECKING:
    from enforcer.amend import AmendWorkflow
    from enforcer.lifts import LiftWorkflow
    from enforcer.notify import Notifier
    from enforcer.provisioning import Feed

log = logging.getLogger("enforcer.api")
T = TypeVar("T")
#: Refusals with these codes are audited at most once per second (a flood must not
#: turn into a flood of database writes); the entry carries how many were folded in.
_COALESCED = frozenset({"rate_limited"})


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    engine: Engine
    metrics: Metrics
    clock: Clock
    bucket: TokenBucket
    keys: list[bytes]
    policy: Policy
    notifier: Notifier
    lifts: LiftWorkflow
    amend: AmendWorkflow
    feed: Feed
    _folded: dict[str, tuple[float, int]] = field(default_factory=dict)
    _fold_lock: threading.Lock = field(default_factory=threading.Lock)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a (sync) store call in a worker thread."""
        return await run_in_threadpool(fn, *args, **kwargs)

    async def refused(self, request: Request, err: ApiError, actor: str | None) -> None:
        """Count and audit a refused request. Never records the body or credentials."""
        self.metrics.intake_refused.labels(reason=err.code).inc()
        folded = 0
        if err.code in _COALESCED:
            with self._fold_lock:
                last, pending = self._folded.get(err.code, (0.0, 0))
                now = time.monotonic()
                if now - last < 1.0:
                    self._folded[err.code] = (last, pending + 1)
                    return
                self._folded[err.code] = (now, 0)
                folded = pending
        payload: dict[str, Any] = {
            "method": request.method, "path": request.url.path, "status": err.status,
            "code": err.code, "message": err.message, "fields": err.fields,
            "webhook_id": request.headers.get("webhook-id"),
            "client": request.client.host if request.client else None,
        }
        if folded:
            payload["also_refused_since_last_entry"] = folded
        try:
            await self.db(self.store.record_event, actor or "anonymous", "request.refused",
                          None, payload)
        except Exception as e:  # noqa: BLE001 - the refusal answer must still go out
            log.error("could not audit a refused request: %s", type(e).__name__)


def ctx_of(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes (checked while streaming)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def require(permission: Permission) -> Callable[[Request], Awaitable[UserRecord]]:
    """FastAPI dependency: the authenticated user holding ``permission`` (401 / 403)."""

    async def dependency(request: Request) -> UserRecord:
        ctx = ctx_of(request)
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise ApiError(401, "unauthorized", "a bearer token is required",
                           headers={"WWW-Authenticate": "Bearer"})
        user = await ctx.db(ctx.store.authenticate, token)
        if user is None:
            raise ApiError(401, "unauthorized", "the token is unknown, expired or disabled",
                           headers={"WWW-Authenticate": "Bearer"})
        if not allowed(user.role, permission):
            request.state.actor = user.name
            raise ApiError(403, "forbidden",
                           f"role {user.role.value} may not {permission.value}; "
                           f"allowed: {', '.join(roles_for(permission))}")
        request.state.actor = user.name
        return user

    return dependency
