"""The API's view of the engine when the HTTP server runs on its own event loop (its own
thread), so that request latency does not queue behind device work: engine coroutines
are run on the engine's loop and awaited from the API's."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from enforcer.domain.mac import Mac
from enforcer.engine.core import Engine


class EngineBridge:
    """Implements ``enforcer.api.engine.Engine`` by delegating to an :class:`Engine`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def _there(self, coro: Coroutine[Any, Any, Any]) -> Any:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # Thread-safe, synchronous parts.
    def order_accepted(self, order_id: str) -> None:
        self._engine.order_accepted(order_id)

    def ready(self) -> tuple[bool, str]:
        return self._engine.ready()

    def devices(self) -> list[dict[str, Any]]:
        return self._engine.devices()

    def node_names(self) -> set[str]:
        return self._engine.node_names()

    def layer_of(self, device: str) -> str:
        return self._engine.layer_of(device)

    # Device work runs on the engine's loop (drivers and leases live there).
    async def where(self, mac: Mac) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._there(self._engine.where(mac))
        return result

    async def plan(self, order_id: str | None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._there(self._engine.plan(order_id))
        return result

    async def preview(self, order: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._there(self._engine.preview(order))
        return result

    async def check_device(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._there(self._engine.check_device(name))
        return result

    async def trust_device(self, name: str, actor: str,
                           expect: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._there(
            self._engine.trust_device(name, actor, expect))
        return result

    async def reconcile_all(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._there(self._engine.reconcile_all())
        return result

    async def cluster_status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._there(self._engine.cluster_status())
        return result
