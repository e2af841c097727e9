"""The Ed25519 key that signs evidence bundles (``cryptography``).

The private key is a PEM file outside the database (mode 0600, made on first use); the
public key is printed by ``enforcer audit pubkey`` as ``ed25519:<base64 raw key>``, and
its fingerprint (SHA-256 of the raw key, hex) is recorded in the audit chain
(``audit.keys`` entries) and in every anchor line, so a recipient can tell the key that
signed a bundle is the one the enforcer announced.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enforcer.errors import ConfigError

PREFIX = "ed25519:"


def load_signing_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The private key in ``path``; with ``create``, a new one is written (0600) when
    the file does not exist. Raises :class:`ConfigError` (never showing the key)."""
    if not path.exists():
        if not create:
            raise ConfigError(f"{path}: no evidence signing key")
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: the evidence signing key must not be readable by group "
                          f"or others (mode {stat.S_IMODE(mode):o}; chmod 600)")
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ConfigError(f"{path}: not a PEM private key ({type(e).__name__})") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 key")
    return loaded


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def public_text(key: Ed25519PrivateKey) -> str:
    """``ed25519:<base64 of the 32-byte public key>``."""
    return PREFIX + base64.b64encode(raw_public(key)).decode()


def fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
