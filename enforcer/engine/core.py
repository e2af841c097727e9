"""The daemon's engine: an order queue with workers, a scan for due retries, and the
read-only operations the API offers (where, plan, devices, check)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from enforcer.domain.mac import Mac
from enforcer.domain.model import OrderState, TargetState
from enforcer.engine.observe import look_everywhere
from enforcer.engine.pool import DriverPool
from enforcer.engine.reconciler import Reconciler, ReconcileReport
from enforcer.engine.scheduler import Schedule
from enforcer.engine.watcher import SweepReport, Watcher
from enforcer.engine.worker import OrderWorker
from enforcer.errors import EnforcerError
from enforcer.inventory.model import Inventory
from enforcer.store.repository import Store

log = logging.getLogger(__name__)
WORK_STATES = (OrderState.ACCEPTED, OrderState.ENFORCING, OrderState.ENFORCED,
               OrderState.LIFTING)


class Engine:
    """Implements ``enforcer.api.engine.Engine`` and runs the order workers."""

    def __init__(self, *, store: Store, inventory: Inventory, pool: DriverPool,
                 worker: OrderWorker, settings: Any, reconciler: Reconciler | None = None,
                 watcher: Watcher | None = None, schedule: bool = True) -> None:
        self.store = store
        self.inv = inventory
        self.pool = pool
        self.worker = worker
        self.cfg = settings
        self.reconciler = reconciler
        self.watcher = watcher
        self._schedule: Schedule | None = None
        self._want_schedule = schedule and reconciler is not None and watcher is not None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._busy: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for i in range(self.cfg.engine.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"order-worker-{i}"))
        self._tasks.append(asyncio.create_task(self._scan_due(), name="due-scan"))
        if self._want_schedule:
            self._schedule = Schedule(
                devices=sorted(n for n, d in self.inv.devices.items() if d.enabled
                               and d.kind in ("cmts", "headend")),
                reconcile=self.reconcile_device, watch=self.watch,
                reconcile_interval_s=self.cfg.engine.reconcile_interval_s,
                watch_interval_s=self.cfg.engine.watch_interval_s,
                jitter=self.cfg.engine.jitter)
            self._schedule.start()
        self._started = True
        # Recovery: everything that was in flight when the process stopped runs again.
        for order in await asyncio.to_thread(self.store.orders_in_states, WORK_STATES):
            self._enqueue(order.id)

    async def stop(self) -> None:
        if self._schedule is not None:
            self._schedule.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.pool.close()

    def _enqueue(self, order_id: str) -> None:
        if order_id in self._queued:
            return
        self._queued.add(order_id)
        self._queue.put_nowait(order_id)

    async def _work(self) -> None:
        while True:
            order_id = await self._queue.get()
            self._queued.discard(order_id)
            if order_id in self._busy:
                continue  # the due scan brings it back if it still needs work
            self._busy.add(order_id)
            try:
                await self.worker.enforce(order_id)
            except Exception:
                log.exception("order %s: enforcement pass failed", order_id)
            finally:
                self._busy.discard(order_id)

    async def _scan_due(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.engine.due_scan_s)
            try:
                due = await asyncio.to_thread(self.store.targets_due)
                for t in due:
                    if t.state is TargetState.RETRYING:
                        self._enqueue(t.order_id)
                for order in await asyncio.to_thread(self.store.orders_in_states,
                                                     (OrderState.ACCEPTED, OrderState.LIFTING)):
                    self._enqueue(order.id)
            except Exception:
                log.exception("due scan failed")

    def enforce_again(self, order_id: str) -> None:
        self._enqueue(order_id)

    async def reconcile_device(self, device: str) -> ReconcileReport | None:
        if self.reconciler is None:
            return None
        try:
            report = await self.reconciler.reconcile(device)
        except Exception:
            log.exception("reconcile of %s failed", device)
            return None
        if report.repairs:
            log.warning("reconcile %s: %d repair(s): %s", device, len(report.repairs),
                        "; ".join(r["why"] for r in report.repairs[:5]))
        return report

    async def watch(self) -> SweepReport | None:
        if self.watcher is None:
            return None
        try:
            return await self.watcher.sweep()
        except Exception:
            log.exception("footprint sweep failed")
            return None

    def jobs(self) -> list[dict[str, Any]]:
        return self._schedule.jobs() if self._schedule else []

    # ---- the API's Engine protocol ---------------------------------------------------

    def order_accepted(self, order_id: str) -> None:
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._enqueue, order_id)

    def ready(self) -> tuple[bool, str]:
        if not self._started:
            return False, "engine not started"
        return True, f"{len(self.inv.devices)} devices, {self._queue.qsize()} orders queued"

    async def where(self, mac: Mac) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for x in await look_everywhere(self.pool, self.inv.cmtses(), mac):
            if x.verdict.value != "absent" or x.error:
                out.append(x.as_dict())
        for he in self.inv.headends():
            try:
                obs = await self.pool.get(he).observe(mac)
            except EnforcerError as e:
                out.append({"device": he, "mac": str(mac), "verdict": "unknown",
                            "state": "error", "error": str(e)})
                continue
            if obs.verdict.value != "absent":
                out.append({"device": he, "mac": str(mac), "verdict": obs.verdict.value,
                            "state": obs.state, "error": None})
        return out

    async def plan(self, order_id: str | None) -> list[dict[str, Any]]:
        if order_id is None:
            orders = await asyncio.to_thread(self.store.active_orders)
        else:
            try:
                orders = [await asyncio.to_thread(self.store.get_order, order_id)]
            except LookupError:
                raise
            except EnforcerError as e:
                raise LookupError(str(e)) from None
        out: list[dict[str, Any]] = []
        for order in orders:
            specs, _why = await self.worker.make_plan(order)
            current = {t.spec: t for t in await asyncio.to_thread(
                self.store.targets_for_order, order.id)}
            for sp in specs:
                t = current.get(sp)
                out.append({"order_id": order.id, "device": sp.device, "mac": str(sp.mac),
                            "kind": sp.device_kind.value, "mechanism": sp.mechanism,
                            "current_state": t.state.value if t else None,
                            "action": "none" if t and t.state in (
                                TargetState.APPLIED, TargetState.VERIFIED) else "apply"})
        if order_id is None and self.reconciler is not None:
            # What the next reconcile would repair, read-only.
            for device in sorted(self.inv.devices):
                report = await self.reconciler.reconcile(device, dry_run=True)
                for r in report.repairs:
                    out.append({"order_id": r["order_id"], "device": device, "mac": r["mac"],
                                "kind": None, "mechanism": r["mechanism"],
                                "current_state": "drift", "action": "repair: " + r["why"]})
                if report.error:
                    out.append({"order_id": None, "device": device, "mac": None, "kind": None,
                                "mechanism": None, "current_state": "unreachable",
                                "action": "retry: " + report.error})
        return out

    def devices(self) -> list[dict[str, Any]]:
        states = {d.name: d for d in self.store.all_device_states()}
        out: list[dict[str, Any]] = []
        for name, d in sorted(self.inv.devices.items()):
            st = states.get(name)
            out.append({"name": name, "kind": d.kind, "profile": d.profile, "host": d.host,
                        "snmp_port": d.snmp_port, "ssh_port": d.ssh_port,
                        "host_key_pinned": d.host_key is not None or bool(
                            st and st.host_key_fingerprint),
                        "reachable": st.reachable if st else None,
                        "last_error": st.last_error if st else None})
        return out

    async def check_device(self, name: str) -> dict[str, Any]:
        if name not in self.inv.devices:
            raise LookupError(f"no device {name!r} in inventory")
        drv: Any = self.pool.get(name)
        try:
            result = await drv.check()
            reachable, err = True, None
        except EnforcerError as e:
            result, reachable, err = {}, False, str(e)
        await asyncio.to_thread(self.store.set_device_state, name, reachable=reachable,
                                last_error=err)
        return {"name": name, "reachable": reachable, "error": err, **(result or {})}

    def node_names(self) -> set[str]:
        return set(self.inv.nodes)
