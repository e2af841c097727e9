"""The audit chain's key files: made once (0600 in a 0700 directory), loaded with every
older key (the newest signs), and refused when exposed, misnamed, malformed or short."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import shutil
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from enforcer.errors import ConfigError
from enforcer.store.auditkey import (
    KEY_ID,
    AuditKeyring,
    create_key,
    ephemeral_keyring,
    load_keyring,
)


def test_a_first_key_is_made_private_and_announced(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    d = tmp_path / "state" / "audit-keys"
    with caplog.at_level(logging.WARNING, logger="enforcer.store.auditkey"):
        ring = load_keyring(d)
    [f] = list(d.iterdir())
    assert f.name == f"{ring.current}.key" and KEY_ID.match(ring.current)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert re.fullmatch(r"[0-9a-f]{64}\n", f.read_text())
    assert ring.keys[ring.current] == bytes.fromhex(f.read_text())
    assert ring.where == str(d)
    assert [r.getMessage() for r in caplog.records] == [
        f"created the audit chain key in {d} (keep it: without it the chain cannot be "
        "verified)"]
    assert load_keyring(d).keys == ring.keys  # loaded, not made again
    assert len(list(d.iterdir())) == 1


def test_the_newest_key_signs_and_every_key_verifies(tmp_path: Path) -> None:
    old = create_key(tmp_path, datetime(2025, 1, 1, tzinfo=UTC))
    new = create_key(tmp_path, datetime(2026, 1, 1, tzinfo=UTC))
    assert old.startswith("k20250101000000-") and new.startswith("k20260101000000-")
    (tmp_path / "README.txt").write_text("not a key")
    ring = load_keyring(tmp_path, create=False)
    assert ring.current == new and set(ring.keys) == {old, new}
    data = b"entry"
    assert ring.mac(old, data) == hmac.new(ring.keys[old], data, hashlib.sha256).hexdigest()
    assert ring.mac("k-unknown", data) is None
    assert ring.keys[old].hex() not in repr(ring) and str(ring.keys[old]) not in repr(ring)


def test_generate_id_is_utc_and_random() -> None:
    from datetime import timedelta, timezone

    at = datetime(2026, 3, 4, 7, 6, 5, tzinfo=timezone(timedelta(hours=2)))
    a, b = AuditKeyring.generate_id(at), AuditKeyring.generate_id(at)
    assert a.startswith("k20260304050605-") and KEY_ID.match(a) and a != b
    assert KEY_ID.match(AuditKeyring.generate_id())
    assert KEY_ID.match("k20260304050605") and not KEY_ID.match("k2026030405060")
    assert not KEY_ID.match("xk20260304050605") and not KEY_ID.match("k20260304050605-abcd0")


def test_no_key_and_not_allowed_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_keyring(tmp_path, create=False)
    assert str(e.value) == f"{tmp_path}: no audit key (*.key) found"
    with pytest.raises(ConfigError) as e:
        load_keyring(tmp_path / "absent", create=False)
    assert str(e.value) == f"{tmp_path / 'absent'}: no audit key (*.key) found"
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_directory(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="no audit key"):
        load_keyring(f, create=False)  # not a directory: nothing in it


def _load_error(keys: Path) -> str:
    try:
        load_keyring(keys, create=False)
    except ConfigError as e:
        return str(e)
    return "loaded"


def test_a_directory_that_cannot_be_listed_is_a_clear_error() -> None:
    """A key directory this process may enter but not list (mode 0311 to its owner):
    ``iterdir`` fails after ``is_dir`` succeeded. Root lists anything, so as root the
    check runs in a forked child that became the unprivileged user nobody."""
    base = Path(tempfile.mkdtemp(prefix="enforcer-keydir-", dir="/tmp"))
    try:
        base.chmod(0o711)
        keys = base / "keys"
        keys.mkdir(mode=0o700)
        # Listed, it is merely empty (this also ties the test to load_keyring for tools
        # that select tests by what they call in this process, e.g. mutmut).
        assert _load_error(keys) == f"{keys}: no audit key (*.key) found"
        if os.geteuid() != 0:
            keys.chmod(0o311)
            out = _load_error(keys)
        else:
            os.chown(keys, 65534, 65534)
            keys.chmod(0o311)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: drop to nobody, try, report, exit at once
                try:
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                    os.write(w, _load_error(keys).encode())
                finally:
                    os._exit(0)
            os.close(w)
            with os.fdopen(r) as pipe:
                out = pipe.read()
            os.waitpid(pid, 0)
        assert out == f"{keys}: cannot read the audit key directory (Permission denied)"
    finally:
        for p in (base / "keys", base):
            with contextlib.suppress(OSError):
                p.chmod(0o700)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("name", "content", "mode", "message"), [
    ("mykey.key", "00" * 32, 0o600, "not an audit key file name (k<YYYYMMDDHHMMSS>"
     "[-xxxx].key)"),
    ("k20260101000000.key", "00" * 32, 0o640, "an audit key must not be readable by "
     "group or others (mode 640; chmod 600)"),
    ("k20260101000000.key", "00" * 32, 0o602, "an audit key must not be readable by "
     "group or others (mode 602; chmod 600)"),
    ("k20260101000000.key", "zz" * 32, 0o600, "not an audit key (ValueError)"),
    ("k20260101000000.key", "é", 0o600, "not an audit key (UnicodeDecodeError)"),
    ("k20260101000000.key", "00" * 31, 0o600, "an audit key must be at least 32 bytes "
     "(64 hex digits)"),
])
def test_bad_key_files_are_refused(tmp_path: Path, name: str, content: str, mode: int,
                                   message: str) -> None:
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    p.chmod(mode)
    with pytest.raises(ConfigError) as e:
        load_keyring(tmp_path)
    assert str(e.value) == f"{p}: {message}"


def test_a_key_of_exactly_32_bytes_with_whitespace_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "k20260101000000-abcd.key"
    p.write_text("  " + "ab" * 32 + "\n\n")
    p.chmod(0o400)
    ring = load_keyring(tmp_path)
    assert ring.current == "k20260101000000-abcd" and ring.keys[ring.current] == b"\xab" * 32


def test_the_ephemeral_keyring_is_one_per_process() -> None:
    a, b = ephemeral_keyring(), ephemeral_keyring()
    assert a is b and a.where == "ephemeral" and len(a.keys[a.current]) == 32
    with pytest.raises(ValueError, match="current audit key k1 is not in the keyring"):
        AuditKeyring("k1", {})


def test_a_fresh_ephemeral_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("enforcer.store.auditkey._EPHEMERAL", [])
    ring = ephemeral_keyring()
    assert ephemeral_keyring() is ring
    assert KEY_ID.match(ring.current) and ring.where == "ephemeral"
    assert list(ring.keys) == [ring.current] and len(ring.keys[ring.current]) == 32
    with pytest.raises(TypeError):
        ring.keys[ring.current] = b"x"  # type: ignore[index]


def test_key_ids_are_utc_whatever_the_hosts_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from datetime import timedelta, timezone

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        at = datetime(2026, 3, 4, 7, 6, 5, tzinfo=timezone(timedelta(hours=2)))
        assert AuditKeyring.generate_id(at).startswith("k20260304050605-")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
