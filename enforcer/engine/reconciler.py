"""Level-triggered repair of one device: desired state (the active bans' targets on it)
against what the device says (read-back of each block, registration state).

Drift is not repaired here directly: a target that needs work is marked ``retrying``
(due now, with the reason) and its order is handed back to the order worker, which
re-applies, kicks and verifies with the same idempotent code as the first push. A
reconcile that finds nothing wrong only reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from enforcer.domain import lifecycle
from enforcer.domain.mac import Mac
from enforcer.domain.model import TargetState, Verdict
from enforcer.drivers.base import BlockTables, BulkObserve, DeviceDriver, Observation
from enforcer.engine.backoff import backoff_s
from enforcer.engine.pool import DriverPool
from enforcer.errors import EnforcerError, TransportError
from enforcer.store.records import ActiveTarget
from enforcer.store.repository import Store

log = logging.getLogger(__name__)
ACTOR = "reconciler"
# From this many targets on one device, reconcile reads the device in bulk (one sweep
# and one walk per table) rather than per target.
BULK_THRESHOLD = 16


@dataclass(frozen=True)
class Drift:
    """Why a target needs work; ``forwarding``: the MAC was seen passing traffic."""

    why: str
    forwarding: bool = False
    state: str = ""


@dataclass
class ReconcileReport:
    device: str
    checked: int = 0
    repairs: list[dict[str, Any]] = field(default_factory=list)
    unowned: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "checked": self.checked, "repairs": self.repairs,
                "unowned": self.unowned, "error": self.error}


class Reconciler:
    def __init__(self, *, store: Store, pool: DriverPool, settings: Any, metrics: Any,
                 requeue: Callable[[str, str], None],
                 breach: Callable[[str, str, Mac, str, str], Awaitable[None]] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.pool = pool
        self.cfg = settings
        self.metrics = metrics
        self.requeue = requeue
        self.breach = breach
        self.clock = clock

    async def reconcile(self, device: str, *, dry_run: bool = False) -> ReconcileReport:
        report = ReconcileReport(device)
        targets = await asyncio.to_thread(self.store.active_targets, device)
        drv = self.pool.get(device)
        try:
            bulk = await self._bulk_view(drv, targets)
            for t in targets:
                if t.state is TargetState.REMOVED:
                    continue
                report.checked += 1
                drift = await (self._drift(drv, t) if bulk is None
                               else self._bulk_drift(drv, t, *bulk))
                if drift is None:
                    continue
                report.repairs.append({"order_id": t.order_id, "mac": str(t.mac),
                                       "mechanism": t.mechanism, "why": drift.why})
                if not dry_run:
                    if drift.forwarding and t.state is TargetState.VERIFIED and \
                            self.breach is not None:
                        await self.breach(t.order_id, t.device, t.mac, drift.state, ACTOR)
                    await self._mark_for_repair(t, drift.why)
            report.unowned = await self._unowned(drv, targets, bulk[1] if bulk else None)
        except TransportError as e:
            report.error = str(e)
            self.metrics.device_up.labels(device).set(0)
            if not dry_run:
                await self._device_down(device, targets, str(e))
            return report
        self.metrics.device_up.labels(device).set(1)
        if not dry_run:
            await asyncio.to_thread(self.store.set_device_state, device, reachable=True,
                                    last_seen=self.clock(), last_error=None)
            if report.unowned:
                self.metrics.unowned_blocks.labels(device).set(len(report.unowned))
                await asyncio.to_thread(self.store.record_event, ACTOR, "device.unowned_blocks",
                                        None, {"device": device, "macs": report.unowned[:100],
                                               "count": len(report.unowned)})
        return report

    async def _drift(self, drv: DeviceDriver, t: ActiveTarget) -> Drift | None:
        """Why this target needs work, or None when the device still holds the ban."""
        if t.state in lifecycle.DUE_TARGET_STATES:
            return None  # the order worker owns it already
        kind = self.pool.mechanism(t.device, t.mechanism).persistence
        if kind == "registration":
            obs = await drv.observe(t.mac)
            if obs.verdict is Verdict.FORWARDING:
                return Drift(f"{t.mac} forwarding ({obs.state}): block lost at "
                             "re-registration", True, obs.state)
            return None
        present = await drv.read_back(t.mac, t.mechanism)
        obs = await drv.observe(t.mac)
        forwarding = obs.verdict is Verdict.FORWARDING
        if not present:
            return Drift(f"{t.mechanism} entry for {t.mac} missing on {t.device} (reboot or "
                         "removal)", forwarding, obs.state)
        if forwarding:
            return Drift(f"{t.mac} forwarding ({obs.state}) although the block is present: "
                         "kick", True, obs.state)
        return None

    async def _bulk_view(self, drv: DeviceDriver, targets: list[ActiveTarget]
                         ) -> tuple[dict[Mac, Observation], dict[str, set[Mac] | None]] | None:
        """With many targets, read the device once instead of per target: one bulk read
        of the registration states of the targets' MACs (``BulkObserve``: only the
        columns their verdicts need; else the whole sweep) and one walk per bounded
        block table. None: read per target."""
        if len(targets) < BULK_THRESHOLD or not isinstance(drv, BlockTables):
            return None
        try:
            seen = await (drv.observe_macs({t.mac for t in targets})
                          if isinstance(drv, BulkObserve) else drv.sweep())
        except EnforcerError as e:
            if isinstance(e, TransportError):
                raise
            return None  # no sweep for this platform: per-target reads
        tables: dict[str, set[Mac] | None] = {}
        for mech in {t.mechanism for t in targets}:
            tables[mech] = await drv.list_blocks(mech)
        return seen, tables

    async def _bulk_drift(self, drv: DeviceDriver, t: ActiveTarget, seen: dict[Mac, Observation],
                          tables: dict[str, set[Mac] | None]) -> Drift | None:
        if t.state in lifecycle.DUE_TARGET_STATES:
            return None
        obs = seen.get(t.mac)
        forwarding = obs is not None and obs.verdict is Verdict.FORWARDING
        state = obs.state if obs is not None else ""
        if self.pool.mechanism(t.device, t.mechanism).persistence == "registration":
            return (Drift(f"{t.mac} forwarding ({state}): block lost at re-registration",
                          True, state) if forwarding else None)
        table = tables.get(t.mechanism)
        if table is None:  # a block kept outside a walkable table: read it back
            if not await drv.read_back(t.mac, t.mechanism):
                return Drift(f"{t.mechanism} entry for {t.mac} missing on {t.device}",
                             forwarding, state)
        elif t.mac not in table:
            return Drift(f"{t.mechanism} entry for {t.mac} missing on {t.device} (reboot or "
                         "removal)", forwarding, state)
        if forwarding:
            return Drift(f"{t.mac} forwarding ({state}) although the block is present: kick",
                         True, state)
        return None

    async def _mark_for_repair(self, t: ActiveTarget, why: str) -> None:
        self.metrics.drift_repairs.labels(t.device, t.mechanism).inc()
        await asyncio.to_thread(self.store.update_target, t.id, actor=ACTOR,
                                audit_action="target.drift", state=TargetState.RETRYING,
                                last_error=why[:500], next_attempt_at=self.clock())
        self.requeue(t.order_id, t.device)

    async def _device_down(self, device: str, targets: list[ActiveTarget], error: str) -> None:
        await asyncio.to_thread(self.store.set_device_state, device, reachable=False,
                                last_error=error[:500])
        for t in targets:
            if t.state in lifecycle.APPLIED_TARGET_STATES:
                delay = backoff_s(t.attempts, base=self.cfg.engine.retry_base_s,
                                  cap=self.cfg.engine.max_retry_backoff_s)
                await asyncio.to_thread(
                    self.store.update_target, t.id, actor=ACTOR,
                    audit_action="target.device_unreachable", state=TargetState.RETRYING,
                    last_error=f"device unreachable: {error}"[:500],
                    next_attempt_at=self.clock() + timedelta(seconds=delay))

    async def _unowned(self, drv: DeviceDriver, targets: list[ActiveTarget],
                       known: dict[str, set[Mac] | None] | None = None) -> list[str]:
        """Blocks on the device that no active ban owns: reported, never removed."""
        if not isinstance(drv, BlockTables):
            return []
        # A MAC held by any active ban on this device counts as owned: two mechanisms
        # (e.g. deny list by SNMP and by CLI) may share one table.
        owned = {t.mac for t in targets}
        out: list[str] = []
        for mech in drv.mechanisms():
            try:
                present = known[mech] if known is not None and mech in known \
                    else await drv.list_blocks(mech)
            except EnforcerError:
                continue
            if present is None:
                continue
            limit = drv.table_limit(mech)
            if limit:
                self.metrics.capacity_used.labels(drv.name, mech).set(len(present) / limit)
            out.extend(str(m) for m in sorted(present - owned))
        return sorted(set(out))
