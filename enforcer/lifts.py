"""The lift workflow: request, approve or refuse, evaluate the policy's rule, expire.

A lift request freezes its electorate (see ``enforcer.policy.model``) and the number of
approvals it needs. Each approver decides once, with their own token, on one request.
When the rule is met the order moves ``lift_pending -> lifting`` and the engine is woken
(it removes every block and confirms the modem forwards again, then ``lifted``); a
refusal that makes the rule unreachable, or the time limit passing, closes the request
and the order goes back to the state it had: the ban stays in force throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from enforcer.domain.model import Role
from enforcer.policy import Event, Policy, Rule
from enforcer.store import LiftRequestRecord, Store, UserRecord
from enforcer.store.errors import Conflict
from enforcer.store.lifts import REJECTIONS

if TYPE_CHECKING:
    from enforcer.notify import Notifier


class LiftError(Exception):
    """A lift request or decision that is refused. ``code`` is the API error code
    (``forbidden``, ``conflict``, ``lift_expired``, ``invalid``), ``status`` its HTTP
    status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


#: How each rejected decision is answered.
_REJECTED = {"expired": (409, "lift_expired"), "closed": (409, "conflict"),
             "duplicate": (409, "conflict"), "no_rule": (409, "conflict"),
             "not_eligible": (403, "forbidden"), "requester": (403, "forbidden")}
assert set(_REJECTED) == REJECTIONS


def evaluate(lift: LiftRequestRecord) -> str | None:
    """``approved`` when the rule is met, ``refused`` when it can no longer be met,
    else None. Only decisions by members of the frozen electorate count."""
    electorate = set(lift.electorate or ())
    if lift.rule is None or lift.needed is None or not electorate:
        return None
    yes = {a.approver for a in lift.approvals if a.decision == "approve"} & electorate
    no = {a.approver for a in lift.approvals if a.decision == "refuse"} & electorate
    needed = len(electorate) if lift.rule == Rule.UNANIMOUS.value else lift.needed
    if len(yes) >= needed and not (lift.rule == Rule.UNANIMOUS.value and no):
        return "approved"
    if len(electorate) - len(no) < needed or (lift.rule == Rule.UNANIMOUS.value and no):
        return "refused"
    return None


def _event_payload(lift: LiftRequestRecord, reason: str, **extra: Any) -> dict[str, Any]:
    return {"order_id": lift.order_id, "reason": reason, "lift_request_id": lift.id,
            "requested_by": lift.requested_by, "on_behalf_of": lift.on_behalf_of,
            "why": lift.reason, "group": lift.group, "rule": lift.rule,
            "needed": lift.needed, "electorate": list(lift.electorate or ()),
            "expires_at": lift.expires_at.isoformat(), "state": lift.state,
            "approvals": [{"approver": a.approver, "decision": a.decision, "note": a.note}
                          for a in lift.approvals], **extra}


@dataclass
class LiftWorkflow:
    """The service the API calls (synchronous: run it in a worker thread)."""

    store: Store
    policy: Policy
    notifier: Notifier
    wake: Callable[[str], None]  # ``engine.order_accepted``

    def request(self, order_id: str, user: UserRecord, *, reason: str,
                ttl_hours: float | None = None,
                on_behalf_of: str | None = None) -> LiftRequestRecord:
        """Open a lift request for ``order_id`` (order -> ``lift_pending``)."""
        order = self.store.get_order(order_id)
        lp = self.policy.for_reason(order.reason).lift
        if ttl_hours is not None and ttl_hours > lp.time_limit_hours:
            raise LiftError(422, "invalid", f"ttl_hours: at most {lp.time_limit_hours:g} "
                            f"for {order.reason.value} (policy time limit)")
        electorate = self.store.eligible_approvers(lp.group)
        if not lp.requester_may_approve:
            electorate = [u for u in electorate if u not in (user.name, on_behalf_of)]
        needed = lp.needed(len(electorate))
        where = f"group {lp.group}" if lp.group else "the approver role"
        if not electorate or needed > len(electorate):
            raise LiftError(409, "conflict", (
                f"{order.reason.value} needs {lp.rule.value} consent"
                + (f" ({needed})" if lp.rule is Rule.N_OF_M else "")
                + f" from {where}, which has {len(electorate)} eligible approver(s); "
                "add approvers before requesting the lift"))
        hours = ttl_hours if ttl_hours is not None else lp.time_limit_hours
        try:
            lift = self.store.request_lift(
                order_id, requested_by=user.name, reason=reason,
                ttl=timedelta(hours=hours), on_behalf_of=on_behalf_of, group=lp.group,
                rule=lp.rule.value, needed=needed, electorate=electorate)
        except Conflict as e:
            raise LiftError(409, "conflict", str(e)) from None
        self.notifier.notify(Event.LIFT_REQUESTED, _event_payload(lift, order.reason.value))
        return lift

    def decide(self, order_id: str, user: UserRecord, *, decision: str,
               lift_request_id: str | None = None,
               note: str | None = None) -> tuple[LiftRequestRecord, str]:
        """Record ``user``'s decision on the order's open request (or on
        ``lift_request_id``, which must belong to the order). Returns the request and the
        outcome (``recorded``, ``approved`` or ``refused``); raises :class:`LiftError`
        for a decision that is refused (it is audited)."""
        order = self.store.get_order(order_id)
        if lift_request_id is None:
            found = self.store.open_lift_request(order_id)
            if found is None:
                raise LiftError(409, "conflict", f"order {order_id} has no open lift request")
            lift_request_id = found.id
        lift = self.store.get_lift_request(lift_request_id)
        if lift.order_id != order_id:
            raise LiftError(404, "not_found",
                            f"no lift request {lift_request_id} for order {order_id}")
        if user.role is not Role.APPROVER:
            raise LiftError(403, "forbidden", "only approvers decide on lift requests")
        done = self.store.decide_lift(lift.id, approver=user.name, decision=decision,
                                      note=note, evaluate=evaluate)
        reason = order.reason.value
        if done.outcome == "expired" and lift.state == "open":
            self.notifier.notify(Event.LIFT_EXPIRED, _event_payload(done.lift, reason))
        if done.outcome in _REJECTED:
            status, code = _REJECTED[done.outcome]
            raise LiftError(status, code, done.message)
        if done.outcome == "approved":
            self.notifier.notify(Event.LIFT_APPROVED, _event_payload(done.lift, reason))
            self.wake(order_id)
        elif done.outcome == "refused":
            self.notifier.notify(Event.LIFT_REFUSED, _event_payload(done.lift, reason))
        return done.lift, done.outcome


async def expire_lifts(store: Store, notifier: Notifier,
                       clock: Callable[[], datetime] | None = None) -> int:
    """Close every open lift request past its time limit as ``expired`` (the order goes
    back to its previous active state; the ban stays in force), audited and notified.
    ``clock`` (aware UTC) says what "now" is; the store's clock when None. Returns how
    many expired."""
    expired = await asyncio.to_thread(store.expire_open_lifts, clock() if clock else None)
    for lift in expired:
        order = await asyncio.to_thread(store.get_order, lift.order_id)
        notifier.notify(Event.LIFT_EXPIRED, _event_payload(lift, order.reason.value))
    return len(expired)
