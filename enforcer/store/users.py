"""API users and their bearer tokens.

A token is ``enf_<prefix>_<secret>``: the prefix (8 hex characters) finds the row, the
store keeps only the SHA-256 of the whole token and compares it in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from enforcer.domain.model import Role
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import Conflict, NotFound
from enforcer.store.records import UserRecord

_TOKEN = re.compile(r"^enf_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """(prefix, token)."""
    prefix = secrets.token_hex(4)
    return prefix, f"enf_{prefix}_{secrets.token_urlsafe(32)}"


class UsersMixin(StoreBase):
    def add_user(self, name: str, role: Role, expires_at: datetime | None = None, *,
                 actor: str = "cli") -> tuple[UserRecord, str]:
        """Create a user; returns the record and the plaintext token (shown once, never
        stored). Raises :class:`Conflict` if the name is taken."""
        if not _NAME.match(name):
            raise ValueError("a user name is 1-100 characters: letters, digits, . _ @ -")
        role = Role(role)
        prefix, token = new_token()
        try:
            with self.write_session() as session:
                if session.scalar(select(s.User.id).where(s.User.name == name)) is not None:
                    raise Conflict(f"user {name!r} already exists")
                row = s.User(name=name, role=role.value, token_prefix=prefix,
                             token_hash=token_digest(token), created_at=self.clock(),
                             disabled=False, expires_at=expires_at)
                session.add(row)
                session.flush()
                self.audit(session, actor, "user.added", None, {
                    "name": name, "role": role, "token_prefix": prefix,
                    "expires_at": expires_at})
                return convert.user(row), token
        except IntegrityError as e:  # pragma: no cover - raced with another writer
            raise Conflict(f"user {name!r} already exists") from e

    def authenticate(self, token: str) -> UserRecord | None:
        """The enabled, unexpired user owning ``token``, or None."""
        m = _TOKEN.match(token)
        if m is None:
            return None
        digest = token_digest(token)
        now = self.clock()
        with self.read_session() as session:
            for row in session.scalars(select(s.User).where(s.User.token_prefix == m[1])):
                if not hmac.compare_digest(row.token_hash, digest):
                    continue
                if row.disabled or (row.expires_at is not None and row.expires_at <= now):
                    return None
                return convert.user(row)
        return None

    def get_user(self, name: str) -> UserRecord:
        with self.read_session() as session:
            row = session.scalar(select(s.User).where(s.User.name == name))
            if row is None:
                raise NotFound(f"no user {name!r}")
            return convert.user(row)

    def list_users(self) -> list[UserRecord]:
        with self.read_session() as session:
            return [convert.user(u) for u in session.scalars(select(s.User).order_by(s.User.name))]

    def disable_user(self, name: str, *, actor: str) -> UserRecord:
        with self.write_session() as session:
            row = session.scalar(select(s.User).where(s.User.name == name))
            if row is None:
                raise NotFound(f"no user {name!r}")
            row.disabled = True
            session.flush()
            self.audit(session, actor, "user.disabled", None, {"name": name})
            return convert.user(row)
