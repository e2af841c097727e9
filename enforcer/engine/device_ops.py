"""What one instance does on one device it owns, for one order: look the order's MACs
up there, plan and push the blocks, kick, and confirm from registration state (or,
while lifting, remove the blocks and confirm service is back). Each pass ends with a
*scan* row for (order, device); the order's state is derived from all of them.

Every step is idempotent, so a pass interrupted by a crash or a lost lease is simply
run again (re-applying a present block changes nothing on the device).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from enforcer.domain import coverage, lifecycle
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, TargetState, Verdict
from enforcer.drivers.base import EcmLookup
from enforcer.engine import planner
from enforcer.engine.backoff import backoff_s
from enforcer.engine.contract import PreviewRow
from enforcer.engine.observe import Look, look
from enforcer.engine.pool import DriverPool
from enforcer.engine.writes import MAX_BATCH, GroupWriter
from enforcer.errors import CapacityError, EnforcerError
from enforcer.inventory.model import Inventory
from enforcer.inventory.profiles import Profile
from enforcer.logging import order_context
from enforcer.store.cluster import ScanAnswer, Settled
from enforcer.store.records import OrderRecord, TargetRecord, TargetSpec
from enforcer.store.repository import Store

log = logging.getLogger(__name__)

#: Entered while an order only waits for the device (between verification polls, e.g. a
#: modem re-registering): the runner gives the order's slot to another order meanwhile.
Idle = Callable[[], AbstractAsyncContextManager[None]]


def _not_idle() -> AbstractAsyncContextManager[None]:
    return contextlib.nullcontext()


#: The ``idle`` of the scan the current task runs (each order's scan is its own task).
_IDLE: ContextVar[Idle] = ContextVar("enforcer_scan_idle", default=_not_idle)
ACTOR = "engine"
ENFORCING_DETAIL = "looking up the MACs on every device in scope"


class DeviceOps:
    def __init__(self, *, store: Store, inventory: Inventory, pool: DriverPool, settings: Any,
                 metrics: Any,
                 policy_layers: Callable[[Reason], Sequence[str]] = lambda r: ["cmts",
                                                                                "headend"],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 lift_gate: Any = None) -> None:
        self.store = store
        self.inv = inventory
        self.pool = pool
        self.cfg = settings
        self.metrics = metrics
        self.policy_layers = policy_layers
        self.clock = clock
        self.topology = coverage.Topology(
            cmtses=frozenset(inventory.cmtses()), headends=frozenset(inventory.headends()),
            dhcp=frozenset(n for n, d in inventory.devices.items()
                           if d.kind == "dhcp" and d.enabled),
            nodes={n: inventory.node_devices(n) for n in inventory.nodes})
        # ``enforcer.audit.proof.LiftGate``: no block is removed for a lift the audit
        # trail does not prove (None only in unit tests of the device work itself).
        self.lift_gate = lift_gate
        # Kicks put off until the (order, device) scan is recorded: an immediate
        # per-registration block already cut the modem off (profile ``immediate``).
        self._deferred: dict[tuple[str, str], list[TargetRecord]] = {}
        # (order, device) answers dropped because the order changed meanwhile: the device
        # loop looks at them again at once.
        self._changed: set[tuple[str, str]] = set()
        # The writes every order makes at each step (a target applied or retrying, a
        # reset, the device's answer): those made meanwhile share one transaction.
        self.writer = GroupWriter(store)

    # ---- mechanism facts: from the device's profile, through its driver ---------------

    def kick_needed(self, device: str, mechanism: str) -> bool:
        """A block that takes effect at the next registration: reset the modem after it
        (docs/docsis.md section 6)."""
        return self.pool.mechanism(device, mechanism).kick_after_apply

    def persistence(self, device: str, mechanism: str) -> str:
        """registration (lost when the modem re-registers), reboot or persistent."""
        return self.pool.mechanism(device, mechanism).persistence

    def immediate(self, device: str, mechanism: str) -> str | None:
        """The per-registration block applied at once beside ``mechanism``, if any."""
        return self.pool.mechanism(device, mechanism).immediate

    async def _db(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kw)

    # ---- which devices matter to an order -----------------------------------------------

    def layers(self, order: coverage.OrderLike) -> list[str]:
        """The order's enforcement layers (its own list once amended, else its
        reason's)."""
        return coverage.effective_layers(order, self.policy_layers(order.reason))

    def layer_of(self, device: str) -> str:
        return {"cmts": "cmts", "headend": "headend", "dhcp": "dhcp"}[
            self.inv.devices[device].kind]

    def relevant(self, order: OrderRecord, targets: list[TargetRecord]) -> list[str]:
        """Devices whose scan the order's state waits for (``lifecycle.relevant_devices``:
        the CMTSes in scope, the headends for set-tops, the DHCP servers, as the order's
        layers say, and the devices holding its blocks)."""
        return lifecycle.relevant_devices(order, [(t.device, t.state) for t in targets],
                                          self.topology, self.policy_layers(order.reason))

    def report_settled(self, order_id: str, res: Settled | None) -> None:
        """Metrics and the log line for an order whose state was derived again."""
        if res is None:
            return
        took = None
        if res.after == OrderState.VERIFIED.value and res.before != res.after \
                and not res.verified_before and res.order.verified_at is not None:
            took = (res.order.verified_at - res.order.created_at).total_seconds()
            self.metrics.time_to_verified.observe(took)
        if res.after != res.before:
            event = "order.verified" if res.after == OrderState.VERIFIED.value else "order.state"
            log.info("order %s: %s -> %s", order_id, res.before, res.after,
                     extra={"event": event, "order_id": order_id, "state": res.after,
                            "time_to_verified_s": took})

    async def _finish(self, order: OrderRecord, device: str, *, phase: lifecycle.Phase,
                      ok: bool,
                      detail: dict[str, Any],
                      updates: list[tuple[int, str, dict[str, Any]]] | None = None) -> bool:
        """Record this device's answer, its target changes and the order's derived
        state in one transaction; True when recorded (the order is settled), False
        when the order changed meanwhile and the device must look again."""
        res = await self.writer.write(self.store.scan_op(
            order.id, device, phase=phase, ok=ok, detail=detail,
            target_updates=updates or [], relevant=self.relevant, actor=ACTOR,
            definition=coverage.definition_key(order)))
        if res is None:
            log.info("order %s changed while %s answered; looking again", order.id, device)
            self._changed.add((order.id, device))
            return False
        self.report_settled(order.id, res)
        return True

    async def answer_out_of_scope(self, order_ids: list[str], device: str
                                  ) -> tuple[list[str], list[str]]:
        """The ban pass of every order in ``order_ids`` that ``device`` has nothing to do
        for (not in its scope, no block of it there), answered together: two reads and
        one transaction instead of four store calls per order. The same writes as
        ``scan_ban`` makes for each (``accepted`` -> ``enforcing``, the device's answer
        ``in_scope: False``, the order's state derived again). Returns (the orders
        answered, the orders that changed meanwhile and need another look); the rest
        need a pass of their own."""
        orders = await self._db(self.store.get_orders, order_ids)
        targets = await self._db(self.store.targets_for_orders, [o.id for o in orders])
        answers: list[ScanAnswer] = []
        for order in orders:
            mine = targets.get(order.id, [])
            if order.state not in lifecycle.SCANNED_FOR_BAN or any(
                    t.device == device and t.state is not TargetState.REMOVED for t in mine) \
                    or device in self.relevant(order, mine):
                continue
            answers.append(ScanAnswer(
                order.id, lifecycle.BAN, True, {"in_scope": False},
                definition=coverage.definition_key(order),
                enforcing=ENFORCING_DETAIL if order.state is OrderState.ACCEPTED else None))
        if not answers:
            return [], []
        # A few answers per transaction: the store's write lock is held for the whole
        # transaction, and intake (a new order) must not wait long behind it.
        results: list[Any] = []
        for i in range(0, len(answers), MAX_BATCH):
            results += await self._db(self.store.record_scans, device,
                                      answers[i:i + MAX_BATCH], relevant=self.relevant,
                                      actor=ACTOR)
        done: list[str] = []
        again: list[str] = []
        for a, res in zip(answers, results, strict=True):
            if res is None:
                log.info("order %s changed while %s answered; looking again", a.order_id,
                         device)
                again.append(a.order_id)
            else:
                done.append(a.order_id)
                self.report_settled(a.order_id, res)
        return done, again

    def macs_on(self, order: OrderRecord, device: str) -> list[tuple[Mac, DeviceKind]]:
        if device in self.inv.headends():
            return [(m, DeviceKind.SET_TOP) for m in planner.box_macs(order)]
        out = [(cm.mac, cm.kind) for cm in planner.cm_macs(order, {})]
        return out

    async def _earlier_layers_pending(self, order: OrderRecord, device: str) -> bool:
        """True while a layer listed before this device's has not confirmed yet (and the
        order is younger than ``engine.layer_wait_s``)."""
        layers = self.layers(order)
        mine = self.layer_of(device)
        if mine not in layers or layers.index(mine) == 0:
            return False
        age = (self.clock() - _aware(order.created_at)).total_seconds()
        if age >= self.cfg.engine.layer_wait_s:
            return False
        earlier = set(layers[:layers.index(mine)])
        targets = await self._db(self.store.targets_for_order, order.id)
        waiting_for = [d for d in self.relevant(order, targets) if self.layer_of(d) in earlier]
        if not waiting_for:
            return False
        scans = {s.device: s for s in await self._db(self.store.scans_for_order, order.id)}
        return not all(d in scans and scans[d].ok for d in waiting_for)

    # ---- ban ---------------------------------------------------------------------------

    async def scan_ban(self, order: OrderRecord, device: str, idle: Idle = _not_idle) -> bool:
        """One pass for one order on one device; True when it recorded the device's
        answer and settled the order (False: it waits for another layer or device).
        ``idle`` is entered while the pass only waits between verification polls."""
        token = _IDLE.set(idle)
        try:
            return await self._scan_ban(order, device)
        finally:
            _IDLE.reset(token)

    async def _scan_ban(self, order: OrderRecord, device: str) -> bool:
        with order_context(order.id):
            # An accepted order becomes enforcing with this device's first write (the
            # planned targets' transaction, or on its own where none is written).
            enforcing = ENFORCING_DETAIL if order.state is OrderState.ACCEPTED else None

            async def enforcing_now() -> None:
                if enforcing is not None:
                    await self._db(self.store.set_order_state, order.id,
                                   OrderState.ENFORCING, detail=enforcing, actor=ACTOR)

            targets = await self._db(self.store.targets_for_order, order.id)
            if await self._release_unneeded(order, device, targets):
                targets = await self._db(self.store.targets_for_order, order.id)
            if device not in self.relevant(order, targets):
                await enforcing_now()
                return await self._finish(order, device, phase=lifecycle.BAN, ok=True,
                                          detail={"in_scope": False})
            if device in self.inv.headends():
                # First, whatever the layer order: the CMTS side waits for the eCM MACs.
                await enforcing_now()
                enforcing = None
                await self._learn_ecms(order, device)
            if device in self.inv.cmtses() and await self._ecm_pending(order):
                await enforcing_now()
                return False  # the headend has not told us the set-top's eCM yet
            if await self._earlier_layers_pending(order, device):
                await enforcing_now()
                return False  # e.g. the DHCP refusal first, then the CMTS block and kick
            macs = self.macs_on(order, device)
            home = self._home(order, device)
            looks = [await look(self.pool, device, m) for m, _ in macs]
            await self._breaches(order, device, targets, looks)
            # Blocks other active orders hold here for these MACs: this order co-owns
            # them (a lift of the other order then leaves them in place).
            live = {t.mac for t in targets if t.device == device
                    and t.state is not TargetState.REMOVED}
            shared: dict[Mac, TargetRecord] = {}
            for b in await self._db(self.store.live_blocks_on, device, [m for m, _ in macs],
                                    excluding=order.id):
                if b.mac not in live:
                    shared.setdefault(b.mac, b)
            if shared:
                targets = await self._db(self.store.share_blocks, order.id,
                                         list(shared.values()), actor=ACTOR)
                live |= set(shared)
            specs = self._wanted(device, macs, looks, live, home)
            if specs:
                targets = await self.writer.write(self.store.targets_op(
                    order.id, specs, actor=ACTOR, enforcing=enforcing))
            else:
                await enforcing_now()
            mine = [t for t in targets if t.device == device]
            kicked = await self._push_due(mine, {x.mac: x for x in looks})
            mine = [t for t in await self._db(self.store.targets_for_order, order.id)
                    if t.device == device and t.state is not TargetState.REMOVED]
            ok, looks, why = await self._confirm_blocked(
                device, [m for m, _ in macs], kicked,
                need_blocked=self.layer_of(device) == "dhcp")
            updates: list[tuple[int, str, dict[str, Any]]] = []
            if ok:
                now = self.clock()
                for t in mine:
                    if t.state is TargetState.APPLIED:
                        verdict = next((x.verdict.value for x in looks if x.mac == t.mac), None)
                        updates.append((t.id, "target.verified", {
                            "state": TargetState.VERIFIED, "verified_at": now,
                            "verdict": verdict}))
            else:
                await self._requeue_forwarding(mine, looks)
            return await self._finish(order, device, phase=lifecycle.BAN, ok=ok, updates=updates,
                                      detail={"why": why,
                                              "looks": [x.as_dict() for x in looks]})

    def _home(self, order: OrderRecord, device: str) -> bool:
        """A device that blocks the order's MACs even where they are not registered now:
        the CMTSes of the order's node, and DHCP servers (which refuse the MAC whether or
        not it holds a lease)."""
        return (bool(order.node) and order.node in self.inv.nodes
                and device in self.inv.node_devices(order.node or "")) \
            or self.layer_of(device) == "dhcp"

    def _wanted(self, device: str, macs: list[tuple[Mac, DeviceKind]], looks: list[Look],
                live: set[Mac], home: bool) -> list[TargetSpec]:
        """The targets a ban pass plans on ``device``: a MAC seen there (or any MAC on a
        home device) that no live block of the order holds yet, by the profile's first
        mechanism."""
        mechs = self.pool.get(device).mechanisms()
        return [TargetSpec(device, m, k, mechs[0])
                for (m, k), x in zip(macs, looks, strict=True)
                if mechs and m not in live and (x.verdict is not Verdict.ABSENT or home)]

    async def preview(self, order: OrderRecord, device: str) -> list[PreviewRow]:
        """What a ban pass of ``order`` would do on ``device``, without writing anything
        or changing the device (look-ups only): per MAC, the block it would push or the
        block of another order it would share, and whether the modem would be reset."""
        if device not in self.relevant(order, []):
            return []
        boxes = {d.mac: d.ecm_mac for d in order.devices if d.kind is DeviceKind.SET_TOP}
        macs = self.macs_on(order, device)
        if device in self.inv.cmtses():
            for box, ecm in boxes.items():
                if ecm is None:
                    for h in self.inv.headends():
                        drv = self.pool.get(h)
                        learnt = await drv.ecm_mac(box) if isinstance(drv, EcmLookup) else None
                        if learnt is not None:
                            macs.append((learnt, DeviceKind.SET_TOP))
                            break
        looks = [await look(self.pool, device, m) for m, _ in macs]
        shared: dict[Mac, TargetRecord] = {}
        for b in await self._db(self.store.live_blocks_on, device, [m for m, _ in macs],
                                excluding=order.id):
            shared.setdefault(b.mac, b)
        specs = {sp.mac: sp for sp in self._wanted(device, macs, looks, set(shared),
                                                    self._home(order, device))}
        out: list[PreviewRow] = []
        for (mac, kind), x in zip(macs, looks, strict=True):
            row = PreviewRow(
                device=device, layer=self.layer_of(device), mac=str(mac), kind=kind.value,
                seen=x.verdict.value, state=x.state, error=x.error, mechanism=None,
                action="none", reset=False)
            if mac in shared:
                row["mechanism"] = shared[mac].mechanism
                row["action"] = f"share the block of order {shared[mac].order_id}"
            elif mac in specs:
                mech = specs[mac].mechanism
                row["mechanism"], row["action"] = mech, "push"
                row["reset"] = device in self.inv.cmtses() and self.kick_needed(device, mech)
            else:
                row["action"] = "none: not registered here (blocked if it shows up)"
            out.append(row)
        return out

    async def _ecm_pending(self, order: OrderRecord) -> bool:
        boxes = [d for d in order.devices if d.kind is DeviceKind.SET_TOP and d.ecm_mac is None]
        if not boxes or not self.inv.headends():
            return False
        if (self.clock() - _aware(order.created_at)).total_seconds() >= \
                self.cfg.engine.layer_wait_s:
            return False  # no headend answered in time: block what is known
        scans = {s.device for s in await self._db(self.store.scans_for_order, order.id)}
        return not any(h in scans for h in self.inv.headends())

    async def _learn_ecms(self, order: OrderRecord, headend: str) -> None:
        """Record each set-top's eCM MAC (from the controller) on the order, so the CMTS
        side can block it."""
        drv = self.pool.get(headend)
        if not isinstance(drv, EcmLookup):
            return
        for d in order.devices:
            if d.kind is DeviceKind.SET_TOP and d.ecm_mac is None:
                try:
                    ecm = await drv.ecm_mac(d.mac)
                except EnforcerError as e:
                    log.warning("eCM of %s from %s: %s", d.mac, headend, e)
                    continue
                if ecm is not None:
                    await self._db(self.store.set_ecm_mac, order.id, d.mac, ecm, actor=ACTOR)

    async def _push_due(self, targets: list[TargetRecord],
                        seen: dict[Mac, Look] | None = None) -> set[Mac]:
        """Push the targets that are due; ``seen``: this pass's look-ups, by MAC."""
        now = self.clock()
        due = [t for t in targets if t.state in lifecycle.DUE_TARGET_STATES
               and (t.next_attempt_at is None or _aware(t.next_attempt_at) <= now)]
        kicked: set[Mac] = set()
        for t in due:
            if await self.push(t, (seen or {}).get(t.mac)):
                kicked.add(t.mac)
        return kicked

    async def push(self, t: TargetRecord, seen: Look | None = None) -> bool:
        """Apply one target (and kick when the mechanism needs it); True if kicked.
        ``seen``: the MAC's look-up on the device moments ago, if the caller has one."""
        drv = self.pool.get(t.device)
        if self.persistence(t.device, t.mechanism) == "registration" and \
                await self._not_registered(t, seen):
            return False
        started = time.monotonic()
        try:
            res = await drv.apply(t.mac, t.mechanism, kind=t.device_kind)
        except CapacityError as e:
            return await self._fall_back(t, str(e))
        except EnforcerError as e:
            await self._retry(t, str(e))
            return False
        finally:
            self.metrics.push_duration.labels(t.device, t.mechanism).observe(
                time.monotonic() - started)
        transcript = "\n".join(res.transcript)
        if res.failed:
            self.metrics.pushes.labels(t.device, t.mechanism, "error").inc()
            await self._retry(t, res.error or "push failed", transcript=transcript)
            return False
        self.metrics.pushes.labels(t.device, t.mechanism,
                                   "changed" if res.changed else "unchanged").inc()
        await self.writer.write(self.store.target_op(
            t.id, actor=ACTOR, audit_action="target.applied", state=TargetState.APPLIED,
            applied_at=self.clock(), last_error=None, attempts=t.attempts + 1,
            next_attempt_at=None, transcript=transcript))
        log.info("pushed %s %s on %s (%s)", t.mac, t.mechanism, t.device,
                 "changed" if res.changed else "unchanged",
                 extra={"event": "target.applied", "order_id": t.order_id, "device": t.device,
                        "mac": str(t.mac), "mechanism": t.mechanism, "changed": res.changed})
        if t.device in self.inv.cmtses() and self.kick_needed(t.device, t.mechanism):
            imm = self.immediate(t.device, t.mechanism)
            if imm is not None and await self._apply_immediate(t, imm):
                self._deferred.setdefault((t.order_id, t.device), []).append(t)
                return False
            return await self.kick(t)
        return False

    async def _apply_immediate(self, t: TargetRecord, mechanism: str) -> bool:
        """Cut the modem off now with a per-registration block; True if it holds."""
        try:
            res = await self.pool.get(t.device).apply(t.mac, mechanism, kind=t.device_kind)
        except EnforcerError as e:
            log.warning("immediate %s for %s on %s failed: %s", mechanism, t.mac, t.device, e)
            return False
        await self.writer.write(self.store.event_op(ACTOR, "target.immediate", t.order_id, {
            "device": t.device, "mac": str(t.mac), "mechanism": mechanism,
            "changed": res.changed, "failed": res.failed, "error": res.error}))
        return not res.failed

    def changed_meanwhile(self, order_id: str, device: str) -> bool:
        """True (once) when this device's last answer for the order was dropped because
        the order changed while it was computed."""
        try:
            self._changed.remove((order_id, device))
        except KeyError:
            return False
        return True

    def has_deferred_kicks(self, order_id: str, device: str) -> bool:
        return (order_id, device) in self._deferred

    async def run_deferred_kicks(self, order_id: str, device: str) -> None:
        """The kicks an immediate block allowed to wait (within the reset budget)."""
        for t in self._deferred.pop((order_id, device), []):
            await self.kick(t)

    async def _not_registered(self, t: TargetRecord, seen: Look | None = None) -> bool:
        """A per-registration block cannot be applied to a modem that is not registered
        here (moved away, powered off): nothing can forward through this device, so
        the target holds as "absent"; the reconciler and watcher re-apply it the moment
        the MAC registers here again."""
        if seen is not None and seen.verdict is not Verdict.ABSENT and seen.error is None:
            return False  # registered here moments ago
        x = await look(self.pool, t.device, t.mac)
        if x.verdict is not Verdict.ABSENT or x.error is not None:
            return False
        await self._db(self.store.update_target, t.id, actor=ACTOR,
                       audit_action="target.absent", state=TargetState.VERIFIED,
                       verdict=Verdict.ABSENT.value, verified_at=self.clock(), last_error=None,
                       next_attempt_at=None)
        return True

    async def kick(self, t: TargetRecord) -> bool:
        try:
            res = await self.pool.get(t.device).kick(t.mac)
        except EnforcerError as e:
            log.warning("kick of %s on %s failed: %s", t.mac, t.device, e)
            return False
        await self.writer.write(self.store.event_op(ACTOR, "target.kicked", t.order_id, {
            "device": t.device, "mac": str(t.mac), "changed": res.changed,
            "failed": res.failed, "error": res.error}))
        return not res.failed

    async def _retry(self, t: TargetRecord, error: str, *, transcript: str | None = None) -> None:
        delay = backoff_s(t.attempts, base=self.cfg.engine.retry_base_s,
                          cap=self.cfg.engine.max_retry_backoff_s)
        fields: dict[str, Any] = {"state": TargetState.RETRYING, "last_error": error[:500],
                                  "attempts": t.attempts + 1,
                                  "next_attempt_at": self.clock() + timedelta(seconds=delay)}
        if transcript is not None:
            fields["transcript"] = transcript
        await self.writer.write(self.store.target_op(t.id, actor=ACTOR,
                                                     audit_action="target.retrying",
                                                     **fields))
        log.warning("target %s %s on %s: %s; retry in %.1fs", t.mac, t.mechanism, t.device,
                    error, delay)

    async def _fall_back(self, t: TargetRecord, error: str) -> bool:
        """A full table: use the device's next mechanism, never drop the ban. Mechanisms
        bounded by the same table (the deny list by SNMP and by CLI) are passed over:
        the table is as full by one transport as by the other."""
        drv = self.pool.get(t.device)
        mechs = drv.mechanisms()
        rest = [m for m in (mechs[mechs.index(t.mechanism) + 1:] if t.mechanism in mechs
                            else []) if not _same_table(drv.profile, t.mechanism, m)]
        self.metrics.fallbacks.labels(t.device, t.mechanism).inc()
        if not rest:
            await self._retry(t, f"{error}; no other mechanism on {t.device}")
            return False
        await self._db(self.store.update_target, t.id, actor=ACTOR,
                       audit_action="target.fallback", state=TargetState.REMOVED,
                       last_error=f"{error}; falling back to {rest[0]}", removed_at=self.clock())
        spec = TargetSpec(t.device, t.mac, t.device_kind, rest[0])
        for nt in await self._db(self.store.upsert_targets, t.order_id, [spec], actor=ACTOR):
            if nt.spec == spec and nt.state in lifecycle.DUE_TARGET_STATES:
                return await self.push(nt)
        return False

    async def _confirm_blocked(self, device: str, macs: list[Mac], kicked: set[Mac], *,
                               need_blocked: bool = False) -> tuple[bool, list[Look], str]:
        """Poll the device until every MAC is blocked or absent (after a kick, wait for
        the modem to finish re-registering before "absent" counts)."""
        cfg = self.cfg.engine
        deadline = time.monotonic() + cfg.verify_timeout_s
        settle_until = time.monotonic() + cfg.verify_settle_s
        while True:
            looks = [await look(self.pool, device, m) for m in macs]
            why = _not_blocked(looks, kicked if time.monotonic() < settle_until else set(),
                               need_blocked=need_blocked)
            if why is None:
                return True, looks, "ok"
            if time.monotonic() >= deadline or any(x.error for x in looks):
                return False, looks, why
            async with _IDLE.get()():
                await asyncio.sleep(cfg.verify_poll_s)

    async def _requeue_forwarding(self, targets: list[TargetRecord], looks: list[Look]) -> None:
        bad = {x.mac for x in looks if x.verdict is Verdict.FORWARDING}
        for t in targets:
            if t.mac in bad and t.state in lifecycle.APPLIED_TARGET_STATES:
                await self._retry(t, "block applied but the MAC still forwards")

    # ---- lift --------------------------------------------------------------------------

    async def scan_lift(self, order: OrderRecord, device: str, idle: Idle = _not_idle) -> bool:
        """Remove this device's blocks for the order and confirm service is back; True
        (the device's answer is recorded and the order settled); False, removing
        nothing, when the audit trail does not prove the lift. A block another active
        order still needs stays on the device and passes to that order."""
        token = _IDLE.set(idle)
        try:
            return await self._scan_lift(order, device)
        finally:
            _IDLE.reset(token)

    async def _scan_lift(self, order: OrderRecord, device: str) -> bool:
        with order_context(order.id):
            if self.lift_gate is not None:
                proof = await self.lift_gate.check(order.id)
                if not proof.ok:
                    return False
                if proof.amendment is not None:  # that consent was for a part only
                    log.error("order %s is lifting, but its newest approved request %s "
                              "was an amendment: nothing removed", order.id,
                              proof.lift_request_id)
                    return False
            targets = [t for t in await self._db(self.store.targets_for_order, order.id)
                       if t.device == device]
            kept: dict[str, list[str]] = {}
            for t in targets:
                if t.state is TargetState.REMOVED:
                    continue
                holders = await self._holders(order.id, device, t.mac)
                if holders:
                    await self._db(self.store.release_block, t.id, holders, actor=ACTOR)
                    kept[str(t.mac)] = holders
                    log.warning("lift of %s: %s stays blocked on %s for order(s) %s",
                                order.id, t.mac, device, ", ".join(holders))
                    continue
                error = await self._remove_block(t, "target.removed")
                if error is not None:
                    return await self._finish(order, device, phase=lifecycle.LIFT, ok=False,
                                              detail={"why": f"remove failed: {error}"})
            restore = sorted({t.mac for t in targets if str(t.mac) not in kept})
            ok, looks, why = await self._confirm_restored(device, restore)
            if kept:
                why = f"{why}; kept blocked for other active orders: " + "; ".join(
                    f"{m} ({', '.join(h)})" for m, h in sorted(kept.items()))
            return await self._finish(order, device, phase=lifecycle.LIFT, ok=ok,
                                      detail={"why": why, "kept": kept,
                                              "looks": [x.as_dict() for x in looks]})

    async def _remove_block(self, t: TargetRecord, action: str) -> str | None:
        """Take ``t``'s block off its device (and kick the modem on a CMTS); the error,
        or None once it is removed. No other active order needs the block: the caller
        has checked (``_holders``); a holder that appeared meanwhile gets its block back
        from its own device loop, woken here."""
        try:
            res = await self.pool.get(t.device).remove(t.mac, t.mechanism)
            if res.failed:
                raise EnforcerError(res.error or "remove failed")
        except EnforcerError as e:
            await self._db(self.store.update_target, t.id, actor=ACTOR,
                           audit_action="target.remove_failed", last_error=str(e)[:500])
            return str(e)
        await self._db(self.store.update_target, t.id, actor=ACTOR, audit_action=action,
                       state=TargetState.REMOVED, removed_at=self.clock(),
                       transcript="\n".join(res.transcript))
        late = await self._holders(t.order_id, t.device, t.mac)
        if late:
            log.warning("%s on %s: order(s) %s need it again; re-enforcing", t.mac, t.device,
                        ", ".join(late))
            await self._db(self.store.clear_scans_on, t.device, late)
        if t.device in self.inv.cmtses():
            await self.kick(t)
        return None

    async def _holders(self, order_id: str, device: str, mac: Mac) -> list[str]:
        """Active orders other than ``order_id`` that need ``mac`` blocked on ``device``."""
        others = [o for o in await self._db(self.store.orders_naming, [mac])
                  if o.id != order_id]
        if not others:
            return []
        held = await self._db(self.store.live_holdings, [o.id for o in others])
        return coverage.holders(order_id, device, mac, others, self.topology,
                                lambda o: self.policy_layers(o.reason), held)

    async def _release_unneeded(self, order: OrderRecord, device: str,
                                targets: list[TargetRecord]) -> bool:
        """Blocks on ``device`` that the order no longer needs because a downgrade of it
        was consented to (an approved amendment): removed, or handed to the orders that
        still need them. A block the order's definition no longer explains otherwise
        (an inventory change, a row changed in the database) stays. True if any went."""
        live = [t for t in targets if t.device == device and t.state is not TargetState.REMOVED]
        policy = self.policy_layers(order.reason)
        unneeded = [t for t in live
                    if not coverage.needs(order, device, t.mac, self.topology, policy)]
        if not unneeded:
            return False
        # The approved downgrades, as the audit trail proves them (the chain's record of
        # each amendment, not the database's); without a gate (unit tests), the rows'.
        consented: list[dict[str, Any]] = []
        for r in await self._db(self.store.lift_requests_for_order, order.id):
            if r.amendment is None or r.state != "approved":
                continue
            if self.lift_gate is None:
                consented.append(r.amendment)
                continue
            proof = await self.lift_gate.check(order.id, r.id)
            if proof.ok and proof.amendment is not None:
                consented.append(proof.amendment)
        changed = False
        for t in unneeded:
            if not any(self._dropped_by(a, order, device, t.mac) for a in consented):
                continue
            holders = await self._holders(order.id, device, t.mac)
            if holders:
                await self._db(self.store.release_block, t.id, holders, actor=ACTOR)
            elif await self._remove_block(t, "target.amended_away") is not None:
                continue
            changed = True
        return changed

    def _dropped_by(self, amendment: dict[str, Any], order: OrderRecord, device: str,
                    mac: Mac) -> bool:
        """True when ``amendment`` (a consented downgrade) is why the order no longer
        needs ``mac`` on ``device``: needed before it, not after."""
        try:
            before = coverage.Definition.from_json(amendment["before"])
            after = coverage.Definition.from_json(amendment["after"])
        except (KeyError, TypeError, ValueError):
            return False
        return coverage.needs(before.as_order(order.id), device, mac, self.topology, ()) and \
            not coverage.needs(after.as_order(order.id), device, mac, self.topology, ())

    async def _breaches(self, order: OrderRecord, device: str, targets: list[TargetRecord],
                        looks: list[Look]) -> None:
        """A MAC this order's verified block holds here, seen forwarding: a breach."""
        held = {t.mac for t in targets if t.device == device
                and t.state is TargetState.VERIFIED}
        for x in looks:
            if x.mac in held and x.verdict is Verdict.FORWARDING:
                await self.breach(order.id, device, x.mac, x.state, "engine")

    async def breach(self, order_id: str, device: str, mac: Mac, state: str,
                     source: str) -> None:
        """Count, audit and log a banned MAC seen forwarding (the caller pushes again)."""
        self.metrics.ban_breaches.labels(device, source).inc()
        await self._db(self.store.record_event, source, "ban.breach", order_id, {
            "device": device, "mac": str(mac), "state": state, "source": source})
        log.error("BREACH: %s forwarding on %s (%s) under order %s; enforcing again", mac,
                  device, state, order_id,
                  extra={"event": "ban.breach", "order_id": order_id, "device": device,
                         "mac": str(mac)})

    async def _confirm_restored(self, device: str, macs: list[Mac]
                                ) -> tuple[bool, list[Look], str]:
        cfg = self.cfg.engine
        deadline = time.monotonic() + cfg.verify_timeout_s
        settle_until = time.monotonic() + cfg.verify_settle_s
        while True:
            looks = [await look(self.pool, device, m) for m in macs]
            pending = [x for x in looks if x.verdict is not Verdict.FORWARDING]
            if not pending:
                return True, looks, "ok"
            if time.monotonic() >= settle_until and all(
                    x.verdict is Verdict.ABSENT for x in pending):
                return True, looks, "blocks removed; MAC offline, cannot confirm traffic"
            if time.monotonic() >= deadline:
                x = pending[0]
                return False, looks, f"{x.mac}: {x.verdict.value} ({x.state})"
            async with _IDLE.get()():
                await asyncio.sleep(cfg.verify_poll_s)


def _not_blocked(looks: list[Look], kicked: set[Mac], *,
                 need_blocked: bool = False) -> str | None:
    for x in looks:
        if need_blocked and x.verdict is not Verdict.BLOCKED:
            return f"{x.mac} not refused by {x.device} ({x.state})"
        if x.verdict is Verdict.FORWARDING:
            return f"{x.mac} forwarding on {x.device} ({x.state})"
        if x.verdict is Verdict.UNKNOWN:
            return f"{x.mac} unknown on {x.device} ({x.error or x.state})"
        if x.mac in kicked and x.transient:
            return f"{x.mac} re-registering on {x.device} ({x.state})"
    return None


def _same_table(profile: Profile, full: str, other: str) -> bool:
    """True when ``other`` adds to the bounded table ``full`` found full."""
    a, b = profile.mechanism(full).capacity, profile.mechanism(other).capacity
    return a is not None and b is not None and a.limit == b.limit


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)
