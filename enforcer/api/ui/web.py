"""What every page needs: templates, the security headers (a strict Content Security
Policy: no script at all, styles and images from the daemon only), the session cookie,
CSRF checks and form reading."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from enforcer.api.context import ApiContext, ctx_of, read_body
from enforcer.api.errors import ApiError
from enforcer.auth import Permission, allowed
from enforcer.store.sessions import UiSession

SESSION_COOKIE = "enforcer_session"
LOGIN_COOKIE = "enforcer_login"
#: Nothing runs on these pages: no script source is allowed at all.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("enforcer.api.ui", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def ago(at: datetime | None, now: datetime) -> str:
    """``at`` relative to ``now``: ``3 min ago``, ``in 2 h 5 min``."""
    if at is None:
        return ""
    secs = (now - at).total_seconds()
    return f"{span(abs(secs))} ago" if secs >= 0 else f"in {span(-secs)}"


def span(secs: float) -> str:
    s = int(secs)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def utc(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


_env.filters["utc"] = utc
_env.globals["allowed"] = allowed
_env.globals["P"] = Permission


def static_css() -> bytes:
    return resources.files("enforcer.api.ui").joinpath("static/ui.css").read_bytes()


def page(request: Request, template: str, *, session: UiSession | None, status: int = 200,
         **values: Any) -> HTMLResponse:
    """Render ``template`` with the signed-in user (if any), under the security headers."""
    now = ctx_of(request).clock()
    html = _env.get_template(template).render(
        user=session.user if session else None, csrf=session.csrf if session else "",
        now=now, ago=lambda at: ago(at, now), path=request.url.path, **values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(to: str) -> RedirectResponse:
    """After a form: 303 See Other, so a reload does not post again."""
    return RedirectResponse(to, status_code=303, headers=SECURITY_HEADERS)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(resp: Response, request: Request, cookie: str,
                       lifetime: timedelta) -> None:
    resp.set_cookie(SESSION_COOKIE, cookie, max_age=int(lifetime.total_seconds()),
                    path="/ui", httponly=True, secure=_secure(request), samesite="strict")


def clear_session_cookie(resp: Response, request: Request) -> None:
    resp.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, secure=_secure(request),
                       samesite="strict")


def login_page(request: Request, *, error: str | None = None,
               status: int = 200) -> HTMLResponse:
    """The sign-in form with a fresh double-submit token (there is no session yet, so
    the token is a cookie the form must echo)."""
    nonce = secrets.token_urlsafe(24)
    resp = page(request, "login.html", session=None, status=status, title="Sign in",
                nonce=nonce, error=error)
    resp.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path="/ui/login", httponly=True,
                    secure=_secure(request), samesite="strict")
    return resp


async def current(request: Request) -> UiSession | None:
    """The live session this request carries, or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or len(cookie) > 200:
        return None
    ctx = ctx_of(request)
    found = await ctx.db(ctx.store.ui_session, cookie)
    if found is not None:
        request.state.actor = found.user.name
    return found


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each field)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await read_body(request, ctx_of(request).settings.api.max_body_bytes)
    if raw and ctype != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "send the page's form")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(422, "invalid", "the form could not be read") from None
    return {k: v[0] for k, v in fields.items()}


def csrf_ok(expected: str | None, form: dict[str, str]) -> bool:
    sent = form.get("csrf", "")
    return bool(expected) and bool(sent) and hmac.compare_digest(
        sent.encode("utf-8"), (expected or "").encode("utf-8"))


async def refuse(request: Request, session: UiSession | None, status: int, code: str,
                 message: str) -> HTMLResponse:
    """Audit a refused form (as the API audits a refused request) and say why."""
    ctx: ApiContext = ctx_of(request)
    await ctx.refused(request, ApiError(status, code, message),
                      session.user.name if session else None)
    return page(request, "error.html", session=session, status=status, title="Refused",
                message=message)
