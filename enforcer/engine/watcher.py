"""The footprint watcher: sweeps every CMTS for banned MACs. A banned MAC registered
on a device in its ban's scope where no target holds it, once that device has answered
for the ban (before that, its own scan plans the target), is a *sighting*: counted,
audited, notified, and handed to the order worker, which plans a target there and
enforces it (within the same sweep pass).

Per device, the cheaper look-up wins: walking the registration table costs about
``modems / max_repetitions`` requests, targeted look-ups about two per banned MAC.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from enforcer.domain.mac import Mac
from enforcer.domain.model import ACTIVE_ORDER_STATES, DeviceKind, Verdict
from enforcer.engine.pool import DriverPool
from enforcer.errors import EnforcerError
from enforcer.inventory.model import Inventory
from enforcer.store.repository import Store

log = logging.getLogger(__name__)
ACTOR = "watcher"


@dataclass
class Sighting:
    order_id: str
    device: str
    mac: Mac
    verdict: str
    state: str


@dataclass
class SweepReport:
    devices: int = 0
    walked: list[str] = field(default_factory=list)
    targeted: list[str] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class Watcher:
    def __init__(self, *, store: Store, inventory: Inventory, pool: DriverPool, metrics: Any,
                 requeue: Callable[[str, str], None], notify: Callable[[str, dict[str, Any]], None],
                 concurrency: int = 8,
                 breach: Callable[[str, str, Mac, str, str], Awaitable[None]] | None = None
                 ) -> None:
        self.store = store
        self.inv = inventory
        self.pool = pool
        self.metrics = metrics
        self.requeue = requeue
        self.notify = notify
        self.concurrency = concurrency
        self.breach = breach
        self.modem_counts: dict[str, int] = {}  # from the last walk of each device

    def max_repetitions(self, device: str) -> int:
        """Rows per GETBULK on ``device`` (its profile's SNMP transport; 25 without)."""
        snmp = self.pool.profile(device).transports.snmp
        return int(snmp.max_repetitions) if snmp is not None else 25

    async def plan(self, devices: list[str] | None = None
                   ) -> tuple[dict[str, dict[Mac, str]], set[tuple[str, str]]]:
        """Device -> {banned CMTS-side MAC in scope there: order id}, and the
        (device, MAC) pairs a target already holds. Built from plain rows."""
        bans = await asyncio.to_thread(self.store.active_bans)
        keys = await asyncio.to_thread(self.store.active_target_keys)
        cmtses = self.inv.cmtses()
        cmts_set = set(cmtses)
        held = {(device, mac) for _, device, mac in keys}
        by_order: dict[str, tuple[str, str | None, set[Mac]]] = {}
        for oid, scope, node, mac, kind, ecm in bans:
            entry = by_order.setdefault(oid, (scope, node, set()))
            if kind == DeviceKind.SET_TOP.value:
                if ecm:
                    entry[2].add(Mac(ecm))
            else:
                entry[2].add(Mac(mac))
        for oid, device, key_mac in keys:
            if device in cmts_set and oid in by_order:
                by_order[oid][2].add(Mac(key_mac))
        wanted: dict[str, dict[Mac, str]] = {}
        for oid, (scope, node, macs) in by_order.items():
            if scope == "footprint" or not node or node not in self.inv.nodes:
                scope_devices = cmtses
            else:
                scope_devices = [d for d in self.inv.node_devices(node) if d in cmts_set]
            for device in scope_devices:
                if devices is not None and device not in devices:
                    continue
                for banned in macs:
                    wanted.setdefault(device, {})[banned] = oid
        return wanted, held

    async def sweep(self, devices: list[str] | None = None) -> SweepReport:
        """Sweep ``devices`` (default: every CMTS) for banned MACs."""
        wanted, held = await self.plan(devices)
        report = SweepReport(devices=len(wanted))
        sem = asyncio.Semaphore(self.concurrency)

        async def one(device: str) -> None:
            async with sem:
                await self.sweep_device(device, wanted[device], held, report)

        await asyncio.gather(*(one(d) for d in wanted))
        return report

    async def sweep_device(self, device: str, banned: dict[Mac, str],
                           held: set[tuple[str, str]], report: SweepReport) -> None:
        drv = self.pool.get(device)
        modems = self.modem_counts.get(device)
        walk_cost = (modems or 0) / max(1, self.max_repetitions(device)) + 1
        # Walk when it is cheaper than ~2 look-ups per banned MAC; with the modem count
        # not known yet, walk once there are more than a handful of bans (the walk tells).
        walk = walk_cost < 2 * len(banned) if modems is not None else len(banned) > 8
        try:
            if walk:
                seen = await drv.sweep()
                self.modem_counts[device] = len(seen)
                report.walked.append(device)
                found = {m: seen[m] for m in banned if m in seen}
            else:
                looks = await asyncio.gather(*(drv.observe(m) for m in banned))
                found = {o.mac: o for o in looks}
                report.targeted.append(device)
        except EnforcerError as e:
            report.errors[device] = str(e)
            return
        candidates = [(mac, obs) for mac, obs in found.items()
                      if obs.verdict is not Verdict.ABSENT and (device, str(mac)) not in held]
        if not candidates:
            return
        # The sweep took a while: a target planned meanwhile holds its MAC now, and an
        # order this device has not answered for yet is the device loop's to plan (its
        # scan looks the MAC up here anyway). Neither is a sighting; taken for one, a
        # burst of new orders was "sighted", notified, and its scans cleared mid-way.
        held_now = {(d, m) for _, d, m in
                    await asyncio.to_thread(self.store.active_target_keys)}
        answered = set(await asyncio.to_thread(
            self.store.scanned_orders_in, device,
            [st.value for st in ACTIVE_ORDER_STATES]))
        for mac, obs in candidates:
            if (device, str(mac)) in held_now or banned[mac] not in answered:
                continue
            s = Sighting(banned[mac], device, mac, obs.verdict.value, obs.state)
            report.sightings.append(s)
            await self._sighted(s)

    async def _sighted(self, s: Sighting) -> None:
        self.metrics.banned_mac_sightings.labels(s.device).inc()
        payload = {"device": s.device, "mac": str(s.mac), "verdict": s.verdict,
                   "state": s.state}
        await asyncio.to_thread(self.store.record_event, ACTOR, "ban.sighting", s.order_id,
                                payload)
        log.warning("banned MAC %s sighted on %s (%s); enforcing there", s.mac, s.device,
                    s.state)
        self.notify("ban.sighting", {"order_id": s.order_id, **payload})
        if s.verdict == Verdict.FORWARDING.value and self.breach is not None:
            order = await asyncio.to_thread(self.store.get_order, s.order_id)
            if order.verified_at is not None:  # it held everywhere once: a breach
                await self.breach(s.order_id, s.device, s.mac, s.state, ACTOR)
        # The device answers for this order again: it plans a target there and enforces.
        await asyncio.to_thread(self.store.clear_scans_on, s.device, [s.order_id])
        self.requeue(s.order_id, s.device)

