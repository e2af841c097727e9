"""API users and their bearer tokens.

A token is ``enf_<prefix>_<secret>``: the prefix (8 hex characters) finds the row, the
store keeps only the SHA-256 of the whole token and compares it in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from enforcer.domain.model import Role
from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.errors import Conflict, NotFound
from enforcer.store.records import UserRecord

_TOKEN = re.compile(r"^enf_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Names the daemon itself writes into the audit log as the actor (or that stand for a
#: caller who is not a user): a user so named could pass their actions off as the
#: engine's. Compared case-insensitively.
RESERVED_NAMES = frozenset({
    "engine", "reconciler", "watcher", "system", "provisioning", "dry-run", "cli",
    "anonymous", "escalation-system", "housekeeping", "notifier", "outbox", "sweep",
    "enforcer", "root", "admin-cli"})


def check_user_name(name: str) -> str:
    """A user name: 1-100 characters (letters, digits, ``. _ @ -``), not reserved."""
    if not _NAME.match(name):
        raise ValueError("a user name is 1-100 characters: letters, digits, . _ @ -")
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"user name {name!r} is reserved (the daemon writes it into the "
                         "audit log as its own actor)")
    return name


def check_group(name: str) -> str:
    """A group name: 1-100 characters, letters, digits, ``.``, ``_``, ``-``."""
    if not _GROUP.match(name):
        raise ValueError(f"bad group name {name!r}: 1-100 characters: letters, digits, . _ -")
    return name


def _groups_of(session: Session, user_id: int) -> tuple[str, ...]:
    return tuple(session.scalars(select(s.UserGroup.group_name).where(
        s.UserGroup.user_id == user_id).order_by(s.UserGroup.group_name)))


def _user(session: Session, row: s.User) -> UserRecord:
    return convert.user(row, _groups_of(session, row.id))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """(prefix, token)."""
    prefix = secrets.token_hex(4)
    return prefix, f"enf_{prefix}_{secrets.token_urlsafe(32)}"


class UsersMixin(StoreBase):
    def add_user(self, name: str, role: Role, expires_at: datetime | None = None, *,
                 actor: str = "cli", groups: Iterable[str] = ()) -> tuple[UserRecord, str]:
        """Create a user (a member of ``groups``); returns the record and the plaintext
        token (shown once, never stored). Raises :class:`Conflict` if the name is taken."""
        check_user_name(name)
        role = Role(role)
        group_names = sorted({check_group(g) for g in groups})
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
                for g in group_names:
                    session.add(s.UserGroup(user_id=row.id, group_name=g))
                session.flush()
                self.audit(session, actor, "user.added", None, {
                    "name": name, "role": role, "token_prefix": prefix,
                    "expires_at": expires_at, "groups": group_names})
                return _user(session, row), token
        except IntegrityError as e:  # pragma: no cover - raced with another writer
            raise Conflict(f"user {name!r} already exists") from e

    def authenticate(self, token: str) -> UserRecord | None:
        """The enabled, unexpired user owning ``token``, or None."""
        m = _TOKEN.match(token)
        if m is None:
            return None
        digest = token_digest(token)
        now = self.clock()
        # Plain statements (no ORM objects): this runs for every API request.
        users, groups = s.User.__table__.c, s.UserGroup.__table__.c
        with self.read_session() as session:
            conn = session.connection()
            for row in conn.execute(select(s.User.__table__).where(
                    users.token_prefix == m[1])):
                if not hmac.compare_digest(row.token_hash, digest):
                    continue
                if row.disabled or (row.expires_at is not None and row.expires_at <= now):
                    return None
                return convert.user(row, tuple(conn.execute(
                    select(groups.group_name).where(groups.user_id == row.id)
                    .order_by(groups.group_name)).scalars()))
        return None

    def get_user(self, name: str) -> UserRecord:
        with self.read_session() as session:
            row = session.scalar(select(s.User).where(s.User.name == name))
            if row is None:
                raise NotFound(f"no user {name!r}")
            return _user(session, row)

    def list_users(self) -> list[UserRecord]:
        with self.read_session() as session:
            return [_user(session, u)
                    for u in session.scalars(select(s.User).order_by(s.User.name))]

    def eligible_approvers(self, group: str | None) -> list[str]:
        """Names of enabled, unexpired users with the approver role (in ``group``, or
        all of them when ``group`` is None), sorted."""
        q = select(s.User).where(s.User.role == Role.APPROVER.value,
                                 s.User.disabled.is_(False))
        if group is not None:
            q = q.join(s.UserGroup, s.UserGroup.user_id == s.User.id).where(
                s.UserGroup.group_name == group)
        now = self.clock()
        with self.read_session() as session:
            return sorted({u.name for u in session.scalars(q)
                           if u.expires_at is None or u.expires_at > now})

    def disable_user(self, name: str, *, actor: str) -> UserRecord:
        with self.write_session() as session:
            row = session.scalar(select(s.User).where(s.User.name == name))
            if row is None:
                raise NotFound(f"no user {name!r}")
            row.disabled = True
            session.flush()
            self.audit(session, actor, "user.disabled", None, {"name": name})
            return _user(session, row)
