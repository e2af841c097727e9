"""Several writes in one transaction (the engine's group commit) and several orders'
answers from one device in one transaction, on both databases: each write has the
outcome it would have had alone, and the audit chain stays whole."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from enforcer.api.testing import FakeClock
from enforcer.domain import lifecycle
from enforcer.domain.coverage import definition_key
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Scope, TargetState
from enforcer.engine.writes import GroupWriter
from enforcer.store import DeviceSpec, NotFound, OrderRecord, OrderSpec, Store, TargetSpec
from enforcer.store.cluster import ScanAnswer


def _order(store: Store, n: int) -> OrderRecord:
    spec = OrderSpec(ticket=f"ESC-{n}", account=f"acct-{n}", reason=Reason.FRAUD,
                     scope=Scope.NODE, node="node-a",
                     devices=(DeviceSpec(Mac(f"00:11:22:33:44:{n:02x}"),
                                         DeviceKind.CABLE_MODEM),))
    return store.create_order(spec, actor="test", source="api")[0]


def _chain_ok(store: Store) -> None:
    ok, bad, why = store.verify_audit()
    assert ok, (bad, why)


def test_a_batch_writes_every_op_in_order_with_one_chain(store: Store) -> None:
    a, b = _order(store, 1), _order(store, 2)
    [ta] = store.upsert_targets(a.id, [TargetSpec("c1", a.devices[0].mac,
                                                  DeviceKind.CABLE_MODEM, "m")])
    before = store.audit_entries()[-1].seq
    results = store.write_batch([
        store.target_op(ta.id, actor="engine", audit_action="target.applied",
                        state=TargetState.APPLIED),
        store.event_op("engine", "target.kicked", a.id, {"device": "c1"}),
        store.targets_op(b.id, [TargetSpec("c1", b.devices[0].mac,
                                           DeviceKind.CABLE_MODEM, "m")],
                         enforcing="planned"),
    ])
    assert [ok for ok, _ in results] == [True, True, True]
    assert results[0][1].state is TargetState.APPLIED
    assert [t.mac for t in results[2][1]] == [b.devices[0].mac]
    after = store.audit_entries(after_seq=before)
    assert [(e.seq, e.action) for e in after] == [
        (before + 1, "target.applied"), (before + 2, "target.kicked"),
        (before + 3, "order.state"), (before + 4, "targets.planned")]
    assert store.get_order(b.id).state is OrderState.ENFORCING
    _chain_ok(store)


def test_a_failing_op_fails_alone_and_the_others_are_written(store: Store) -> None:
    a = _order(store, 1)
    before = store.audit_entries()[-1].seq
    results = store.write_batch([
        store.event_op("engine", "first", a.id, {}),
        store.target_op(987654, actor="engine", audit_action="target.applied",
                        state=TargetState.APPLIED),
        store.event_op("engine", "third", a.id, {}),
    ])
    assert results[0] == (True, None) and results[2] == (True, None)
    assert not results[1][0] and isinstance(results[1][1], NotFound)
    assert [e.action for e in store.audit_entries(after_seq=before)] == ["first", "third"]
    _chain_ok(store)


def test_record_scans_answers_several_orders_at_once(store: Store, clock: FakeClock) -> None:
    a, b, c = _order(store, 1), _order(store, 2), _order(store, 3)
    stale = definition_key(c) + "x"  # computed for another definition of the order
    res = store.record_scans("h1", [
        ScanAnswer(a.id, lifecycle.BAN, True, {"in_scope": False},
                   definition=definition_key(a), enforcing="looking"),
        ScanAnswer(b.id, lifecycle.BAN, True, {"in_scope": False},
                   definition=definition_key(b), enforcing="looking"),
        ScanAnswer(c.id, lifecycle.BAN, True, {"in_scope": False}, definition=stale,
                   enforcing="looking"),
    ], relevant=["h1"])
    assert res[2] is None  # changed meanwhile: not recorded (the device looks again)
    for order, r in ((a, res[0]), (b, res[1])):
        assert r is not None and r.before == "enforcing" and r.after == "verified"
        assert r.order == store.get_order(order.id)  # what a read gives
        assert r.order.verified_at == clock.now
        assert [e.action for e in store.audit_entries(order_id=order.id)] == [
            "order.accepted", "order.state", "order.state"]
    assert store.get_order(c.id).state is OrderState.ENFORCING
    assert {s.order_id for s in store.scans_for_order(c.id)} == set()
    assert {s.device for s in store.scans_for_order(a.id)} == {"h1"}
    _chain_ok(store)


def test_group_writer_shares_transactions_and_keeps_each_outcome(store: Store) -> None:
    orders = [_order(store, n) for n in range(1, 13)]
    writer = GroupWriter(store, max_batch=8)

    async def run() -> list[object]:
        ops = [writer.write(store.event_op("engine", "e", o.id, {"n": i}))
               for i, o in enumerate(orders)]
        ops.append(writer.write(store.target_op(987654, actor="engine",
                                                audit_action="x", state="applied")))
        return list(await asyncio.gather(*ops, return_exceptions=True))

    out = asyncio.run(run())
    assert out[:-1] == [None] * len(orders)
    assert isinstance(out[-1], NotFound)
    assert writer.writes == len(orders) + 1
    assert writer.transactions < writer.writes
    entries = [e for e in store.audit_entries() if e.action == "e"]
    assert [e.payload["n"] for e in entries] == list(range(len(orders)))
    _chain_ok(store)


def test_an_op_of_a_failed_batch_is_written_once_when_run_again(store: Store) -> None:
    a = _order(store, 1)
    results = store.write_batch([
        store.targets_op(a.id, [TargetSpec("c1", a.devices[0].mac, DeviceKind.CABLE_MODEM,
                                           "m")]),
        store.target_op(987654, actor="engine", audit_action="x", state="applied"),
    ])
    assert results[0][0] and len(results[0][1]) == 1
    with pytest.raises(NotFound):
        raise results[1][1]
    assert len(store.targets_for_order(a.id)) == 1
    assert [e.action for e in store.audit_entries(order_id=a.id)] == [
        "order.accepted", "targets.planned"]
    _chain_ok(store)


def _start_intake_and_let_it_queue(store: Store, intake: threading.Thread) -> None:
    """Start ``intake`` (a new order: an urgent writer) from inside a write transaction
    and return once it waits. On SQLite it queues on the store's write lock; on
    PostgreSQL it waits inside the database (the chain's advisory lock), not on that
    lock, so there is nothing to see: a short pause instead."""
    intake.start()
    deadline = time.monotonic() + (10 if store.engine.dialect.name == "sqlite" else 0.2)
    while not store.urgent_write_waiting() and time.monotonic() < deadline:
        time.sleep(0.005)


def _intake_waits_during(store: Store, n: int) -> tuple[list[object], list[str]]:
    """A batch of ``n`` event ops whose first op lets an intake write (a new order, an
    urgent writer) queue for the write lock. Returns the batch's results and the order
    in which the writes reached the audit chain."""
    intake = threading.Thread(target=_order, args=(store, 99))

    def first(session: object) -> None:
        store.event_op("engine", "e", None, {"n": 0})(session)  # type: ignore[arg-type]
        _start_intake_and_let_it_queue(store, intake)

    ops = [first] + [store.event_op("engine", "e", None, {"n": i}) for i in range(1, n)]
    results = store.write_batch(ops)
    intake.join(10)
    actions = [e.action if e.action != "e" else f"e{e.payload['n']}"
               for e in store.audit_entries()]
    return [v for _, v in results], actions


def test_a_batch_makes_way_for_intake_after_the_op_in_progress(
        store: Store, db_url: str) -> None:
    results, actions = _intake_waits_during(store, 4)
    if db_url.startswith("sqlite"):
        # The transaction ended after the first op; the order went in before the rest,
        # which were not run (their caller runs them next).
        assert results == [None]
        assert actions == ["e0", "order.accepted"]
    else:
        assert results == [None] * 4
        assert actions[:4] == ["e0", "e1", "e2", "e3"]
    _chain_ok(store)


def test_group_writer_runs_the_writes_a_batch_left_for_intake(
        store: Store, db_url: str) -> None:
    writer = GroupWriter(store, max_batch=8)
    intake = threading.Thread(target=_order, args=(store, 99))

    def first(session: object) -> str:
        _start_intake_and_let_it_queue(store, intake)
        return "first"

    async def run() -> list[object]:
        ops = [writer.write(first)]
        ops += [writer.write(store.event_op("engine", "e", None, {"n": i}))
                for i in range(1, 6)]
        return list(await asyncio.gather(*ops))

    out = asyncio.run(run())
    intake.join(10)
    assert out == ["first"] + [None] * 5  # every caller got its own result, once
    assert writer.writes == 6
    names = [e.payload.get("n") for e in store.audit_entries() if e.action == "e"]
    assert names == [1, 2, 3, 4, 5]
    actions = [e.action for e in store.audit_entries()]
    if db_url.startswith("sqlite"):
        assert actions.index("order.accepted") < actions.index("e")  # intake went first
    _chain_ok(store)
