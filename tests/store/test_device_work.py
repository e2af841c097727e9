"""What one pass of a device loop is given (``Store.device_work``), on SQLite and
PostgreSQL: the orders a device answers for and has not answered yet, for a full pass
and for the orders changed since the last one, for a CMTS (its nodes, footprint
orders, orders without a node, orders it holds a target for), a headend (orders naming
a set-top, or holding a target there) and a DHCP server (every order); lifts; failed
scans and due targets looked at again."""

from __future__ import annotations

from datetime import timedelta

from enforcer.api.testing import FakeClock
from enforcer.domain import lifecycle
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Scope
from enforcer.store import OrderSpec, Store
from enforcer.store.records import DeviceSpec, TargetSpec

_n = iter(range(1, 10_000))


def _order(store: Store, scope: Scope, node: str | None,
           kind: DeviceKind = DeviceKind.CABLE_MODEM) -> str:
    i = next(_n)
    clock = store.clock
    assert isinstance(clock, FakeClock)
    clock.advance(1)  # created one after the other: the pass lists them oldest first
    o, _ = store.create_order(OrderSpec(
        ticket=f"T-{i}", account=f"acct-{i}", reason=Reason.FRAUD, scope=scope, node=node,
        devices=(DeviceSpec(Mac(f"00:11:22:33:{i // 256:02x}:{i % 256:02x}"), kind),)),
        actor="eng", source="api")
    return o.id


def _work(store: Store, device: str, *, since: object = None, nodes: list[str] | None,
          kinds: list[str] | None = None, stale_after_s: float | None = None
          ) -> tuple[list[str], list[str], list[str]]:
    return store.device_work(device, ban_states=lifecycle.SCANNED_FOR_BAN,
                             since=since,  # type: ignore[arg-type]
                             nodes=nodes, kinds=kinds, stale_after_s=stale_after_s)


def test_a_cmts_full_pass_gets_what_concerns_it_and_nothing_else(store: Store) -> None:
    mine = _order(store, Scope.NODE, "node-a")
    also_mine = _order(store, Scope.CMTS, "node-b")
    footprint = _order(store, Scope.FOOTPRINT, "node-z")  # another node, every CMTS
    nodeless = _order(store, Scope.FOOTPRINT, None)
    elsewhere = _order(store, Scope.NODE, "node-z")
    held = _order(store, Scope.NODE, "node-y")  # moved: a block of it is on cmts-1
    store.upsert_targets(held, [TargetSpec("cmts-1", Mac("00:11:22:33:ff:01"),
                                           DeviceKind.CABLE_MODEM, "cm-ctrl")])
    ban, lift, again = _work(store, "cmts-1", nodes=["node-a", "node-b"])
    assert ban == [mine, also_mine, footprint, nodeless, held]  # oldest first
    assert (lift, again) == ([], [])
    # Another CMTS serving node-z: its own, the footprint ones; not the held one.
    assert _work(store, "cmts-2", nodes=["node-z"])[0] == [footprint, nodeless, elsewhere]
    # Answered: not given again (a failed answer neither, until it is stale).
    store.record_scan(mine, "cmts-1", phase=lifecycle.BAN, ok=True, detail={})
    store.record_scan(footprint, "cmts-1", phase=lifecycle.BAN, ok=False, detail={})
    assert _work(store, "cmts-1", nodes=["node-a", "node-b"])[0] == [
        also_mine, nodeless, held]
    # Not in a ban state: not given.
    store.set_order_state(also_mine, OrderState.LIFTED, actor="engine")
    store.set_order_state(held, OrderState.LIFT_PENDING, actor="engine")
    assert _work(store, "cmts-1", nodes=["node-a", "node-b"])[0] == [nodeless, held]


def test_a_pass_since_gets_only_the_changed_orders(store: Store, clock: FakeClock) -> None:
    old_mine = _order(store, Scope.NODE, "node-a")
    old_footprint = _order(store, Scope.FOOTPRINT, None)
    clock.advance(60)
    since = clock()
    new_mine = _order(store, Scope.NODE, "node-a")
    new_elsewhere = _order(store, Scope.NODE, "node-z")
    new_footprint = _order(store, Scope.FOOTPRINT, "node-z")
    assert _work(store, "cmts-1", since=since, nodes=["node-a"])[0] == [
        new_mine, new_footprint]
    assert _work(store, "cmts-1", nodes=["node-a"])[0] == [
        old_mine, old_footprint, new_mine, new_footprint]
    # A change to an old order (its state here) brings it back into the pass since.
    clock.advance(60)
    since = clock()
    store.set_order_state(old_mine, OrderState.ENFORCING, actor="engine")
    assert _work(store, "cmts-1", since=since, nodes=["node-a"])[0] == [old_mine]
    assert new_elsewhere in _work(store, "dhcp-1", nodes=None)[0]


def test_a_headend_gets_orders_naming_a_set_top_or_held_there(store: Store) -> None:
    modem = _order(store, Scope.NODE, "node-a")
    box = _order(store, Scope.NODE, "node-a", DeviceKind.SET_TOP)
    held = _order(store, Scope.NODE, "node-a")
    store.upsert_targets(held, [TargetSpec("headend", Mac("00:11:22:33:ff:02"),
                                           DeviceKind.CABLE_MODEM, "entitlement")])
    kinds = [DeviceKind.SET_TOP.value]
    assert _work(store, "headend", nodes=None, kinds=kinds)[0] == [box, held]
    clock_since = store.get_order(modem).created_at
    assert _work(store, "headend", since=clock_since, nodes=None, kinds=kinds)[0] == [
        box, held]
    # A DHCP server (no nodes, no kinds) is given every order.
    assert _work(store, "dhcp-1", nodes=None)[0] == [modem, box, held]


def test_lifts_failed_scans_and_due_targets(store: Store, clock: FakeClock) -> None:
    lifting = _order(store, Scope.NODE, "node-a")
    store.set_order_state(lifting, OrderState.LIFTING, actor="engine")
    failed = _order(store, Scope.NODE, "node-a")
    due = _order(store, Scope.NODE, "node-a")
    _, lift, again = _work(store, "cmts-1", nodes=["node-a"], stale_after_s=5)
    assert (lift, again) == ([lifting], [])
    store.record_scan(lifting, "cmts-1", phase=lifecycle.LIFT, ok=True, detail={})
    store.record_scan(failed, "cmts-1", phase=lifecycle.BAN, ok=False, detail={})
    store.record_scan(due, "cmts-1", phase=lifecycle.BAN, ok=True, detail={})
    store.upsert_targets(due, [TargetSpec("cmts-1", Mac("00:11:22:33:ff:03"),
                                          DeviceKind.CABLE_MODEM, "cm-ctrl")])
    ban, lift, again = _work(store, "cmts-1", nodes=["node-a"], stale_after_s=5)
    assert (ban, lift) == ([], [])
    assert again == [due]  # the new target is due now; the failed scan is not stale yet
    clock.advance(6)
    assert _work(store, "cmts-1", nodes=["node-a"], stale_after_s=5)[2] == sorted(
        [failed, due])
    assert _work(store, "cmts-1", nodes=["node-a"], stale_after_s=None)[2] == []
    assert _work(store, "cmts-2", nodes=["node-a"], stale_after_s=5)[2] == []
    clock.advance(timedelta(days=1).total_seconds())
    changed, due_devices, stale_devices, holders = store.poll_changes(
        clock() - timedelta(seconds=1), 5)
    assert (changed, due_devices, stale_devices, holders) == ([], {"cmts-1"}, {"cmts-1"},
                                                              set())
