"""Shared blocks, amendments and account links in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from enforcer.api.testing import FakeClock
from enforcer.domain.coverage import Definition
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Scope, TargetState
from enforcer.store import Conflict, DeviceSpec, OrderRecord, OrderSpec, Store, TargetSpec
from enforcer.store.db import upgrade
from enforcer.store.errors import IdempotencyConflict, NotFound
from enforcer.store.links import LINKED, UNLINKED

M1, M2 = Mac("00:1d:cf:00:00:01"), Mac("00:1d:cf:00:00:02")


def _order(store: Store, reason: Reason, *macs: Mac, account: str = "A",
           all_devices: bool = False) -> str:
    rec, _ = store.create_order(OrderSpec(
        ticket="T", account=account, reason=reason, scope=Scope.FOOTPRINT,
        devices=tuple(DeviceSpec(m, DeviceKind.CABLE_MODEM) for m in macs),
        all_devices=all_devices), actor="eve", source="api")
    return rec.id


def test_shared_block_is_handed_over(store: Store) -> None:
    safety = _order(store, Reason.THREAT_OF_VIOLENCE, M1)
    weak = _order(store, Reason.NON_PAYMENT, M1)
    assert {o.id for o in store.orders_naming([M1])} == {safety, weak}
    [t] = store.upsert_targets(weak, [TargetSpec("c1", M1, DeviceKind.CABLE_MODEM, "deny")])
    store.update_target(t.id, actor="engine", audit_action="target.applied",
                        state=TargetState.APPLIED)
    [b] = store.live_blocks_on("c1", [M1], excluding=safety)
    assert b.order_id == weak
    [shared] = store.share_blocks(safety, [b])
    assert shared.state is TargetState.APPLIED and shared.mechanism == "deny"
    store.set_order_state(weak, OrderState.LIFTING, actor="engine")
    released = store.release_block(t.id, [safety])
    assert released.state is TargetState.REMOVED
    assert store.live_holdings([safety, weak]) == {safety: {("c1", M1)}, weak: set()}
    kept = [e.payload for e in store.audit_entries(order_id=weak, action="block.kept")]
    assert kept == [{"device": "c1", "mac": str(M1), "mechanism": "deny",
                     "kept_for": [safety]}]
    [accepted] = store.audit_entries(order_id=weak, action="order.accepted")
    assert accepted.payload["linked_orders"] == [safety]


def test_amend_order_writes_the_definition_and_is_optimistic(store: Store) -> None:
    oid = _order(store, Reason.FRAUD, M1)
    order = store.get_order(oid)
    before = Definition.of(order, ["cmts"])
    after = Definition(Reason.THREAT_OF_VIOLENCE, Scope.FOOTPRINT, None,
                       (*before.devices, (M2, DeviceKind.CABLE_MODEM, None)), ("cmts",))
    rec, applied, superseded = store.amend_order(
        oid, before=before, after=after, policy_layers=["cmts"], changes=[["reason"]],
        actor="eve")
    assert applied and superseded == []
    assert rec.reason is Reason.THREAT_OF_VIOLENCE and {d.mac for d in rec.devices} == {M1, M2}
    assert rec.layers == ("cmts",)
    with pytest.raises(Conflict):  # ``before`` is no longer the order's definition
        store.amend_order(oid, before=before, after=after, policy_layers=["cmts"],
                          changes=[], actor="eve")
    [entry] = store.audit_entries(order_id=oid, action="order.amended")
    assert entry.payload["after"]["reason"] == "threat_of_violence"


def test_links_history_and_account_orders(store: Store, clock: FakeClock) -> None:
    acct = _order(store, Reason.HARASSMENT, account="ACC", all_devices=True)
    at = clock() - timedelta(minutes=5)
    change = store.record_link_event(LINKED, account="ACC", mac=M1,
                                     kind=DeviceKind.CABLE_MODEM, ecm_mac=None, at=at,
                                     source="event", idempotency=("w1", "h1"))
    assert change.outcome == "applied" and change.account_orders == (acct,)
    assert store.record_link_event(LINKED, account="ACC", mac=M1, kind=DeviceKind.CABLE_MODEM,
                                   ecm_mac=None, at=at, source="event",
                                   idempotency=("w1", "h1")).outcome == "replayed"
    stale = store.record_link_event(UNLINKED, account="ACC", mac=M1,
                                    kind=DeviceKind.CABLE_MODEM, ecm_mac=None,
                                    at=at - timedelta(minutes=1), source="event")
    assert stale.outcome == "stale" and store.links_of("ACC")[0].mac == M1
    assert store.account_orders() == {"ACC": {acct: set()}}
    assert store.account_orders_missing("ACC", [M1]) == [acct]
    with pytest.raises(Conflict):
        store.record_link_event(LINKED, account="ACC", mac=M2, kind=DeviceKind.CABLE_MODEM,
                                ecm_mac=None, at=at, source="event", max_per_account=1)
    assert [e["outcome"] for e in store.link_history("ACC")] == ["applied", "stale"]
    # A new account order picks up what is linked now.
    second = store.get_order(_order(store, Reason.FRAUD, account="ACC", all_devices=True))
    assert [d.mac for d in second.devices] == [M1]


def _applied(store: Store, order_id: str, device: str, mac: Mac,
             mechanism: str = "deny") -> int:
    [t] = [t for t in store.upsert_targets(order_id, [TargetSpec(
        device, mac, DeviceKind.CABLE_MODEM, mechanism)])
        if (t.device, t.mac, t.mechanism) == (device, mac, mechanism)]
    store.update_target(t.id, actor="engine", audit_action="target.applied",
                        state=TargetState.APPLIED)
    return t.id


def test_orders_naming_finds_devices_and_ecms_oldest_first(store: Store,
                                                           clock: FakeClock) -> None:
    box = Mac("00:02:de:00:00:01")
    same_time = [_order(store, Reason.FRAUD, M1) for _ in range(4)]
    clock.advance(60)
    # six orders within one millisecond: their ids (ULIDs) do not say which came first
    same_ms = []
    for _ in range(6):
        clock.advance(0.0001)
        same_ms.append(_order(store, Reason.FRAUD, M1))
    clock.advance(60)
    rec, _ = store.create_order(OrderSpec(
        ticket="T", account="B", reason=Reason.FRAUD, scope=Scope.FOOTPRINT,
        devices=(DeviceSpec(box, DeviceKind.SET_TOP, M1),)), actor="eve", source="api")
    clock.advance(60)
    lifted = _order(store, Reason.FRAUD, M1)
    store.set_order_state(lifted, OrderState.LIFTED, actor="engine")
    _order(store, Reason.FRAUD, M2)
    # oldest first, orders of the same instant by id; the set-top's eCM counts
    assert [o.id for o in store.orders_naming([M1])] == [*sorted(same_time), *same_ms,
                                                         rec.id]
    assert [o.id for o in store.orders_naming([str(M1)], active_only=False)] == [
        *sorted(same_time), *same_ms, rec.id, lifted]
    assert [o.id for o in store.orders_naming([box])] == [rec.id]
    assert store.orders_naming([]) == []


def test_live_holdings_and_blocks_on_a_device(store: Store) -> None:
    mine = _order(store, Reason.FRAUD, M1, M2)
    other = _order(store, Reason.THREAT_OF_VIOLENCE, M1, M2)
    done = _order(store, Reason.NON_PAYMENT, M1)
    t_other = [_applied(store, other, dev, mac) for dev, mac in
               (("c2", M1), ("c1", M2), ("c1", M1))]
    _applied(store, done, "c1", M1)
    store.set_order_state(done, OrderState.LIFTED, actor="engine")
    # a row updated later than the next one was written (PostgreSQL then reads it last)
    store.update_target(t_other[1], actor="engine", audit_action="target.verified",
                        state=TargetState.VERIFIED)
    removed = _applied(store, mine, "c1", M1)
    store.update_target(removed, actor="engine", audit_action="target.removed",
                        state=TargetState.REMOVED)
    assert store.live_holdings([mine]) == {mine: set()}
    assert store.live_holdings([other, other]) == {other: {("c2", M1), ("c1", M2),
                                                           ("c1", M1)}}
    assert store.live_holdings([]) == {}
    # the live blocks of other active orders, on that device, for those MACs, in order
    blocks = store.live_blocks_on("c1", [M1, M2], excluding=mine)
    assert [(b.id, b.order_id, b.device, b.mac) for b in blocks] == [
        (t_other[1], other, "c1", M2), (t_other[2], other, "c1", M1)]
    assert [b.id for b in store.live_blocks_on("c1", [M1], excluding=mine)] == [t_other[2]]
    assert store.live_blocks_on("c1", [M1], excluding=other) == []  # mine is removed
    assert store.live_blocks_on("c3", [M1], excluding=mine) == []
    assert store.live_blocks_on("c1", [], excluding=mine) == []


def test_sharing_and_releasing_are_audited_by_the_engine(store: Store) -> None:
    safety = _order(store, Reason.THREAT_OF_VIOLENCE, M1)
    weak = _order(store, Reason.NON_PAYMENT, M1)
    t = _applied(store, weak, "c1", M1)
    [b] = store.live_blocks_on("c1", [M1], excluding=safety)
    store.share_blocks(safety, [b])
    [shared] = store.audit_entries(order_id=safety, action="target.shared")
    assert shared.actor == "engine" and shared.payload["from_target"] == t
    with pytest.raises(ValueError, match=r"^release_block needs the orders the block is "
                       r"kept for$"):
        store.release_block(t, [])
    with pytest.raises(NotFound, match=r"^no target 999999$"):
        store.release_block(999999, [safety])
    third = _order(store, Reason.FRAUD, M1)
    store.release_block(t, [third])
    [adopted] = store.audit_entries(order_id=third, action="target.adopted")
    assert adopted.actor == "engine" and adopted.payload["from_order"] == weak
    assert [e.actor for e in store.audit_entries(order_id=weak, action="target.released")
            ] == ["engine"]
    with pytest.raises(NotFound, match=r"^no order ord_missing$"):
        store.share_blocks("ord_missing", [b])


def _upgrade(store: Store, oid: str, **kw: object) -> tuple[Definition, Definition]:
    before = Definition.of(store.get_order(oid), ["cmts"])
    after = Definition(Reason.THREAT_OF_VIOLENCE, before.scope, before.node, before.devices,
                       before.layers)
    return before, after


def test_an_amendment_writes_the_whole_definition_and_audits_it(store: Store,
                                                                clock: FakeClock) -> None:
    box, ecm = Mac("00:02:de:00:00:01"), Mac("00:02:de:00:00:02")
    box0, ecm0 = Mac("00:02:de:00:00:03"), Mac("00:02:de:00:00:04")
    rec, _ = store.create_order(OrderSpec(
        ticket="T", account="A", reason=Reason.FRAUD, scope=Scope.FOOTPRINT,
        devices=(DeviceSpec(M1, DeviceKind.CABLE_MODEM),
                 DeviceSpec(box0, DeviceKind.SET_TOP, ecm0))), actor="eve", source="api")
    oid = rec.id
    other = _order(store, Reason.FRAUD, M1, M2)
    # blocks for M2 and the eCM, released when an earlier consented downgrade took them
    # off the order; one for M2 on c2 not released yet; the staying set-top's eCM
    # released on c2; another order's released block for M2
    gone = [_applied(store, oid, "c1", mac) for mac in (M2, ecm)]
    stays = [_applied(store, oid, "c2", M2), _applied(store, oid, "c2", ecm0),
             _applied(store, other, "c1", M2)]
    kept = _applied(store, oid, "c1", M1)
    for t in [*gone, *stays[1:]]:
        store.update_target(t, actor="engine", audit_action="target.removed",
                            state=TargetState.REMOVED)
    store.record_scan(oid, "c1", phase="ban", ok=True, detail={})
    store.record_scan(other, "c1", phase="ban", ok=True, detail={})
    store.set_order_state(oid, OrderState.VERIFIED, actor="engine")
    before = Definition.of(store.get_order(oid), ["cmts"])
    after = Definition(Reason.HARASSMENT, Scope.NODE, "n1",
                       ((box0, DeviceKind.SET_TOP, ecm0), (M2, DeviceKind.CABLE_MODEM, None),
                        (box, DeviceKind.SET_TOP, ecm)), ("dhcp", "cmts"))
    clock.advance(30)
    rec, applied, superseded = store.amend_order(
        oid, before=before, after=after, policy_layers=["cmts"], changes=[["devices"]],
        actor="eve", note="wrong box", ticket="E-1")
    assert applied and superseded == []
    assert (rec.reason, rec.scope, rec.node, rec.layers) == (
        Reason.HARASSMENT, Scope.NODE, "n1", ("dhcp", "cmts"))
    assert {(d.mac, d.kind, d.ecm_mac) for d in rec.devices} == {
        (box0, DeviceKind.SET_TOP, ecm0), (M2, DeviceKind.CABLE_MODEM, None),
        (box, DeviceKind.SET_TOP, ecm)}
    assert Definition.of(rec, ["cmts"]) == after
    # another order naming the same MACs is untouched
    assert {d.mac for d in store.get_order(other).devices} == {M1, M2}
    assert [t.id for t in store.targets_for_order(other)] == [stays[2]]
    assert [sc.device for sc in store.scans_for_order(other)] == ["c1"]
    # the order enforces its new definition: every device answers again, and MACs named
    # again are planned afresh (their removed targets are gone); live targets stay (the
    # engine releases what is no longer needed), and so do the staying set-top's
    assert (rec.state, rec.state_detail) == (
        OrderState.ENFORCING, "amended (upgrade): enforcing the new definition")
    assert rec.updated_at == clock()
    assert store.scans_for_order(oid) == []
    assert sorted(t.id for t in store.targets_for_order(oid)) == sorted([*stays[:2], kept])
    [entry] = store.audit_entries(order_id=oid, action="order.amended")
    assert entry.actor == "eve" and entry.payload == {
        "kind": "upgrade", "changes": [["devices"]], "before": before.to_json(),
        "after": after.to_json(), "note": "wrong box", "ticket": "E-1",
        "lift_request_id": None}
    [state] = [e.payload for e in store.audit_entries(order_id=oid, action="order.state")
               if e.payload["from"] == "verified"]
    assert state == {"from": "verified", "to": "enforcing",
                     "detail": "amended (upgrade): enforcing the new definition"}


@pytest.mark.parametrize(("state", "then"), [
    (OrderState.ACCEPTED, OrderState.ACCEPTED), (OrderState.ENFORCING, OrderState.ENFORCING),
    (OrderState.LIFT_PENDING, OrderState.LIFT_PENDING),
    (OrderState.ENFORCED, OrderState.ENFORCING), (OrderState.VERIFIED, OrderState.ENFORCING)])
def test_an_amended_order_enforces_again_unless_it_still_is(
        store: Store, clock: FakeClock, state: OrderState, then: OrderState) -> None:
    oid = _order(store, Reason.FRAUD, M1)
    other = _order(store, Reason.FRAUD, M1)
    store.set_order_state(oid, state, actor="engine")
    before, after = _upgrade(store, oid)
    untouched = store.get_order(other).updated_at
    clock.advance(30)
    rec, applied, _ = store.amend_order(oid, before=before, after=after,
                                        policy_layers=["cmts"], changes=[], actor="eve")
    assert applied and rec.state is then and rec.updated_at == clock()
    assert store.get_order(other).updated_at == untouched
    moved = [e.payload["to"] for e in store.audit_entries(order_id=oid, action="order.state")
             if e.actor == "eve"]
    assert moved == ([] if then is state else ["enforcing"])


def test_an_amendment_is_refused_for_an_order_that_is_not_held(store: Store) -> None:
    for state in (OrderState.LIFTING, OrderState.LIFTED):
        oid = _order(store, Reason.FRAUD, M1)
        before, after = _upgrade(store, oid)
        store.set_order_state(oid, state, actor="engine")
        with pytest.raises(Conflict,
                           match=rf"^order {oid} is {state.value}; it cannot be amended$"):
            store.amend_order(oid, before=before, after=after, policy_layers=["cmts"],
                              changes=[], actor="eve")
    with pytest.raises(NotFound, match=r"^no order ord_missing$"):
        store.amend_order("ord_missing", before=before, after=after, policy_layers=["cmts"],
                          changes=[], actor="eve")
    live = _order(store, Reason.FRAUD, M1)
    with pytest.raises(Conflict, match=rf"^order {live} changed meanwhile; amend it again$"):
        store.amend_order(live, before=after, after=before, policy_layers=["cmts"],
                          changes=[], actor="eve")
    assert store.audit_entries(action="order.amended") == []


def _apply_upgrade(store: Store, oid: str) -> tuple[OrderRecord, bool, list[str]]:
    """``_upgrade`` written by the store: (order, applied, superseded requests)."""
    before, after = _upgrade(store, oid)
    return store.amend_order(oid, before=before, after=after, policy_layers=["cmts"],
                             changes=[], actor="eve")


def test_an_upgrade_supersedes_the_open_lift_request(store: Store) -> None:
    oid = _order(store, Reason.FRAUD, M1)
    lift = store.request_lift(oid, requested_by="bob", reason="paid")
    rec, applied, superseded = _apply_upgrade(store, oid)
    assert applied and superseded == [lift.id]
    assert store.get_lift_request(lift.id).state == "superseded"
    assert rec.state is OrderState.ACCEPTED  # back where it was before the request


def test_an_upgrade_supersedes_only_this_orders_open_request(store: Store) -> None:
    """Another order's open request, and this order's closed ones, are left alone."""
    oid = _order(store, Reason.FRAUD, M1)
    other = _order(store, Reason.FRAUD, M2, account="B")
    expired = store.request_lift(oid, requested_by="bob", reason="paid")
    assert [x.id for x in store.expire_open_lifts(expired.expires_at)] == [expired.id]
    mine = store.request_lift(oid, requested_by="bob", reason="paid again")
    theirs = store.request_lift(other, requested_by="bob", reason="paid")
    _, applied, superseded = _apply_upgrade(store, oid)
    assert applied and superseded == [mine.id]
    assert [store.get_lift_request(x.id).state for x in (expired, mine, theirs)] == [
        "expired", "superseded", "open"]


def test_an_amending_webhook_counts_once(store: Store) -> None:
    oid = _order(store, Reason.FRAUD, M1)
    before, after = _upgrade(store, oid)
    assert store.replayed(("w1", "h1")) is None
    _, applied, _ = store.amend_order(oid, before=before, after=after, policy_layers=["cmts"],
                                      changes=[], actor="eve", idempotency=("w1", "h1"))
    assert applied and store.replayed(("w1", "h1")) == oid
    rec, applied, superseded = store.amend_order(
        oid, before=before, after=after, policy_layers=["cmts"], changes=[], actor="eve",
        idempotency=("w1", "h1"))
    assert (applied, superseded, rec.reason) == (False, [], Reason.THREAT_OF_VIOLENCE)
    assert len(store.audit_entries(order_id=oid, action="order.amended")) == 1
    for attempt in (lambda: store.replayed(("w1", "other")),
                    lambda: store.amend_order(oid, before=before, after=after,
                                              policy_layers=["cmts"], changes=[],
                                              actor="eve", idempotency=("w1", "other")),
                    lambda: store.record_receipt(("w1", "other"), oid)):
        with pytest.raises(IdempotencyConflict) as err:
            attempt()
        assert (err.value.webhook_id, err.value.order_id) == ("w1", oid)
    # a downgrade's delivery (a lift request, nothing amended yet) is remembered too
    store.record_receipt(("w2", "h2"), oid)
    store.record_receipt(("w2", "h2"), oid)
    assert store.replayed(("w2", "h2")) == oid
    assert [(e.actor, e.payload) for e in store.audit_entries(
        order_id=oid, action="webhook.received")] == [
        ("escalation-system", {"webhook_id": "w2", "body_sha256": "h2"})]


def test_adopting_a_block(store: Store, clock: FakeClock) -> None:
    """An order that shares a block gets a live target of its own for exactly that
    (device, MAC, mechanism): a removed one of its own made live again, else a new one;
    its scan of that device is forgotten (and no other scan); audited once."""
    weak = _order(store, Reason.NON_PAYMENT, M1)
    safety = _order(store, Reason.THREAT_OF_VIOLENCE, M1)
    third = _order(store, Reason.FRAUD, M1)
    source = _applied(store, weak, "c1", M1)
    old = _applied(store, safety, "c1", M1)
    store.update_target(old, actor="engine", audit_action="target.released",
                        state=TargetState.REMOVED, last_error="x")
    # the third order holds M1 on another device and by another mechanism, not this block
    elsewhere = [_applied(store, third, "c2", M1), _applied(store, third, "c1", M1, "other"),
                 _applied(store, third, "c1", M2)]
    for oid, device in ((safety, "c1"), (safety, "c2"), (weak, "c1"), (third, "c1")):
        store.record_scan(oid, device, phase="ban", ok=True, detail={})
    updated = {o: store.get_order(o).updated_at for o in (weak, safety, third)}
    clock.advance(60)
    block, other = store.live_blocks_on("c1", [M1], excluding=safety)
    assert (block.id, other.id) == (source, elsewhere[1])
    store.share_blocks(safety, [block])
    again = next(t for t in store.targets_for_order(safety) if t.id == old)
    assert (again.state, again.applied_at, again.removed_at, again.verified_at,
            again.last_error) == (TargetState.APPLIED, clock(), None, None, None)
    store.share_blocks(safety, [block])  # it holds the block already: nothing new
    store.share_blocks(third, [block])
    [new] = [t for t in store.targets_for_order(third) if t.id not in elsewhere]
    assert (new.device, new.mac, new.mechanism, new.state, new.attempts, new.transcript,
            new.applied_at) == ("c1", M1, "deny", TargetState.APPLIED, 0, None, clock())
    assert {t.id: t.state for t in store.targets_for_order(third) if t.id in elsewhere} == {
        i: TargetState.APPLIED for i in elsewhere}
    assert [e.payload for e in store.audit_entries(action="target.shared")] == [
        {"target_id": old, "device": "c1", "mac": str(M1), "mechanism": "deny",
         "from_order": weak, "from_target": source},
        {"target_id": new.id, "device": "c1", "mac": str(M1), "mechanism": "deny",
         "from_order": weak, "from_target": source}]
    assert [e.order_id for e in store.audit_entries(action="target.shared")] == [safety, third]
    scans = {(o, sc.device) for o in (weak, safety, third) for sc in store.scans_for_order(o)}
    assert scans == {(safety, "c2"), (weak, "c1")}
    assert {o: store.get_order(o).updated_at for o in (weak, safety, third)} == {
        weak: updated[weak], safety: clock(), third: clock()}


def test_an_amendment_goes_ahead_of_queued_engine_writes(tmp_path: Path,
                                                         clock: FakeClock) -> None:
    """An upgrade (like a new order) is intake: on SQLite it takes the write lock before
    the engine's writes already queued for it, so a safety upgrade is never held back
    by a busy engine. (The in-process write queue exists on SQLite only: PostgreSQL
    serialises the chain with its advisory lock.)"""
    url = f"sqlite:///{tmp_path / 'enforcer.db'}"
    upgrade(url)
    store = Store.from_url(url, clock=clock)
    try:
        _amendment_ahead_of_queued_writes(store)
    finally:
        store.dispose()


def _amendment_ahead_of_queued_writes(store: Store) -> None:
    oid = _order(store, Reason.FRAUD, M1)
    before, after = _upgrade(store, oid)
    lock = store._write_lock
    assert lock is not None

    def queued(n: int) -> None:
        deadline = time.monotonic() + 10
        while len(lock._urgent) + len(lock._normal) < n:
            assert time.monotonic() < deadline, "writer did not queue"
            time.sleep(0.005)

    threads: list[threading.Thread] = []
    with lock.hold():  # a transaction in progress
        for i in range(2):  # engine writes waiting for it
            t = threading.Thread(target=store.record_event,
                                 args=("engine", "test.engine_write", oid, {"i": i}))
            t.start()
            threads.append(t)
            queued(i + 1)
        t = threading.Thread(target=store.amend_order, args=(oid,), kwargs={
            "before": before, "after": after, "policy_layers": ["cmts"],
            "changes": [["reason"]], "actor": "eve"})
        t.start()
        threads.append(t)
        queued(3)
    for t in threads:
        t.join(10)
    seq = {e.action: e.seq for e in store.audit_entries(order_id=oid)
           if e.action in ("order.amended", "test.engine_write")}
    writes = [e.seq for e in store.audit_entries(order_id=oid, action="test.engine_write")]
    assert len(writes) == 2 and seq["order.amended"] < min(writes)
