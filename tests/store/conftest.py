"""Store fixtures: every store test runs on SQLite and on PostgreSQL (a fresh schema per
test on 127.0.0.1:5432, database ``test``; skipped with a reason if unreachable)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from enforcer.api.testing import FakeClock
from enforcer.store import Store, upgrade

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_admin() -> object:
    import psycopg

    return psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                           autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_available() -> bool:
    try:
        conn = _pg_admin()
    except Exception as e:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {type(e).__name__}")
    conn.close()  # type: ignore[attr-defined]
    return True


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    schema = f"enf_test_{uuid.uuid4().hex[:12]}"
    conn = _pg_admin()
    conn.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[attr-defined]
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[attr-defined]
        conn.close()  # type: ignore[attr-defined]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'enforcer.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    upgrade(db_url)
    s = Store.from_url(db_url, clock=clock)
    try:
        yield s
    finally:
        s.dispose()
