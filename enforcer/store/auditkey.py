"""The audit chain's HMAC keys: kept in files outside the database, never in it.

Each entry's hash is HMAC-SHA256 under one key, and the entry records that key's id
(``audit_log.key_id``), so whoever can write the database but cannot read the key
directory cannot forge or rewrite an entry and recompute the chain. A key directory
holds one file per key, ``<key_id>.key`` (64 hex digits, mode 0600, directory 0700);
the newest id is the one new entries use, older ones stay for verification (rotation:
``enforcer audit rotate-key``, then restart every instance; never delete an old key
while entries made with it are kept).
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from enforcer.errors import ConfigError

log = logging.getLogger(__name__)
KEY_ID = re.compile(r"^k[0-9]{14}(-[0-9a-f]{4})?$")
_SUFFIX = ".key"


@dataclass(frozen=True, slots=True)
class AuditKeyring:
    """``current`` signs new entries; ``keys`` (id -> key) verify old and new ones."""

    current: str
    keys: Mapping[str, bytes] = field(repr=False)
    where: str = "memory"

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"current audit key {self.current} is not in the keyring")

    def mac(self, key_id: str, data: bytes) -> str | None:
        """HMAC-SHA256 of ``data`` under ``key_id`` (hex), None for an unknown key."""
        key = self.keys.get(key_id)
        if key is None:
            return None
        return hmac.new(key, data, "sha256").hexdigest()

    @staticmethod
    def generate_id(now: datetime | None = None) -> str:
        at = (now or datetime.now(UTC)).astimezone(UTC)
        return f"k{at:%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


def _check_private(path: Path, what: str) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: {what} must not be readable by group or others "
                          f"(mode {stat.S_IMODE(mode):o}; chmod 600)")


def create_key(directory: Path, now: datetime | None = None) -> str:
    """Write a new random key file (0600) into ``directory`` (created 0700); its id."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_id = AuditKeyring.generate_id(now)
    path = directory / f"{key_id}{_SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_bytes(32).hex() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return key_id


def load_keyring(directory: Path, *, create: bool = True) -> AuditKeyring:
    """The keys in ``directory``; with ``create``, a first key is made when there is
    none. Raises :class:`ConfigError` for an unreadable, malformed or exposed key."""
    try:
        files = sorted(p for p in directory.iterdir() if p.name.endswith(_SUFFIX)) \
            if directory.is_dir() else []
    except OSError as e:
        raise ConfigError(f"{directory}: cannot read the audit key directory "
                          f"({e.strerror})") from None
    if not files:
        if not create:
            raise ConfigError(f"{directory}: no audit key (*.key) found")
        create_key(directory)
        log.warning("created the audit chain key in %s (keep it: without it the chain "
                    "cannot be verified)", directory)
        return load_keyring(directory, create=False)
    keys: dict[str, bytes] = {}
    for path in files:
        key_id = path.name[:-len(_SUFFIX)]
        if not KEY_ID.match(key_id):
            raise ConfigError(f"{path}: not an audit key file name (k<YYYYMMDDHHMMSS>"
                              "[-xxxx].key)")
        _check_private(path, "an audit key")
        try:
            raw = path.read_text(encoding="ascii").strip()
            key = bytes.fromhex(raw)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ConfigError(f"{path}: not an audit key ({type(e).__name__})") from None
        if len(key) < 32:
            raise ConfigError(f"{path}: an audit key must be at least 32 bytes (64 hex "
                              "digits)")
        keys[key_id] = key
    return AuditKeyring(max(keys), MappingProxyType(keys), str(directory))


_EPHEMERAL: list[AuditKeyring] = []
_EPHEMERAL_LOCK = threading.Lock()


def ephemeral_keyring() -> AuditKeyring:
    """A random key held only by this process (stores opened without a key directory,
    e.g. in unit tests); the daemon and the CLI always load the configured keys."""
    with _EPHEMERAL_LOCK:
        if not _EPHEMERAL:
            key_id = AuditKeyring.generate_id()
            _EPHEMERAL.append(AuditKeyring(
                key_id, MappingProxyType({key_id: secrets.token_bytes(32)}), "ephemeral"))
        return _EPHEMERAL[0]
