"""The API's view of the engine when the HTTP server runs on its own event loop (its own
thread), so that request latency does not queue behind device work: engine coroutines
are run on the engine's loop and awaited from the API's."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from enforcer.domain.mac import Mac
from enforcer.engine.contract import (
    CheckResult,
    ClusterStatus,
    DeviceRow,
    EngineAPI,
    PlanRow,
    PreviewRow,
    ReconcileSummary,
    Sighting,
    TrustResult,
)
from enforcer.store.records import OrderRecord

T = TypeVar("T")


class EngineBridge:
    """An ``EngineAPI`` that delegates to another (the daemon's engine), running its
    coroutines on the loop given to :meth:`bind`."""

    def __init__(self, engine: EngineAPI) -> None:
        self._engine = engine
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def _there(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # Thread-safe, synchronous parts.
    def order_accepted(self, order_id: str) -> None:
        self._engine.order_accepted(order_id)

    def ready(self) -> tuple[bool, str]:
        return self._engine.ready()

    def devices(self) -> list[DeviceRow]:
        return self._engine.devices()

    def node_names(self) -> set[str]:
        return self._engine.node_names()

    def layer_of(self, device: str) -> str:
        return self._engine.layer_of(device)

    # Device work runs on the engine's loop (drivers and leases live there).
    async def where(self, mac: Mac) -> list[Sighting]:
        return await self._there(self._engine.where(mac))

    async def plan(self, order_id: str | None) -> list[PlanRow]:
        return await self._there(self._engine.plan(order_id))

    async def preview(self, order: OrderRecord) -> list[PreviewRow]:
        return await self._there(self._engine.preview(order))

    async def check_device(self, name: str) -> CheckResult:
        return await self._there(self._engine.check_device(name))

    async def trust_device(self, name: str, actor: str,
                           expect: str | None = None) -> TrustResult:
        return await self._there(self._engine.trust_device(name, actor, expect))

    async def reconcile_all(self) -> ReconcileSummary:
        return await self._there(self._engine.reconcile_all())

    async def cluster_status(self) -> ClusterStatus:
        return await self._there(self._engine.cluster_status())
