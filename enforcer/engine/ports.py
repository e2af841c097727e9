"""What the engine needs from a device driver (``enforcer.drivers`` implements it)."""

from __future__ import annotations

from typing import Any, Protocol

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Verdict


class PushOutcome(Protocol):
    changed: bool
    failed: bool
    transcript: list[str]
    error: str | None


class Seen(Protocol):
    verdict: Verdict
    state: str
    detail: dict[str, Any]


class Driver(Protocol):
    name: str

    async def apply(self, mac: Mac, mechanism: str, *, kind: DeviceKind) -> Any: ...
    async def remove(self, mac: Mac, mechanism: str) -> Any: ...
    async def read_back(self, mac: Mac, mechanism: str) -> bool: ...
    async def kick(self, mac: Mac) -> Any: ...
    async def observe(self, mac: Mac) -> Any: ...
    async def sweep(self) -> Any: ...
    def mechanisms(self) -> list[str]: ...
    async def close(self) -> None: ...
