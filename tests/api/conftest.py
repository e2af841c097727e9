"""API fixtures: a real store on SQLite, a recording fake engine, a settable clock, and an
httpx client over the ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from enforcer.api import create_app
from enforcer.api.testing import FakeClock, RecordingEngine
from enforcer.config import Settings
from enforcer.domain.model import Role
from enforcer.store import Store, upgrade
from tests.api.api_env import Env, make_settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    s = Store.from_url(url, clock=FakeClock())
    yield s
    s.dispose()


@pytest_asyncio.fixture
async def env(store: Store, settings: Settings) -> AsyncIterator[Env]:
    clock = store.clock
    assert isinstance(clock, FakeClock)
    engine, registry = RecordingEngine(), CollectorRegistry()
    app = create_app(settings=settings, store=store, engine=engine, registry=registry,
                     clock=clock)
    # The built-in policy's ordinary reasons need two members of lift-approvers.
    tokens = {role.value: store.add_user(
        f"u-{role.value}", role,
        groups=("lift-approvers",) if role is Role.APPROVER else ())[1] for role in Role}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://enforcer") as client:
        yield Env(client, store, engine, clock, registry, settings, tokens)
