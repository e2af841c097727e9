"""Security test fixtures: the in-process API (real SQLite store, recording engine,
settable clock) shared with tests/api, re-exported here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from enforcer.api import create_app
from enforcer.api.testing import FakeClock, RecordingEngine
from enforcer.domain.model import Role
from enforcer.store import Store, upgrade
from tests.api.api_env import Env, make_settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'sec.db'}"
    upgrade(url)
    s = Store.from_url(url, clock=FakeClock())
    yield s
    s.dispose()


@pytest_asyncio.fixture
async def env(store: Store) -> AsyncIterator[Env]:
    clock = store.clock
    assert isinstance(clock, FakeClock)
    settings = make_settings()
    engine, registry = RecordingEngine(), CollectorRegistry()
    app = create_app(settings=settings, store=store, engine=engine, registry=registry,
                     clock=clock)
    tokens = {role.value: store.add_user(f"u-{role.value}", role)[1] for role in Role}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://enforcer") as client:
        yield Env(client, store, engine, clock, registry, settings, tokens)
