"""Targeted look-ups across devices: where is a MAC, and what do devices say of it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from enforcer.domain.mac import Mac
from enforcer.domain.model import Verdict
from enforcer.engine.contract import Sighting
from enforcer.engine.pool import DriverPool
from enforcer.errors import EnforcerError

log = logging.getLogger(__name__)

TRANSIENT_STATES = ("offline", "init", "ranging", "dhcp", "tftp", "registration", "bpi")


@dataclass(frozen=True)
class Look:
    device: str
    mac: Mac
    verdict: Verdict
    state: str
    error: str | None = None
    detail: dict[str, Any] | None = None

    @property
    def transient(self) -> bool:
        """Offline or part-way through registration: not a settled answer yet."""
        s = self.state.lower()
        return any(s.startswith(t) for t in TRANSIENT_STATES)

    def as_dict(self) -> Sighting:
        return Sighting(device=self.device, mac=str(self.mac), verdict=self.verdict.value,
                        state=self.state, error=self.error)


async def look(pool: DriverPool, device: str, mac: Mac) -> Look:
    try:
        obs = await pool.get(device).observe(mac)
    except EnforcerError as e:
        return Look(device, mac, Verdict.UNKNOWN, "error", error=str(e))
    return Look(device, mac, obs.verdict, obs.state, detail=obs.detail)

