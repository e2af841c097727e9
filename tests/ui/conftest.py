"""The web page in process: the real API app (with ``/ui/``) on a SQLite store, the
story's board policy, a board of three and an approver outside it. One browser-like
client (its own cookie jar) per person."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest_asyncio
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from enforcer.api import create_app
from enforcer.api.testing import FakeClock, RecordingEngine
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Role
from enforcer.notify import LogNotifier
from enforcer.store import Store, TargetSpec, upgrade
from tests.api.api_env import make_settings, order_body
from tests.lifts.conftest import BOARD, policy_with

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m[1]


@dataclass
class Ui:
    app: FastAPI
    store: Store
    clock: FakeClock
    tokens: dict[str, str]
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def browser(self) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                              base_url="http://enforcer", follow_redirects=False)
        self.clients.append(c)
        return c

    async def signed_in(self, name: str) -> httpx.AsyncClient:
        c = self.browser()
        form = await c.get("/ui/login")
        r = await c.post("/ui/login", data={"csrf": csrf_of(form.text),
                                            "token": self.tokens[name]})
        assert r.status_code == 303, r.text
        return c

    async def verified_order(self) -> str:
        r = await self.browser().post("/v1/orders", json=order_body(reason="harassment"),
                                      headers={"authorization":
                                               f"Bearer {self.tokens['eng']}"})
        assert r.status_code == 202, r.text
        order_id: str = r.json()["order_id"]
        [t] = self.store.replace_targets(order_id, [TargetSpec(
            "cmts1", Mac("00:11:22:33:44:55"), DeviceKind.CABLE_MODEM, "cm_ctrl")])
        self.store.update_target(t.id, actor="engine", audit_action="target.applied",
                                 state="applied")
        self.store.set_order_state(order_id, OrderState.VERIFIED, actor="engine")
        return order_id

    async def lift_requested(self) -> str:
        order_id = await self.verified_order()
        r = await self.browser().post(f"/v1/orders/{order_id}/lift",
                                      json={"reason": "board hearing held"},
                                      headers={"authorization": f"Bearer {self.tokens['eng']}"})
        assert r.status_code == 202, r.text
        return order_id


@pytest_asyncio.fixture
async def ui(tmp_path: Path) -> AsyncIterator[Ui]:
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    upgrade(url)
    store = Store.from_url(url, clock=FakeClock())
    clock = store.clock
    assert isinstance(clock, FakeClock)
    app = create_app(settings=make_settings(), store=store, engine=RecordingEngine(),
                     registry=CollectorRegistry(), clock=clock,
                     policy=policy_with(BOARD), notifier=LogNotifier())
    tokens = {"eng": store.add_user("eng", Role.ENGINEER)[1],
              "aud": store.add_user("aud", Role.AUDITOR)[1]}
    for name in ("alice", "bob", "carol"):
        tokens[name] = store.add_user(name, Role.APPROVER, groups=("hs-board",))[1]
    tokens["dave"] = store.add_user("dave", Role.APPROVER)[1]
    env = Ui(app, store, clock, tokens)
    yield env
    for c in env.clients:
        await c.aclose()
    store.dispose()
