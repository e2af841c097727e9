"""Shared blocks, amendments and account links in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from enforcer.api.testing import FakeClock
from enforcer.domain.coverage import Definition
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Scope, TargetState
from enforcer.store import Conflict, DeviceSpec, OrderSpec, Store, TargetSpec
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
