"""The evidence signing key file: made once (0600, in a 0700 directory), loaded back,
refused when readable by others, not PEM, or not Ed25519; its public text and
fingerprint."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from enforcer.audit.signing import (
    PREFIX,
    fingerprint,
    load_signing_key,
    public_text,
    raw_public,
)
from enforcer.errors import ConfigError


def test_made_once_private_and_loaded_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "evidence" / "signing.pem"
    key = load_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_signing_key(path, create=False)
    assert raw_public(again) == raw_public(key)
    assert raw_public(load_signing_key(path)) == raw_public(key)  # not replaced
    other = load_signing_key(tmp_path / "other.pem")
    assert raw_public(other) != raw_public(key)


def test_a_missing_key_is_not_made_when_told_not_to(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    with pytest.raises(ConfigError) as e:
        load_signing_key(path, create=False)
    assert str(e.value) == f"{path}: no evidence signing key"
    assert not path.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o610, 0o601])
def test_a_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.pem"
    load_signing_key(path)
    path.chmod(mode)
    with pytest.raises(ConfigError) as e:
        load_signing_key(path)
    assert str(e.value) == (f"{path}: the evidence signing key must not be readable by "
                            f"group or others (mode {mode:o}; chmod 600)")
    path.chmod(0o400)
    load_signing_key(path)


def test_not_a_pem_key_or_not_ed25519(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as e:
        load_signing_key(path)
    assert str(e.value) == f"{path}: not a PEM private key (ValueError)"
    assert "not a key" not in str(e.value)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(ec_key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    with pytest.raises(ConfigError) as e:
        load_signing_key(path)
    assert str(e.value) == f"{path}: not an Ed25519 key"


def test_public_text_and_fingerprint(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "k.pem")
    raw = raw_public(key)
    assert len(raw) == 32
    assert PREFIX == "ed25519:"
    assert public_text(key) == "ed25519:" + base64.b64encode(raw).decode()
    assert fingerprint(raw) == hashlib.sha256(raw).hexdigest()
