"""Orders, devices, idempotent creation, targets and device state, on both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from enforcer.api.testing import FakeClock
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Scope, TargetState
from enforcer.store import (
    DeviceSpec,
    Evidence,
    IdempotencyConflict,
    NotFound,
    OrderSpec,
    Store,
    TargetSpec,
    upgrade,
)

CM = Mac("00:11:22:33:44:55")
STB = Mac("00:11:22:33:44:66")
ECM = Mac("00:11:22:33:44:77")


def spec(reason: Reason = Reason.FRAUD, account: str = "acct-1") -> OrderSpec:
    return OrderSpec(
        ticket="ESC-1", account=account, reason=reason, scope=Scope.NODE,
        devices=(DeviceSpec(CM, DeviceKind.CABLE_MODEM),
                 DeviceSpec(STB, DeviceKind.SET_TOP, ecm_mac=ECM)),
        node="node-a", requested_by="agent 7", note="n",
        evidence=(Evidence("call_recording", "https://rec/1", "00:03:12", "threat"),),
    )


def test_create_and_read_back(store: Store, clock: FakeClock) -> None:
    order, created = store.create_order(spec(), actor="alice", source="api")
    assert created and order.id.startswith("ord_") and len(order.id) == 30
    again = store.get_order(order.id)
    assert again == order
    assert again.state is OrderState.ACCEPTED and again.created_at == clock.now
    assert again.devices[1].ecm_mac == ECM and again.devices[1].kind is DeviceKind.SET_TOP
    assert again.evidence[0].offset == "00:03:12"
    assert again.created_by == "alice" and again.source == "api"
    entries = store.audit_entries(order_id=order.id)
    assert [e.action for e in entries] == ["order.accepted"]
    assert entries[0].payload["devices"][1]["ecm_mac"] == str(ECM)


def test_unknown_order(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_order("ord_nope")
    with pytest.raises(NotFound):
        store.set_order_state("ord_nope", OrderState.ENFORCING, actor="x")


def test_source_is_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="source"):
        store.create_order(spec(), actor="a", source="email")


def test_webhook_idempotency(store: Store) -> None:
    first, created = store.create_order(spec(), actor="esc", source="webhook",
                                        idempotency=("msg_1", "a" * 64))
    again, created_again = store.create_order(spec(), actor="esc", source="webhook",
                                              idempotency=("msg_1", "a" * 64))
    assert created and not created_again and again.id == first.id
    with pytest.raises(IdempotencyConflict) as e:
        store.create_order(spec(), actor="esc", source="webhook",
                           idempotency=("msg_1", "b" * 64))
    assert e.value.order_id == first.id
    assert len(store.list_orders()) == 1
    assert len(store.audit_entries(action="order.accepted")) == 1


def test_list_filters_and_paging(store: Store, clock: FakeClock) -> None:
    ids = []
    for reason in (Reason.FRAUD, Reason.HARASSMENT, Reason.FRAUD):
        ids.append(store.create_order(spec(reason), actor="a", source="api")[0].id)
        clock.advance(1)
    assert [o.id for o in store.list_orders()] == ids[::-1]
    assert [o.id for o in store.list_orders(reason=Reason.FRAUD)] == [ids[2], ids[0]]
    assert [o.id for o in store.list_orders(limit=1, offset=1)] == [ids[1]]
    store.set_order_state(ids[1], OrderState.ENFORCING, actor="engine")
    assert [o.id for o in store.list_orders(state=OrderState.ENFORCING)] == [ids[1]]
    assert store.count_orders() == {("accepted", "fraud"): 2, ("enforcing", "harassment"): 1}


def test_state_changes_stamp_and_audit(store: Store, clock: FakeClock) -> None:
    order, _ = store.create_order(spec(), actor="a", source="api")
    clock.advance(5)
    o = store.set_order_state(order.id, OrderState.ENFORCED, detail="all applied",
                              actor="engine")
    assert o.enforced_at == clock.now and o.state_detail == "all applied"
    clock.advance(5)
    o = store.set_order_state(order.id, OrderState.VERIFIED, actor="engine")
    assert o.verified_at == clock.now and o.verified_at - o.created_at == timedelta(seconds=10)
    store.set_order_state(order.id, OrderState.VERIFIED, actor="engine")  # no-op: no audit
    changes = store.audit_entries(order_id=order.id, action="order.state")
    assert [(c.payload["from"], c.payload["to"]) for c in changes] == [
        ("accepted", "enforced"), ("enforced", "verified")]
    assert [o.id for o in store.active_orders()] == [order.id]
    store.set_order_state(order.id, OrderState.LIFTED, actor="engine")
    assert store.active_orders() == []
    assert [o.id for o in store.orders_in_states([OrderState.LIFTED])] == [order.id]


def _targets() -> list[TargetSpec]:
    return [TargetSpec("cmts1", CM, DeviceKind.CABLE_MODEM, "cm_ctrl"),
            TargetSpec("cmts2", CM, DeviceKind.CABLE_MODEM, "cm_ctrl"),
            TargetSpec("hec1", STB, DeviceKind.SET_TOP, "entitlement")]


def test_planning_targets_can_start_enforcing_in_the_same_transaction(store: Store) -> None:
    order, _ = store.create_order(spec(), actor="a", source="api")
    store.upsert_targets(order.id, _targets()[:1], enforcing="planning")
    got = store.get_order(order.id)
    assert (got.state, got.state_detail) == (OrderState.ENFORCING, "planning")
    entries = store.audit_entries(order_id=order.id)
    assert [e.action for e in entries][-2:] == ["order.state", "targets.planned"]
    assert entries[-2].payload == {"from": "accepted", "to": "enforcing", "detail": "planning"}
    # Only an accepted order moves: a later device's plan leaves the state alone.
    store.set_order_state(order.id, OrderState.ENFORCED, actor="engine")
    store.upsert_targets(order.id, _targets(), enforcing="planning")
    assert store.get_order(order.id).state is OrderState.ENFORCED


def test_targets_lifecycle(store: Store, clock: FakeClock) -> None:
    order, _ = store.create_order(spec(), actor="a", source="api")
    ts = store.replace_targets(order.id, _targets())
    assert [t.state for t in ts] == [TargetState.PENDING] * 3
    assert store.upsert_targets(order.id, _targets()) == ts  # idempotent
    assert len(store.targets_due(clock.now)) == 3
    t0 = ts[0]
    later = clock.now + timedelta(seconds=30)
    t = store.update_target(t0.id, actor="engine", audit_action="target.retrying",
                            state=TargetState.RETRYING, attempts=1, last_error="timeout",
                            next_attempt_at=later)
    assert t.state is TargetState.RETRYING and t.last_error == "timeout"
    assert {x.id for x in store.targets_due(clock.now)} == {ts[1].id, ts[2].id}
    assert t0.id in {x.id for x in store.targets_due(later)}
    t = store.update_target(t0.id, actor="engine", audit_action="target.applied",
                            state="applied", applied_at=clock.now, transcript="ok\n")
    assert t.transcript == "ok\n" and t.transcript_sha256 and len(t.transcript_sha256) == 64
    entry = store.audit_entries(action="target.applied")[0]
    assert entry.payload["transcript_sha256"] == t.transcript_sha256
    assert "transcript" not in entry.payload
    assert store.count_targets() == {"applied": 1, "pending": 2}
    with pytest.raises(ValueError, match="not updatable"):
        store.update_target(t0.id, actor="e", audit_action="x", device="other")
    with pytest.raises(NotFound):
        store.update_target(99999, actor="e", audit_action="x", state="applied")


def test_replace_keeps_applied_targets_and_drops_unapplied(store: Store) -> None:
    order, _ = store.create_order(spec(), actor="a", source="api")
    ts = store.replace_targets(order.id, _targets())
    store.update_target(ts[0].id, actor="e", audit_action="target.applied", state="applied",
                        applied_at=store.clock())
    keep = [TargetSpec("cmts3", CM, DeviceKind.CABLE_MODEM, "cm_ctrl")]
    after = store.replace_targets(order.id, keep)
    assert {(t.device, t.state) for t in after} == {
        ("cmts1", TargetState.APPLIED), ("cmts3", TargetState.PENDING)}
    planned = store.audit_entries(action="targets.planned")[-1].payload
    assert {d["device"] for d in planned["dropped"]} == {"cmts2", "hec1"}
    with pytest.raises(NotFound):
        store.replace_targets("ord_nope", keep)


def test_device_state(store: Store, clock: FakeClock) -> None:
    assert store.get_device_state("cmts1") is None
    d = store.set_device_state("cmts1", reachable=True, last_seen=clock.now,
                               host_key_fingerprint="SHA256:abc")
    assert d.reachable and d.host_key_fingerprint == "SHA256:abc"
    clock.advance(60)
    store.set_device_state("cmts1", last_seen=clock.now)  # refresh only: not audited
    d = store.set_device_state("cmts1", reachable=False, last_error="timeout")
    assert d.host_key_fingerprint == "SHA256:abc" and d.last_seen == clock.now
    assert [e.payload.get("reachable") for e in store.audit_entries(action="device.state")] \
        == [True, False]
    assert [x.name for x in store.all_device_states()] == ["cmts1"]


def test_active_targets(store: Store) -> None:
    live, _ = store.create_order(spec(), actor="a", source="api")
    done, _ = store.create_order(spec(account="acct-2"), actor="a", source="api")
    ts = store.replace_targets(live.id, _targets())
    store.replace_targets(done.id, _targets())
    store.set_order_state(done.id, OrderState.LIFTED, actor="engine")
    store.update_target(ts[2].id, actor="e", audit_action="target.removed",
                        state=TargetState.REMOVED)
    assert [t.id for t in store.active_targets()] == [ts[0].id, ts[1].id]
    first = store.active_targets()[0]
    assert (first.order_id, first.device, first.mac, first.mechanism, first.state,
            first.attempts) == (live.id, ts[0].device, ts[0].mac, ts[0].mechanism,
                                ts[0].state, ts[0].attempts)
    assert [t.device for t in store.active_targets("cmts2")] == ["cmts2"]
    assert store.active_targets("hec1") == []


def test_sqlite_commits_are_fsynced(tmp_path: Path) -> None:
    """An acknowledged order must survive a power loss, not only a process crash: WAL
    with synchronous=FULL (2) on every connection the store opens."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    upgrade(url)
    s = Store.from_url(url)
    try:
        with s.read_session() as session:
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert session.execute(text("PRAGMA synchronous")).scalar() == 2
        with s.write_session() as session:
            assert session.execute(text("PRAGMA synchronous")).scalar() == 2
            # A small page cache per connection (the OS caches the file once): memory
            # stays bounded with one connection per store thread.
            assert session.execute(text("PRAGMA cache_size")).scalar() == -256
    finally:
        s.dispose()


def test_a_removed_target_needed_again_is_planned_again(store: Store) -> None:
    """A block the order gave up (a consented downgrade released it) and needs again (a
    later upgrade) is pushed again: the removed target goes back to pending, audited."""
    order, _ = store.create_order(spec(), actor="a", source="api")
    (t,) = store.upsert_targets(order.id, _targets()[:1])
    store.update_target(t.id, actor="e", audit_action="target.removed",
                        state=TargetState.REMOVED, removed_at=store.clock(),
                        transcript="no cable modem deny 0011.2233.4455")
    (again,) = store.upsert_targets(order.id, _targets()[:1])
    assert (again.id, again.state, again.removed_at, again.transcript) == (
        t.id, TargetState.PENDING, None, None)
    planned = store.audit_entries(action="targets.planned")[-1].payload
    assert planned["revived"] == [{"device": "cmts1", "mac": str(CM), "mechanism": "cm_ctrl"}]
    assert planned["added"] == []
