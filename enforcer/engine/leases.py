"""Device ownership for several instances: each device is talked to by exactly one
live instance at a time.

Every ``ttl/3`` seconds an instance heartbeats, renews the leases it holds, takes the
devices that a balanced rendezvous assignment over the live instances gives it (every
instance computes the same assignment) and hands back the ones it now gives to someone
else, so load spreads evenly and the same instance tends to get the same devices back.
A lease is trusted locally only until ``renewed_at + ttl - margin`` by the local
monotonic clock; a renewal that fails or
comes late stops all work on that device before the database lease can expire and be
taken by another instance. When an instance dies its devices move to the others within
about two lease periods (expiry, then the next acquisition round).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from enforcer.errors import StoreError

log = logging.getLogger(__name__)


@dataclass
class Held:
    epoch: int
    trusted_until: float  # local monotonic deadline


def _rank(device: str, instance: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{device}\0{instance}".encode()).digest()[:8], "big")


def assign(devices: list[str], instances: list[str]) -> dict[str, list[str]]:
    """Balanced rendezvous assignment, the same on every instance given the same live
    list: each device goes to its highest-ranked instance that still has room under
    ceil(devices / instances). Membership changes move only a few devices."""
    if not instances:
        return {}
    cap = math.ceil(len(devices) / len(instances))
    out: dict[str, list[str]] = {i: [] for i in instances}
    for d in sorted(devices):
        for i in sorted(instances, key=lambda i: -_rank(d, i)):
            if len(out[i]) < cap:
                out[i].append(d)
                break
    return out


class LeaseManager:
    def __init__(self, *, store: Any, instance_id: str, devices: list[str], ttl_s: float,
                 on_acquire: Callable[[str], Awaitable[None]],
                 on_lose: Callable[[str], Awaitable[None]], metrics: Any = None,
                 url: str | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.me = instance_id
        self.devices = sorted(devices)
        self.ttl = ttl_s
        self.margin = max(1.0, ttl_s / 5)
        self.on_acquire = on_acquire
        self.on_lose = on_lose
        self.metrics = metrics
        self.url = url
        self.now = now
        self.held: dict[str, Held] = {}
        # Lease traffic has its own thread: renewals must never wait behind bulk store
        # work in the shared executor, or a busy instance would lose its leases.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leases")
        self._task: asyncio.Task[None] | None = None
        self.failovers = 0

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def holds(self, device: str) -> bool:
        h = self.held.get(device)
        return h is not None and self.now() < h.trusted_until

    def epoch(self, device: str) -> int | None:
        h = self.held.get(device)
        return h.epoch if h else None

    async def start(self) -> None:
        await self.round()
        self._task = asyncio.create_task(self._loop(), name="leases")

    async def stop(self, *, release: bool = True) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for device in list(self.held):
            await self._lose(device)
        if release:
            try:
                await self._db(self.store.instance_stopped, self.me)
            except StoreError as e:
                log.warning("could not release leases on stop: %s", e)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.round()
            except StoreError as e:
                log.error("lease round failed: %s", e)
            except Exception:
                log.exception("lease round failed")
            for device, h in list(self.held.items()):
                if self.now() >= h.trusted_until:
                    log.error("lease on %s not renewed in time: stopping work there", device)
                    await self._lose(device)

    async def round(self) -> None:
        started = self.now()
        await self._db(self.store.heartbeat, self.me, self.url)
        kept = await self._db(self.store.renew_leases, self.me,
                              {d: h.epoch for d, h in self.held.items()}, self.ttl)
        for device, h in list(self.held.items()):
            if device in kept:
                h.trusted_until = started + self.ttl - self.margin
            else:
                log.warning("lost lease on %s", device)
                await self._lose(device)
        live = await self._db(self.store.live_instances, self.ttl * 2)
        if self.me not in live:
            live.append(self.me)
        mine = assign(self.devices, live).get(self.me, [])
        for device in mine:
            if device in self.held:
                continue
            epoch = await self._db(self.store.acquire_lease, device, self.me, self.ttl)
            if epoch is None:
                continue  # still held by its previous owner; it hands it over or expires
            self.held[device] = Held(epoch, started + self.ttl - self.margin)
            if epoch > 1:
                self.failovers += 1
                if self.metrics is not None:
                    self.metrics.lease_failovers.inc()
            log.info("now owning %s (epoch %d)", device, epoch)
            await self.on_acquire(device)
        # Hand back what the assignment now gives to another live instance.
        for device in [d for d in self.held if d not in mine]:
            h = self.held[device]
            await self._lose(device)
            await self._db(self.store.release_lease, device, self.me, h.epoch)
        if self.metrics is not None:
            self.metrics.owned_devices.set(len(self.held))

    async def _lose(self, device: str) -> None:
        if self.held.pop(device, None) is not None:
            await self.on_lose(device)
