"""Drivers by device name, built on first use and closed on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from enforcer.drivers.base import DeviceDriver as Driver
from enforcer.inventory.profiles import Mechanism, Profile

log = logging.getLogger(__name__)


class DriverPool:
    def __init__(self, factory: Callable[[str], Driver]) -> None:
        self._factory = factory
        self._drivers: dict[str, Driver] = {}
        self._lock = asyncio.Lock()

    def get(self, name: str) -> Driver:
        drv = self._drivers.get(name)
        if drv is None:
            drv = self._factory(name)
            self._drivers[name] = drv
        return drv

    def profile(self, name: str) -> Profile:
        """The device's profile, as its driver holds it: the one route by which
        mechanism and transport facts reach the engine."""
        return self.get(name).profile

    def mechanism(self, device: str, mechanism: str) -> Mechanism:
        """A mechanism of the device's profile (persistence, kick, immediate block);
        KeyError for a mechanism the profile does not have."""
        return self.get(device).profile.mechanism(mechanism)

    def mechanisms(self, names: list[str]) -> dict[str, list[str]]:
        return {n: self.get(n).mechanisms() for n in names}

    async def close(self) -> None:
        for drv in list(self._drivers.values()):
            try:
                await drv.close()
            except Exception as e:  # noqa: BLE001 - closing is best effort on shutdown
                log.debug("closing driver %s: %s", drv.name, e)
        self._drivers.clear()

    def built(self) -> dict[str, Driver]:
        return dict(self._drivers)

    async def drop(self, name: str) -> None:
        """Close and forget one device's driver (its lease was lost)."""
        drv = self._drivers.pop(name, None)
        if drv is not None:
            try:
                await drv.close()
            except Exception as e:  # noqa: BLE001 - closing is best effort
                log.debug("closing driver %s: %s", name, e)
