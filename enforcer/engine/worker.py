"""Carry one order through its states: plan, push, kick, verify; or lift.

Every step is idempotent, so an order interrupted by a crash is simply run again from
the top (a re-applied block that is present changes nothing on the device).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from enforcer.domain.mac import Mac
from enforcer.domain.model import OrderState, TargetState, Verdict
from enforcer.engine import planner
from enforcer.engine.backoff import backoff_s
from enforcer.engine.observe import Look, look, look_everywhere
from enforcer.engine.pool import DriverPool
from enforcer.errors import CapacityError, EnforcerError
from enforcer.inventory.model import Inventory
from enforcer.logging import order_context
from enforcer.store.records import OrderRecord, TargetRecord, TargetSpec
from enforcer.store.repository import Store

log = logging.getLogger(__name__)
ACTOR = "engine"


class OrderWorker:
    """Enforces, verifies and lifts orders against devices."""

    def __init__(self, *, store: Store, inventory: Inventory, pool: DriverPool,
                 settings: Any, metrics: Any, kick_needed: Callable[[str, str], bool],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.inv = inventory
        self.pool = pool
        self.cfg = settings
        self.metrics = metrics
        self.kick_needed = kick_needed
        self.clock = clock

    async def _db(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kw)

    # ---- planning --------------------------------------------------------------------

    async def make_plan(self, order: OrderRecord) -> tuple[list[TargetSpec], dict[str, Any]]:
        """Look the order's MACs up and decide the targets (no pushing)."""
        headends = self.inv.headends()
        ecm_lookup: dict[Mac, Mac | None] = {}
        box_seen: dict[Mac, list[str]] = {}
        for box in planner.box_macs(order):
            box_seen[box] = []
            for he in headends:
                drv: Any = self.pool.get(he)
                try:
                    obs = await drv.observe(box)
                except EnforcerError as e:
                    log.warning("headend %s look-up of %s failed: %s", he, box, e)
                    continue
                if obs.verdict is not Verdict.ABSENT:
                    box_seen[box].append(he)
                    if hasattr(drv, "ecm_mac") and box not in ecm_lookup:
                        ecm_lookup[box] = await drv.ecm_mac(box)
        in_scope = planner.scope_devices(order, self.inv)
        seen: dict[Mac, dict[str, Verdict]] = {}
        looks: list[Look] = []
        for cm in planner.cm_macs(order, ecm_lookup):
            found = await look_everywhere(self.pool, in_scope, cm.mac)
            looks.extend(found)
            seen[cm.mac] = {x.device: x.verdict for x in found}
        mechanisms = self.pool.mechanisms(sorted(set(in_scope) | set(headends)))
        specs = planner.plan(order, self.inv, mechanisms=mechanisms, seen=seen,
                             ecm_lookup=ecm_lookup, box_seen=box_seen)
        return specs, {"looks": [x.as_dict() for x in looks],
                       "ecm": {str(k): str(v) if v else None for k, v in ecm_lookup.items()},
                       "headends": {str(k): v for k, v in box_seen.items()}}

    # ---- enforcing -------------------------------------------------------------------

    async def enforce(self, order_id: str) -> None:
        with order_context(order_id):
            order = await self._db(self.store.get_order, order_id)
            if order.state in (OrderState.LIFTING,):
                await self.lift(order)
                return
            if order.state not in (OrderState.ACCEPTED, OrderState.ENFORCING,
                                   OrderState.ENFORCED, OrderState.VERIFIED):
                return
            if order.state is OrderState.ACCEPTED:
                order = await self._db(self.store.set_order_state, order_id,
                                       OrderState.ENFORCING, actor=ACTOR)
            specs, why = await self.make_plan(order)
            targets = await self._db(self.store.upsert_targets, order_id, specs, actor=ACTOR)
            await self._push_due(targets)
            targets = await self._db(self.store.targets_for_order, order_id)
            live = [t for t in targets if t.state is not TargetState.REMOVED]
            if any(t.state in (TargetState.PENDING, TargetState.RETRYING) for t in live):
                await self._db(self.store.set_order_state, order_id, OrderState.ENFORCING,
                               detail=_pending_detail(live), actor=ACTOR)
                return
            if order.state is not OrderState.VERIFIED:
                await self._db(self.store.set_order_state, order_id, OrderState.ENFORCED,
                               detail=f"{len(live)} target(s) applied", actor=ACTOR)
            await self.verify(order_id, planned_from=why)

    async def _push_due(self, targets: list[TargetRecord]) -> None:
        now = self.clock()
        due = [t for t in targets if t.state in (TargetState.PENDING, TargetState.RETRYING)
               and (t.next_attempt_at is None or _aware(t.next_attempt_at) <= now)]
        await asyncio.gather(*(self.push(t) for t in due))

    async def push(self, t: TargetRecord) -> None:
        drv = self.pool.get(t.device)
        started = time.monotonic()
        try:
            res = await drv.apply(t.mac, t.mechanism, kind=t.device_kind)
        except CapacityError as e:
            await self._fall_back(t, str(e))
            return
        except EnforcerError as e:
            await self._retry(t, str(e))
            return
        finally:
            self.metrics.push_duration.labels(t.device, t.mechanism).observe(
                time.monotonic() - started)
        transcript = "\n".join(res.transcript)
        if res.failed:
            self.metrics.pushes.labels(t.device, t.mechanism, "error").inc()
            await self._retry(t, res.error or "push failed", transcript=transcript)
            return
        self.metrics.pushes.labels(t.device, t.mechanism, "changed" if res.changed
                                   else "unchanged").inc()
        await self._db(self.store.update_target, t.id, actor=ACTOR, audit_action="target.applied",
                       state=TargetState.APPLIED, applied_at=self.clock(), last_error=None,
                       attempts=t.attempts + 1, next_attempt_at=None, transcript=transcript)
        if t.device in self.inv.cmtses() and self.kick_needed(t.device, t.mechanism):
            await self._kick(t)

    async def _kick(self, t: TargetRecord) -> None:
        try:
            res = await self.pool.get(t.device).kick(t.mac)
        except EnforcerError as e:
            log.warning("kick of %s on %s failed: %s", t.mac, t.device, e)
            return
        await self._db(self.store.record_event, ACTOR, "target.kicked", t.order_id, {
            "device": t.device, "mac": str(t.mac), "changed": res.changed,
            "failed": res.failed, "error": res.error})

    async def _retry(self, t: TargetRecord, error: str, *, transcript: str | None = None) -> None:
        delay = backoff_s(t.attempts, base=self.cfg.engine.retry_base_s,
                          cap=self.cfg.engine.max_retry_backoff_s)
        fields: dict[str, Any] = {"state": TargetState.RETRYING, "last_error": error[:500],
                                  "attempts": t.attempts + 1,
                                  "next_attempt_at": self.clock() + timedelta(seconds=delay)}
        if transcript is not None:
            fields["transcript"] = transcript
        await self._db(self.store.update_target, t.id, actor=ACTOR,
                       audit_action="target.retrying", **fields)
        log.warning("target %s %s on %s: %s; retry in %.1fs", t.mac, t.mechanism, t.device,
                    error, delay)

    async def _fall_back(self, t: TargetRecord, error: str) -> None:
        """A full table: try the device's next mechanism, never drop the ban."""
        mechs = self.pool.get(t.device).mechanisms()
        rest = mechs[mechs.index(t.mechanism) + 1:] if t.mechanism in mechs else []
        self.metrics.fallbacks.labels(t.device, t.mechanism).inc()
        if not rest:
            await self._retry(t, f"{error}; no other mechanism on {t.device}")
            return
        await self._db(self.store.update_target, t.id, actor=ACTOR,
                       audit_action="target.fallback", state=TargetState.REMOVED,
                       last_error=f"{error}; falling back to {rest[0]}", removed_at=self.clock())
        spec = TargetSpec(t.device, t.mac, t.device_kind, rest[0])
        new = await self._db(self.store.upsert_targets, t.order_id, [spec], actor=ACTOR)
        for nt in new:
            if nt.spec == spec and nt.state in (TargetState.PENDING, TargetState.RETRYING):
                await self.push(nt)

    # ---- verifying -------------------------------------------------------------------

    async def verify(self, order_id: str, *, planned_from: dict[str, Any] | None = None) -> bool:
        """Poll registration state until the ban shows everywhere in scope, or time out."""
        cfg = self.cfg.engine
        deadline = time.monotonic() + cfg.verify_timeout_s
        settle_until = time.monotonic() + cfg.verify_settle_s
        while True:
            order = await self._db(self.store.get_order, order_id)
            targets = [t for t in await self._db(self.store.targets_for_order, order_id)
                       if t.state is not TargetState.REMOVED]
            ok, looks, why = await self._check(order, targets,
                                               settling=time.monotonic() < settle_until)
            if ok:
                await self._mark_verified(order, targets, looks)
                return True
            if time.monotonic() >= deadline:
                await self._db(self.store.set_order_state, order_id, OrderState.ENFORCED,
                               detail=f"not verified yet: {why}", actor=ACTOR)
                await self._requeue_forwarding(targets, looks)
                return False
            await asyncio.sleep(cfg.verify_poll_s)

    async def _check(self, order: OrderRecord, targets: list[TargetRecord], *,
                     settling: bool) -> tuple[bool, list[Look], str]:
        in_scope = planner.scope_devices(order, self.inv)
        cm_targets = {t.mac for t in targets if t.device in self.inv.cmtses()}
        looks: list[Look] = []
        for mac in sorted(cm_targets):
            looks.extend(await look_everywhere(self.pool, in_scope, mac))
        for t in targets:
            if t.device in self.inv.headends():
                looks.append(await look(self.pool, t.device, t.mac))
        for x in looks:
            if x.verdict is Verdict.FORWARDING:
                return False, looks, f"{x.mac} forwarding on {x.device} ({x.state})"
            if x.verdict is Verdict.UNKNOWN:
                return False, looks, f"{x.mac} unknown on {x.device} ({x.error or x.state})"
            if settling and x.transient and x.device in {t.device for t in targets}:
                return False, looks, f"{x.mac} re-registering on {x.device} ({x.state})"
        return True, looks, "ok"

    async def _mark_verified(self, order: OrderRecord, targets: list[TargetRecord],
                             looks: list[Look]) -> None:
        now = self.clock()
        for t in targets:
            verdicts = [x for x in looks if x.device == t.device and x.mac == t.mac]
            verdict = verdicts[0].verdict.value if verdicts else None
            if t.state is not TargetState.VERIFIED or t.verdict != verdict:
                await self._db(self.store.update_target, t.id, actor=ACTOR,
                               audit_action="target.verified", state=TargetState.VERIFIED,
                               verified_at=now, verdict=verdict)
        if order.state is not OrderState.VERIFIED:
            await self._db(self.store.record_event, ACTOR, "order.verification", order.id,
                           {"looks": [x.as_dict() for x in looks]})
            rec = await self._db(self.store.set_order_state, order.id, OrderState.VERIFIED,
                                 detail="blocked or absent everywhere in scope", actor=ACTOR)
            if rec.verified_at is not None:
                self.metrics.time_to_verified.observe(
                    (_aware(rec.verified_at) - _aware(rec.created_at)).total_seconds())

    async def _requeue_forwarding(self, targets: list[TargetRecord], looks: list[Look]) -> None:
        """A block that does not show: re-apply and kick on the next pass."""
        bad = {(x.device, x.mac) for x in looks if x.verdict is Verdict.FORWARDING}
        for t in targets:
            if (t.device, t.mac) in bad:
                await self._retry(t, "block applied but the modem still forwards")

    # ---- lifting ---------------------------------------------------------------------

    async def lift(self, order: OrderRecord) -> None:
        """Remove every block, kick, and confirm the modem forwards again (the consent
        rules that move an order to ``lifting`` live in the lift workflow)."""
        targets = [t for t in await self._db(self.store.targets_for_order, order.id)
                   if t.state is not TargetState.REMOVED]
        failed = False
        for t in targets:
            drv = self.pool.get(t.device)
            try:
                res = await drv.remove(t.mac, t.mechanism)
                if res.failed:
                    raise EnforcerError(res.error or "remove failed")
            except EnforcerError as e:
                failed = True
                await self._db(self.store.update_target, t.id, actor=ACTOR,
                               audit_action="target.remove_failed", last_error=str(e)[:500])
                continue
            await self._db(self.store.update_target, t.id, actor=ACTOR,
                           audit_action="target.removed", state=TargetState.REMOVED,
                           removed_at=self.clock(), transcript="\n".join(res.transcript))
            if t.device in self.inv.cmtses():
                await self._kick(t)
        if failed:
            await self._db(self.store.set_order_state, order.id, OrderState.LIFTING,
                           detail="some blocks could not be removed yet; retrying", actor=ACTOR)
            return
        ok, looks, why = await self._restored(targets)
        await self._db(self.store.record_event, ACTOR, "order.lift_verification", order.id,
                       {"ok": ok, "looks": [x.as_dict() for x in looks]})
        if not ok:
            await self._db(self.store.set_order_state, order.id, OrderState.LIFTING,
                           detail=f"blocks removed; service not confirmed yet: {why}",
                           actor=ACTOR)
            return
        await self._db(self.store.set_order_state, order.id, OrderState.LIFTED,
                       detail="every block removed; service confirmed restored", actor=ACTOR)

    async def _restored(self, targets: list[TargetRecord]) -> tuple[bool, list[Look], str]:
        """Poll until every formerly blocked MAC forwards again (modem registered and
        passing traffic, set-top decoding). A modem that stays offline past the settle
        window cannot be confirmed and is reported as such."""
        cfg = self.cfg.engine
        deadline = time.monotonic() + cfg.verify_timeout_s
        settle_until = time.monotonic() + cfg.verify_settle_s
        pairs = sorted({(t.device, t.mac) for t in targets})
        while True:
            looks = [await look(self.pool, d, m) for d, m in pairs]
            pending = [x for x in looks if x.verdict is not Verdict.FORWARDING]
            if not pending:
                return True, looks, "ok"
            settled = time.monotonic() >= settle_until
            if settled and all(x.verdict is Verdict.ABSENT for x in pending) and any(
                    x.verdict is Verdict.FORWARDING for x in looks):
                return True, looks, "ok (some MACs offline)"
            if time.monotonic() >= deadline:
                x = pending[0]
                return False, looks, f"{x.mac} on {x.device}: {x.verdict.value} ({x.state})"
            await asyncio.sleep(cfg.verify_poll_s)


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _pending_detail(targets: list[TargetRecord]) -> str:
    waiting = [t for t in targets if t.state in (TargetState.PENDING, TargetState.RETRYING)]
    first = waiting[0]
    return (f"{len(waiting)} target(s) waiting; {first.device}: "
            f"{first.last_error or 'pending'}")
