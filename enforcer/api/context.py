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

from enforcer.api.errors import ApiError
from enforcer.api.ratelimit import TokenBucket
from enforcer.auth import Permission, allowed, bearer_token, roles_for
from enforcer.config import Settings
from enforcer.engine.contract import EngineAPI
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
#: Header values (``webhook-id``) and messages are stored at most this long.
MAX_STORED_HEADER = 200
#: Client addresses tracked for folding unauthenticated refusals; past this, the rest
#: share one summary.
MAX_FOLD_KEYS = 4096


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    engine: EngineAPI
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
    _where: dict[str, TokenBucket] = field(default_factory=dict)
    _fold_lock: threading.Lock = field(default_factory=threading.Lock)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a (sync) store call in a worker thread."""
        return await run_in_threadpool(fn, *args, **kwargs)

    async def refused(self, request: Request, err: ApiError, actor: str | None) -> None:
        """Count and audit a refused request. Never records the body or credentials;
        header values are stored truncated (:data:`MAX_STORED_HEADER`).

        A refusal nobody is proven behind (``actor`` None: no valid token or signature)
        is counted in ``enforcer_unauthenticated_refused_total`` and audited at most once
        per ``api.refusal_audit_interval_s`` per client address; the entry says how many
        were folded into it. Rate-limit refusals are audited at most once a second."""
        self.metrics.intake_refused.labels(reason=err.code).inc()
        client = request.client.host if request.client else "unknown"
        key: str | None = None
        interval = 1.0
        if actor is None:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            self.metrics.unauthenticated_refused.labels(route=route, code=err.code).inc()
            key, interval = f"anon:{client}", self.settings.api.refusal_audit_interval_s
        elif err.code in _COALESCED:
            key = err.code
        folded = 0
        if key is not None:
            write, folded = self._fold(key, interval)
            if not write:
                return
        payload: dict[str, Any] = {
            "method": request.method, "path": clip(request.url.path), "status": err.status,
            "code": err.code, "message": clip(err.message),
            "fields": ({clip(k, 100): clip(v) for k, v in err.fields.items()}
                       if err.fields else err.fields),
            "webhook_id": clip(request.headers.get("webhook-id")),
            "client": client,
        }
        if folded:
            payload["also_refused_since_last_entry"] = folded
        try:
            await self.db(self.store.record_event, actor or "anonymous", "request.refused",
                          None, payload)
        except Exception as e:  # noqa: BLE001 - the refusal answer must still go out
            log.error("could not audit a refused request: %s", type(e).__name__)

    def where_allowed(self, user: str) -> float:
        """0 if ``user`` may ask ``/v1/where`` now, else the seconds to wait (each user
        has their own bucket: one user's loop does not block another's)."""
        with self._fold_lock:
            bucket = self._where.get(user)
            if bucket is None:
                api = self.settings.api
                bucket = self._where[user] = TokenBucket(api.where_rate_per_s,
                                                         api.where_burst)
        return bucket.take()

    def _fold(self, key: str, interval: float) -> tuple[bool, int]:
        """(write an entry now?, refusals folded since the last entry for ``key``)."""
        with self._fold_lock:
            now = time.monotonic()
            if key not in self._folded and len(self._folded) >= MAX_FOLD_KEYS:
                for k, (last, _n) in list(self._folded.items()):
                    if now - last >= interval and not _n:
                        del self._folded[k]
                if len(self._folded) >= MAX_FOLD_KEYS:
                    key = "anon:*"  # too many sources at once: one summary for the rest
            last, pending = self._folded.get(key, (-interval - 1.0, 0))
            if now - last < interval:
                self._folded[key] = (last, pending + 1)
                return False, 0
            self._folded[key] = (now, 0)
            return True, pending


def clip(value: str | None, limit: int = MAX_STORED_HEADER) -> str | None:
    """``value`` cut to ``limit`` characters, saying how long it was."""
    if value is None or len(value) <= limit:
        return value
    return f"{value[:limit]}...({len(value)} characters)"


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
