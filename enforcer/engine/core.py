"""The daemon's engine. Work is organised by device: this instance runs one loop per
device whose lease it holds (all of them when it is alone); each loop answers, for
every order, what that device says and does about it. An order's state is derived from
all devices' answers, so several instances can share the work through one database.

Also the read-only operations the API offers (where, plan, devices, check)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from enforcer.domain.lifecycle import APPLIED_TARGET_STATES
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, TargetState
from enforcer.drivers.base import CheckFacts, DeviceCheck
from enforcer.engine.contract import (
    Checked,
    CheckResult,
    ClusterStatus,
    DeviceRow,
    InstanceStatus,
    LeaseStatus,
    NotChecked,
    PlanRow,
    PreviewRow,
    ReconcileSummary,
    Sighting,
    TrustResult,
)
from enforcer.engine.device_ops import DeviceOps
from enforcer.engine.leases import LeaseManager
from enforcer.engine.observe import look
from enforcer.engine.pool import DriverPool
from enforcer.engine.reconciler import Reconciler, ReconcileReport
from enforcer.engine.runner import DeviceRunner
from enforcer.engine.scheduler import Schedule
from enforcer.engine.watcher import SweepReport, Watcher
from enforcer.errors import EnforcerError, HostKeyError, InputError
from enforcer.inventory.model import Inventory
from enforcer.store.records import OrderRecord
from enforcer.store.repository import Store

log = logging.getLogger(__name__)
# A pseudo-device whose lease elects the one instance that runs cluster-wide jobs
# (lift expiry, audit anchoring, audit chain check).
HOUSEKEEPING = "@housekeeping"


class Engine:
    """Implements ``enforcer.engine.contract.EngineAPI``; owns device loops and periodic
    jobs."""

    def __init__(self, *, store: Store, inventory: Inventory, pool: DriverPool, ops: DeviceOps,
                 settings: Any, metrics: Any, reconciler: Reconciler | None = None,
                 watcher: Watcher | None = None, schedule: bool = True,
                 url: str | None = None, notifier: Any = None,
                 housekeeping: list[tuple[str, float, Any]] | None = None) -> None:
        self.store = store
        self.inv = inventory
        self.pool = pool
        self.ops = ops
        self.cfg = settings
        self.metrics = metrics
        self.reconciler = reconciler
        self.watcher = watcher
        self.instance_id: str = settings.instance_id
        self.device_names = sorted(n for n, d in inventory.devices.items() if d.enabled)
        self.notifier = notifier
        self.housekeeping = housekeeping or []
        self.leases = LeaseManager(store=store, instance_id=self.instance_id,
                                   devices=[*self.device_names, HOUSEKEEPING],
                                   ttl_s=settings.engine.lease_ttl_s,
                                   on_acquire=self._acquired, on_lose=self._lost,
                                   metrics=metrics, url=url)
        self.runners: dict[str, DeviceRunner] = {}
        # Periodic work in flight per device: cancelled when the device's lease is lost,
        # so no request reaches a device after another instance may own it.
        self._device_jobs: dict[str, set[asyncio.Task[Any]]] = {}
        self._schedule: Schedule | None = None
        self._want_schedule = schedule and reconciler is not None and watcher is not None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._node_devices = {n: [sv.device for sv in node.serving]
                              for n, node in inventory.nodes.items()}
        self._always = [n for n, d in inventory.devices.items() if d.kind in ("headend", "dhcp")]
        self._started = False

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.leases.start()
        self._poll_task = asyncio.create_task(self._poll(), name="poll")
        if self._want_schedule:
            self._schedule = Schedule(
                devices=self.device_names, reconcile=self.reconcile_device, watch=self.watch,
                reconcile_interval_s=self.cfg.engine.reconcile_interval_s,
                watch_interval_s=self.cfg.engine.watch_interval_s,
                jitter=self.cfg.engine.jitter,
                extra=[(name, interval, self._housekeeping(fn))
                       for name, interval, fn in self.housekeeping])
            self._schedule.start()
        self._started = True

    async def stop(self) -> None:
        if self._schedule is not None:
            self._schedule.stop()
        if self._poll_task is not None:
            self._poll_task.cancel()
            await asyncio.gather(self._poll_task, return_exceptions=True)
        await self.leases.stop()
        for runner in list(self.runners.values()):
            await runner.stop()
        self.runners.clear()
        await self.pool.close()

    def _housekeeping(self, fn: Any) -> Any:
        async def job() -> None:
            if not self.leases.holds(HOUSEKEEPING):
                return
            try:
                await fn()
            except Exception:
                log.exception("housekeeping job failed")
        return job

    async def _acquired(self, device: str) -> None:
        if device == HOUSEKEEPING:
            return
        nodes = [n for n, node in self.inv.nodes.items()
                 if any(sv.device == device for sv in node.serving)] \
            if device in self.inv.cmtses() else None
        kinds = [DeviceKind.SET_TOP.value] if device in self.inv.headends() else None
        runner = DeviceRunner(device, ops=self.ops, store=self.store, settings=self.cfg,
                              holds=self.leases.holds, settle=self.settle, nodes=nodes,
                              kinds=kinds)
        self.runners[device] = runner
        runner.start()

    async def _lost(self, device: str) -> None:
        runner = self.runners.pop(device, None)
        if runner is not None:
            await runner.stop()
        jobs = self._device_jobs.pop(device, set())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await self.pool.drop(device)

    async def _on_device(self, device: str, work: Any) -> Any:
        """Run ``work`` as a task tied to the device's lease."""
        task = asyncio.ensure_future(work)
        jobs = self._device_jobs.setdefault(device, set())
        jobs.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if task.cancelled() and not self.leases.holds(device):
                return None  # the lease went away mid-job
            raise
        finally:
            jobs.discard(task)

    async def _poll(self) -> None:
        """Every ``due_scan_s``: one look at the database for the whole instance (orders
        changed by any instance, targets due, failed scans to retry), waking only the
        device loops concerned."""
        since = datetime.now(UTC) - timedelta(seconds=5)
        while True:
            await asyncio.sleep(self.cfg.engine.due_scan_s)
            started = datetime.now(UTC) - timedelta(seconds=2)
            try:
                changed, due, stale, holders = await asyncio.to_thread(
                    self.store.poll_changes, since, self.cfg.engine.retry_base_s)
            except Exception:
                log.exception("poll failed")
                continue
            since = started
            wake: set[str] = set(due) | set(stale) | holders
            for _oid, scope, node in changed:
                wake |= set(self._always)
                if scope == "footprint" or not node:
                    wake |= set(self.runners)
                    break
                wake |= set(self._node_devices.get(node, []))
            for device in wake:
                runner = self.runners.get(device)
                if runner is not None:
                    runner.wake()

    def wake_all(self) -> None:
        for runner in self.runners.values():
            runner.wake()

    async def settle(self, order_id: str) -> None:
        """Derive the order's state from every relevant device's answer."""
        res = await asyncio.to_thread(self.store.settle_order, order_id, self.ops.relevant)
        self.ops.report_settled(order_id, res)

    def enforce_again(self, order_id: str, device: str) -> None:
        """Work on ``order_id`` is due on ``device`` (drift found, MAC sighted): wake
        that device's loop now rather than at the next poll."""
        runner = self.runners.get(device)
        if runner is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(runner.wake)

    # ---- periodic jobs (only on devices this instance owns) ---------------------------

    async def reconcile_device(self, device: str) -> ReconcileReport | None:
        if self.reconciler is None or not self.leases.holds(device):
            return None
        try:
            report: ReconcileReport | None = await self._on_device(
                device, self.reconciler.reconcile(device))
        except Exception:
            log.exception("reconcile of %s failed", device)
            return None
        if report is None:
            return None
        if report.repairs:
            log.warning("reconcile %s: %d repair(s): %s", device, len(report.repairs),
                        "; ".join(r["why"] for r in report.repairs[:5]))
            self.runners[device].wake() if device in self.runners else None
        return report

    async def reconcile_all(self) -> ReconcileSummary:
        """One full reconcile cycle over every device this instance owns, now."""
        started = time.monotonic()
        owned = [d for d in self.device_names if self.leases.holds(d)]
        sem = asyncio.Semaphore(self.cfg.engine.reconcile_concurrency)

        async def one(device: str) -> ReconcileReport | None:
            async with sem:
                return await self.reconcile_device(device)

        reports = await asyncio.gather(*(one(d) for d in owned))
        done = [r for r in reports if r is not None]
        return ReconcileSummary(elapsed_s=round(time.monotonic() - started, 3),
                                devices=len(owned), checked=sum(r.checked for r in done),
                                repairs=sum(len(r.repairs) for r in done),
                                unreachable=sorted(r.device for r in done if r.error),
                                unowned_blocks=sum(len(r.unowned) for r in done))

    async def watch(self) -> SweepReport | None:
        if self.watcher is None:
            return None
        watcher = self.watcher
        owned = [d for d in self.device_names if self.leases.holds(d)]
        wanted, held = await watcher.plan(owned)
        total = SweepReport(devices=len(wanted))

        async def one(device: str) -> None:
            if device not in wanted:
                return
            try:
                await self._on_device(device, watcher.sweep_device(
                    device, wanted[device], held, total))
            except Exception:
                log.exception("sweep of %s failed", device)

        sem = asyncio.Semaphore(8)

        async def bounded(device: str) -> None:
            async with sem:
                await one(device)

        await asyncio.gather(*(bounded(d) for d in owned))
        return total

    def jobs(self) -> list[dict[str, Any]]:
        return self._schedule.jobs() if self._schedule else []

    # ---- the API's EngineAPI protocol (enforcer.engine.contract) -----------------------

    def order_accepted(self, order_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake_all)

    def ready(self) -> tuple[bool, str]:
        if not self._started:
            return False, "engine not started"
        owned = sum(1 for d in self.device_names if self.leases.holds(d))
        return True, (f"instance {self.instance_id}: {owned} of "
                      f"{len(self.device_names)} devices owned")

    def _not_here(self, device: str) -> str:
        """Why ``device`` is not asked here: the instance that owns it, if any."""
        owner = next((le.owner for le in self.store.leases() if le.device == device), None)
        return f"owned by instance {owner}" if owner else "no owner yet"

    async def where(self, mac: Mac) -> list[Sighting]:
        out: list[Sighting] = []
        for device in self.device_names:
            if not self.leases.holds(device):
                out.append(Sighting(device=device, mac=str(mac), verdict="unknown",
                                    state="not queried", error=self._not_here(device)))
                continue
            x = await self._on_device(device, look(self.pool, device, mac))
            if x is not None and (x.verdict.value != "absent" or x.error):
                out.append(x.as_dict())
        return out

    async def plan(self, order_id: str | None) -> list[PlanRow]:
        if order_id is None:
            orders = await asyncio.to_thread(self.store.active_orders)
        else:
            try:
                orders = [await asyncio.to_thread(self.store.get_order, order_id)]
            except EnforcerError as e:
                raise LookupError(str(e)) from None
        out: list[PlanRow] = []
        for order in orders:
            targets = await asyncio.to_thread(self.store.targets_for_order, order.id)
            held = {(t.device, t.mac) for t in targets if t.state is not TargetState.REMOVED}
            for t in targets:
                if t.state is TargetState.REMOVED:
                    continue
                out.append(PlanRow(
                    order_id=order.id, device=t.device, mac=str(t.mac),
                    kind=t.device_kind.value, mechanism=t.mechanism,
                    current_state=t.state.value,
                    action="none" if t.state in APPLIED_TARGET_STATES else "apply"))
            for device in self.ops.relevant(order, targets):
                if not self.leases.holds(device):
                    continue
                for mac, _kind in self.ops.macs_on(order, device):
                    if (device, mac) in held:
                        continue
                    x = await look(self.pool, device, mac)
                    if x.verdict.value != "absent":
                        out.append(PlanRow(order_id=order.id, device=device, mac=str(mac),
                                           kind=_kind.value, mechanism=None,
                                           current_state=x.state,
                                           action="apply (seen here, no block yet)"))
        if order_id is None and self.reconciler is not None:
            for device in self.device_names:
                if not self.leases.holds(device):
                    continue
                report = await self.reconciler.reconcile(device, dry_run=True)
                for r in report.repairs:
                    out.append(PlanRow(order_id=r["order_id"], device=device, mac=r["mac"],
                                       kind=None, mechanism=r["mechanism"],
                                       current_state="drift", action="repair: " + r["why"]))
                if report.error:
                    out.append(PlanRow(order_id=None, device=device, mac=None, kind=None,
                                       mechanism=None, current_state="unreachable",
                                       action="retry: " + report.error))
        return out

    async def preview(self, order: OrderRecord) -> list[PreviewRow]:
        """Dry run of a new order (not stored): what each device in its scope would get.
        Look-ups only; nothing is written and no device is changed."""
        out: list[PreviewRow] = []
        for device in self.ops.relevant(order, []):
            if not self.leases.holds(device):
                out.append(PreviewRow(device=device, layer=self.ops.layer_of(device),
                                      mac=None, kind=None, seen="unknown",
                                      state="not queried", error=self._not_here(device),
                                      mechanism=None, action="unknown", reset=False))
                continue
            rows = await self._on_device(device, self.ops.preview(order, device))
            out.extend(rows or [])
        return out

    def devices(self) -> list[DeviceRow]:
        states = {d.name: d for d in self.store.all_device_states()}
        leases = {le.device: le for le in self.store.leases()}
        out: list[DeviceRow] = []
        for name, d in sorted(self.inv.devices.items()):
            st = states.get(name)
            le = leases.get(name)
            has = self.pool.profile(name).transports if d.enabled else None
            out.append(DeviceRow(
                name=name, kind=d.kind, profile=d.profile, host=d.host,
                # only the transports the device's profile uses (None: it has none)
                snmp_port=d.snmp_port if has is None or has.snmp else None,
                ssh_port=d.ssh_port if has is None or has.ssh else None,
                host_key_pinned=d.host_key is not None or bool(
                    st and st.host_key_fingerprint),
                reachable=st.reachable if st else None,
                last_error=st.last_error if st else None,
                owner=le.owner if le else None))
        return out

    async def check_device(self, name: str) -> CheckResult:
        if name not in self.inv.devices:
            raise LookupError(f"no device {name!r} in inventory")
        if not self.leases.holds(name):
            return NotChecked(name=name, reachable=None, device=name, verdict="unknown",
                              state="not queried", error=self._not_here(name))
        drv = self.pool.get(name)
        facts: CheckFacts | None = None
        try:
            if isinstance(drv, DeviceCheck):
                facts = await self._on_device(name, drv.check())
            reachable, err = True, None
        except EnforcerError as e:
            reachable, err = False, str(e)
        await asyncio.to_thread(self.store.set_device_state, name, reachable=reachable,
                                last_error=err)
        self.metrics.device_up.labels(name).set(1 if reachable else 0)
        empty: CheckFacts = {}
        out: Checked = {**(facts or empty), "name": name, "reachable": reachable,
                        "error": err}
        return out

    async def cluster_status(self) -> ClusterStatus:
        """Instances (live or not), each device's owner, lease epoch and age."""
        now = datetime.now(UTC)
        instances = await asyncio.to_thread(self.store.instances)
        leases = await asyncio.to_thread(self.store.leases)
        ttl = self.cfg.engine.lease_ttl_s
        return {
            "self": self.instance_id,
            "instances": [InstanceStatus(
                id=i.id, url=i.url,
                heartbeat_age_s=round((now - i.heartbeat_at).total_seconds(), 1),
                live=(now - i.heartbeat_at).total_seconds() <= ttl * 2,
                devices=sum(1 for le in leases if le.owner == i.id and le.expires_at > now))
                for i in instances],
            "leases": [LeaseStatus(
                device=le.device, owner=le.owner, epoch=le.epoch,
                age_s=round((now - le.acquired_at).total_seconds(), 1),
                expires_in_s=round((le.expires_at - now).total_seconds(), 1))
                for le in leases],
            "failovers_here": self.leases.failovers,
        }

    async def trust_device(self, name: str, actor: str,
                           expect: str | None = None) -> TrustResult:
        """``devices trust``: read the SSH host key the device presents now and pin it in
        the store (audited as ``device.trusted`` by ``actor``), only if its fingerprint is
        ``expect`` (read from the device's console): any other key is refused, audited
        and counted, and nothing is pinned. A key pinned in the
        inventory wins: such a device is only confirmed, and a device presenting another
        key is refused (HostKeyError, alert metric) until the inventory is corrected."""
        from enforcer.transport.ssh import fetch_host_key, fingerprint_of_line

        dev = self.inv.devices.get(name)
        if dev is None:
            raise LookupError(f"no device {name!r} in inventory")
        if self.pool.profile(name).transports.ssh is None:
            raise InputError(f"{name} has no SSH transport; there is no host key to trust")
        key_line, fp = await asyncio.to_thread(fetch_host_key, dev.host, dev.ssh_port)
        if expect is not None and expect.rstrip("=") != fp:
            self.metrics.host_key_mismatch.labels(name).inc()
            await asyncio.to_thread(
                self.store.record_event, actor, "device.host_key_refused", None,
                {"device": name, "reason": "unexpected", "presented": fp, "expected": expect,
                 "message": "devices trust refused: not the expected key"})
            raise HostKeyError(f"{name} presents {fp}, not the expected {expect}; nothing "
                               "pinned (a different device, or someone in between)",
                               device=name, reason="unexpected", presented=fp)
        if dev.host_key is not None:
            pinned = fingerprint_of_line(dev.host_key)
            if pinned != fp:
                self.metrics.host_key_mismatch.labels(name).inc()
                await asyncio.to_thread(
                    self.store.record_event, actor, "device.host_key_refused", None,
                    {"device": name, "reason": "changed", "presented": fp, "pinned": pinned,
                     "message": "devices trust refused: the inventory pins another key"})
                raise HostKeyError(f"the inventory pins {pinned} but the device presents "
                                   f"{fp}; not trusted (correct host_key in the inventory)",
                                   device=name, reason="changed", presented=fp)
            return TrustResult(name=name, fingerprint=fp, host_key=key_line,
                               pinned_in="inventory", previous_fingerprint=pinned,
                               changed=False)
        before = await asyncio.to_thread(self.store.get_device_state, name)
        previous = before.host_key_fingerprint if before else None
        await asyncio.to_thread(self.store.set_device_state, name, actor=actor,
                                host_key=key_line, host_key_fingerprint=fp,
                                action="device.trusted")
        log.warning("%s: SSH host key %s trusted by %s (was %s)", name, fp, actor,
                    previous or "not pinned",
                    extra={"event": "device.trusted", "device": name, "actor": actor})
        return TrustResult(name=name, fingerprint=fp, host_key=key_line, pinned_in="store",
                           previous_fingerprint=previous, changed=previous != fp)

    def layer_of(self, device: str) -> str:
        """The enforcement layer a device belongs to (dhcp, cmts, headend)."""
        return self.ops.layer_of(device)

    def node_names(self) -> set[str]:
        return set(self.inv.nodes)
