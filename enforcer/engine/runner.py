"""One loop per owned device: scan orders the device has not answered for, push due
targets, re-scan failed answers with backoff, and lift. Runs only while this instance
holds the device's lease; the lease manager starts and stops it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from enforcer.domain import lifecycle
from enforcer.domain.model import OrderState
from enforcer.engine.device_ops import DeviceOps
from enforcer.errors import EnforcerError

log = logging.getLogger(__name__)


class _Slot:
    """An order's slot among the device's ``orders_per_device``. The order gives it up
    while it only waits between verification polls (a kicked modem re-registering):
    otherwise a burst of orders on one device is verified in waves of
    ``orders_per_device``, each as long as a re-registration, while the device idles.
    It keeps the slot while it waits for the store: under a CPU-bound burst, sharing
    slots then only spreads every order over the whole burst (measured, bench/README.md)."""

    def __init__(self, sem: asyncio.Semaphore) -> None:
        self._sem = sem
        self._held = False

    async def __aenter__(self) -> _Slot:
        await self._sem.acquire()
        self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._held:
            self._held = False
            self._sem.release()

    @contextlib.asynccontextmanager
    async def released(self) -> AsyncIterator[None]:
        if not self._held:
            yield
            return
        self._held = False
        self._sem.release()
        try:
            yield
        finally:
            await self._sem.acquire()  # cancelled here: not held, nothing to release
            self._held = True


class DeviceRunner:
    def __init__(self, device: str, *, ops: DeviceOps, store: Any, settings: Any,
                 holds: Callable[[str], bool], settle: Callable[[str], Awaitable[None]],
                 nodes: list[str] | None = None, kinds: list[str] | None = None) -> None:
        self.device = device
        self.ops = ops
        self.store = store
        self.cfg = settings
        self.holds = holds
        self.settle = settle
        self.nodes = nodes  # a CMTS's fiber nodes: only those orders can concern it
        self.kinds = kinds  # a headend: only orders naming a set-top can concern it
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sem = asyncio.Semaphore(settings.engine.orders_per_device)
        # Orders with a task (waiting for an order slot or being worked on). A pass starts
        # tasks and returns: an order that arrives while others are being pushed or
        # verified is picked up at the next wake, not after the slowest of them.
        self.busy: set[str] = set()
        self._work: set[asyncio.Task[None]] = set()
        # Resets an immediate block let wait for the reset budget: they run beside the
        # order loop, so an order waiting for a reset token holds no order slot.
        self._kicks: set[asyncio.Task[None]] = set()
        self._last_full = float("-inf")
        self._last_recheck = float("-inf")
        self._since: Any = None
        # Orders whose answer was dropped because they changed mid-scan (an amendment,
        # a learnt eCM): looked at again on the next pass, whatever ``since`` says.
        self._again: set[str] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"device:{self.device}")

    async def stop(self) -> None:
        tasks = [*self._work, *self._kicks, *([self._task] if self._task is not None else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._work.clear()
        self._kicks.clear()
        self.busy.clear()

    def _kick_later(self, order_id: str) -> None:
        task = asyncio.create_task(self.ops.run_deferred_kicks(order_id, self.device),
                                   name=f"kicks:{self.device}:{order_id}")
        self._kicks.add(task)
        task.add_done_callback(self._kick_done)

    def _kick_done(self, task: asyncio.Task[None]) -> None:
        self._kicks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: deferred resets failed", self.device, exc_info=task.exception())

    def wake(self) -> None:
        self._wake.set()

    async def _resettle(self) -> None:
        """Derive again the state of every order still in progress. A crash (or a lost
        lease) between recording this device's scan and settling the order would
        otherwise leave the order e.g. ``enforcing`` for ever: its scan is recorded, so
        nothing would make this device look at it again."""
        open_states = (OrderState.ENFORCING.value, OrderState.ENFORCED.value,
                       OrderState.LIFTING.value)
        # Only orders this device answered for: the others wait for a scan anyway.
        order_ids = await asyncio.to_thread(self.store.scanned_orders_in, self.device,
                                            open_states)
        for order_id in order_ids:
            if not self.holds(self.device):
                return
            await self.settle(order_id)

    async def _run(self) -> None:
        try:
            await self._resettle()
        except EnforcerError as e:
            log.warning("%s: resettle failed: %s", self.device, e)
        except Exception:
            log.exception("%s: resettle failed", self.device)
        while True:
            try:
                await self.pass_once()
            except EnforcerError as e:
                log.warning("%s: pass failed: %s", self.device, e)
            except Exception:
                log.exception("%s: pass failed", self.device)
            # The engine's poller wakes this loop when something concerns the device; a
            # full pass runs at least every ``full_scan_s`` regardless.
            await asyncio.sleep(self.cfg.engine.pass_gap_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.engine.full_scan_s)
            self._wake.clear()

    async def pass_once(self) -> None:
        if not self.holds(self.device):
            return
        st = self.store
        # Every pass looks at orders changed since the previous one (cheap, indexed);
        # every ``full_scan_s`` it looks at all of them (anything a cleared scan left).
        now_mono = time.monotonic()
        started = datetime.now(UTC) - timedelta(seconds=2)
        since = None if now_mono - self._last_full >= self.cfg.engine.full_scan_s \
            else self._since
        if since is None:
            self._last_full = now_mono
        # A ban waiting for lift approvals stays in force: it is scanned and repaired too.
        # Failed scans and due targets are looked for at most every ``due_scan_s`` (the
        # retry backoff is seconds), new and changed orders on every pass.
        recheck = now_mono - self._last_recheck >= self.cfg.engine.due_scan_s
        ban, lift, again = await asyncio.to_thread(
            st.device_work, self.device, ban_states=lifecycle.SCANNED_FOR_BAN,
            since=since, nodes=self.nodes, kinds=self.kinds,
            stale_after_s=self.cfg.engine.retry_base_s if recheck else None)
        self._since = started
        if recheck:
            self._last_recheck = now_mono
        if again:
            await asyncio.to_thread(st.clear_scans_on, self.device, again)
        changed = [o for o in self._again if o not in self.busy]
        self._again.difference_update(changed)
        fresh = [o for o in ban if o not in self.busy and o not in again]
        if fresh and self.nodes is None and self.kinds is None and self.holds(self.device):
            # A DHCP server: unless the order's layers include DHCP, it is not in its
            # scope; such orders are answered together in one transaction. (A CMTS is
            # given only the orders of its nodes, a headend only those naming a set-top.)
            try:
                done, retry = await self.ops.answer_out_of_scope(fresh, self.device)
            except EnforcerError as e:  # each order then gets a pass of its own
                log.warning("%s: batch answer failed: %s", self.device, e)
                done, retry = [], []
            self._again.update(retry)
            if retry:
                self.wake()
            skip = set(done) | set(retry)
            ban = [o for o in ban if o not in skip]
        for order_id in dict.fromkeys(lift + ban + again + changed):
            if order_id not in self.busy:
                self.busy.add(order_id)
                task = asyncio.create_task(self._one(order_id),
                                           name=f"order:{self.device}:{order_id}")
                self._work.add(task)
                task.add_done_callback(self._work.discard)

    async def _one(self, order_id: str) -> None:
        """One order on this device (``busy`` holds it from the pass that started it)."""
        try:
            async with _Slot(self._sem) as slot:
                if self.holds(self.device):
                    await self._scan(order_id, slot)
        except EnforcerError as e:
            log.warning("%s: order %s: %s", self.device, order_id, e)
        except Exception:
            log.exception("%s: order %s failed", self.device, order_id)
        finally:
            self.busy.discard(order_id)

    async def _scan(self, order_id: str, slot: _Slot) -> None:
        order = await asyncio.to_thread(self.store.get_order, order_id)
        if order.state in lifecycle.LIFT_STATES:
            settled = await self.ops.scan_lift(order, self.device, slot.released)
        elif order.state in lifecycle.SCANNED_FOR_BAN:
            settled = await self.ops.scan_ban(order, self.device, slot.released)
        else:
            return
        if self.ops.changed_meanwhile(order_id, self.device):
            self._again.add(order_id)  # the order changed mid-scan: look again now
            self.wake()
            return
        if not settled:  # the scan waits (e.g. for another layer): derive anyway
            await self.settle(order_id)
        # Resets put off by an immediate block happen after the order is settled.
        if self.ops.has_deferred_kicks(order_id, self.device):
            self._kick_later(order_id)
