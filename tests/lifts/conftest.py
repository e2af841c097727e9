"""Lift workflow fixtures: the real API app on a SQLite store with a settable clock, the
recording fake engine, a policy chosen per test, and a board of approvers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from enforcer.api import create_app
from enforcer.api.testing import FakeClock, RecordingEngine
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Role
from enforcer.notify import LogNotifier
from enforcer.policy import Policy, parse_policy
from enforcer.store import Store, TargetSpec, upgrade
from tests.api.api_env import Env, make_settings, order_body


def policy_with(lift: dict[str, Any], **reason: Any) -> Policy:
    """Every reason lifts with ``lift`` (harassment and threats footprint-scoped)."""
    reasons = {r.value: {"default_scope": "footprint" if r in (
        Reason.HARASSMENT, Reason.THREAT_OF_VIOLENCE) else "node", "lift": lift, **reason}
        for r in Reason}
    return parse_policy({"reasons": reasons}, "test policy")


BOARD = {"group": "hs-board", "rule": "unanimous", "time_limit_hours": 72,
         "requester_may_approve": False}


class LiftEnv(Env):
    notifier: LogNotifier

    async def verified_order(self, reason: str = "harassment") -> str:
        r = await self.client.post("/v1/orders", json=order_body(reason=reason),
                                   headers=self.auth("engineer"))
        assert r.status_code == 202, r.text
        order_id: str = r.json()["order_id"]
        [t] = self.store.replace_targets(order_id, [TargetSpec(
            "cmts1", Mac("00:11:22:33:44:55"), DeviceKind.CABLE_MODEM, "cm_ctrl")])
        self.store.update_target(t.id, actor="engine", audit_action="target.applied",
                                 state="applied", transcript="cm-ctrl set; community=s3cret")
        self.store.set_order_state(order_id, OrderState.VERIFIED, actor="engine")
        return order_id

    def add(self, name: str, role: Role = Role.APPROVER, groups: tuple[str, ...] = ()) -> str:
        self.tokens[name] = self.store.add_user(name, role, groups=groups)[1]
        return name

    async def lift(self, order_id: str, role: str = "engineer", **body: Any) -> httpx.Response:
        return await self.client.post(f"/v1/orders/{order_id}/lift",
                                      json={"reason": "settled", **body},
                                      headers=self.auth(role))

    async def decide(self, order_id: str, who: str, decision: str = "approve",
                     **body: Any) -> httpx.Response:
        return await self.client.post(f"/v1/orders/{order_id}/approvals",
                                      json={"decision": decision, **body},
                                      headers=self.auth(who))

    def state(self, order_id: str) -> str:
        return self.store.get_order(order_id).state.value


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'lifts.db'}"
    upgrade(url)
    s = Store.from_url(url, clock=FakeClock())
    yield s
    s.dispose()


MakeEnv = Callable[[Policy], Any]


@pytest_asyncio.fixture
async def make_env(store: Store) -> AsyncIterator[Callable[[Policy], Any]]:
    clients: list[httpx.AsyncClient] = []

    async def build(policy: Policy) -> LiftEnv:
        clock = store.clock
        assert isinstance(clock, FakeClock)
        engine, registry, notifier = RecordingEngine(), CollectorRegistry(), LogNotifier()
        settings = make_settings()
        app = create_app(settings=settings, store=store, engine=engine, registry=registry,
                         clock=clock, policy=policy, notifier=notifier)
        tokens = {role.value: store.add_user(f"u-{role.value}", role)[1] for role in Role}
        client = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=app, raise_app_exceptions=False), base_url="http://enforcer")
        clients.append(client)
        env = LiftEnv(client, store, engine, clock, registry, settings, tokens)
        env.notifier = notifier
        return env

    yield build
    for c in clients:
        await c.aclose()


@pytest_asyncio.fixture
async def board(make_env: Callable[[Policy], Any]) -> LiftEnv:
    """The story: an H&S board of three, unanimous, 72 h, requester may not approve."""
    env: LiftEnv = await make_env(policy_with(BOARD))
    for name in ("alice", "bob", "carol"):
        env.add(name, groups=("hs-board",))
    env.add("dave")  # an approver outside the board
    return env
