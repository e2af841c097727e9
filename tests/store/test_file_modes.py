"""State files are private whatever the umask: the SQLite database (token hashes, the
audit trail) and its -wal/-shm files 0600, in a directory created 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from enforcer.domain.model import Role
from enforcer.store import Store, upgrade


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)  # the widest umask: nothing is masked off
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_database_and_directory_are_private(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    url = f"sqlite:///{state / 'enforcer.db'}"
    upgrade(url)
    store = Store.from_url(url)
    try:
        store.add_user("someone", Role.AUDITOR)  # a write: -wal and -shm exist now
        files = [p for p in state.iterdir()]
        assert {p.name for p in files} >= {"enforcer.db", "enforcer.db-wal", "enforcer.db-shm"}
        for p in files:
            assert _mode(p) == 0o600, (p.name, oct(_mode(p)))
        assert _mode(state) == 0o700 and _mode(state.parent) == 0o700
    finally:
        store.dispose()


@pytest.mark.usefixtures("open_umask")
def test_an_existing_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    os.chmod(db, 0o644)
    Store.from_url(url).dispose()
    assert _mode(db) == 0o600


@pytest.mark.usefixtures("open_umask")
def test_daemon_state_dir_is_private(tmp_path: Path) -> None:
    from enforcer.store.db import private_dir
    d = private_dir(tmp_path / "x" / "y")
    assert _mode(d) == 0o700 and _mode(d.parent) == 0o700
