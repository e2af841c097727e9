"""Sessions of the web page (``/ui/``).

A user signs in once with their own API token; the page then carries a random session
cookie. Only the cookie's SHA-256 is stored, with the session's CSRF token and its
expiry. A session is honoured only while it is unexpired **and** its user is enabled and
unexpired: disabling a user ends their sessions at the next request, without a write.
Sign-in and sign-out are audited (``ui.signed_in``, ``ui.signed_out``); sessions past
their expiry are deleted when someone next signs in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.records import UserRecord
from enforcer.store.users import _user


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8")).hexdigest()


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class UiSession:
    """A live session: whose it is, its CSRF token and when it ends."""

    user: UserRecord
    csrf: str
    expires_at: datetime


class SessionsMixin(StoreBase):
    def open_ui_session(self, user: UserRecord, lifetime: timedelta, *,
                        client: str | None = None) -> tuple[str, UiSession]:
        """A new session for ``user`` (already authenticated by token): returns the
        cookie value (shown to the browser only) and the session."""
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self.write_session() as session:
            purged = _rowcount(session.execute(delete(s.UiSession).where(
                s.UiSession.expires_at <= now)))
            session.add(s.UiSession(id_sha256=_digest(cookie), user_id=user.id, csrf=csrf,
                                    created_at=now, expires_at=now + lifetime))
            session.flush()
            self.audit(session, user.name, "ui.signed_in", None, {
                "client": client, "expires_at": now + lifetime,
                "expired_sessions_removed": purged})
        return cookie, UiSession(user, csrf, now + lifetime)

    def ui_session(self, cookie: str) -> UiSession | None:
        """The live session for ``cookie``, or None (unknown, expired, or its user is
        disabled or expired)."""
        now = self.clock()
        with self.read_session() as session:
            row = session.get(s.UiSession, _digest(cookie))
            if row is None or row.expires_at <= now:
                return None
            user = session.get(s.User, row.user_id)
            if user is None or user.disabled or (
                    user.expires_at is not None and user.expires_at <= now):
                return None
            return UiSession(_user(session, user), row.csrf, row.expires_at)

    def close_ui_session(self, cookie: str, *, actor: str) -> bool:
        """End the session (sign out); False if there was none."""
        with self.write_session() as session:
            gone = _rowcount(session.execute(delete(s.UiSession).where(
                s.UiSession.id_sha256 == _digest(cookie))))
            if gone:
                self.audit(session, actor, "ui.signed_out", None, {})
            return bool(gone)

    def count_ui_sessions(self) -> int:
        with self.read_session() as session:
            return len(session.scalars(select(s.UiSession.id_sha256)).all())
