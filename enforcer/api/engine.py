"""The seam between the HTTP API and the engine (implemented by ``enforcer.engine``).

Errors: ``check_device`` and ``plan`` raise ``LookupError`` for an unknown device or
order (-> 404); ``enforcer.errors.TransportError`` for a device that failed (-> 502);
``enforcer.errors.InputError`` for a bad argument (-> 422).
"""

from __future__ import annotations

from typing import Any, Protocol

from enforcer.domain.mac import Mac


class Engine(Protocol):
    def order_accepted(self, order_id: str) -> None:
        """Wake the reconciler for a new order; must not block."""

    def ready(self) -> tuple[bool, str]:
        """(ready, why) for /readyz."""

    async def where(self, mac: Mac) -> list[dict[str, Any]]:
        """Where ``mac`` is registered right now, across devices."""

    async def plan(self, order_id: str | None) -> list[dict[str, Any]]:
        """Dry run: the targets the engine would push (for one order, or all active)."""

    async def preview(self, order: Any) -> list[dict[str, Any]]:
        """Dry run of an order that is not stored: per device in scope and MAC, the
        block that would be pushed or shared and whether the modem would be reset."""

    def devices(self) -> list[dict[str, Any]]:
        """Inventory devices with their last known state."""

    async def check_device(self, name: str) -> dict[str, Any]:
        """Contact a device now and report what was found."""

    async def trust_device(self, name: str, actor: str,
                           expect: str | None = None) -> dict[str, Any]:
        """Pin the SSH host key the device presents now (``enforcer devices trust``) if
        its fingerprint is ``expect``; ``enforcer.errors.HostKeyError`` when it is not,
        or when the inventory pins a different key."""

    def node_names(self) -> set[str]:
        """Names of the inventory's nodes, to validate an order's ``node``."""
