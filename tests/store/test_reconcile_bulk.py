"""The reconciler's bulk path (a device with at least ``BULK_THRESHOLD`` live targets: one
bulk read of registration state instead of per-target reads) on a real store and the
docsis3-generic profile over a recording SNMP fake: a block lost at re-registration is
reported as drift, its target marked for repair with an audit entry and its order handed
back; a modem the device does not list is not drift; a dry run writes nothing."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Scope, TargetState
from enforcer.drivers import ProfileDriver
from enforcer.drivers.fakes import FakeSnmp
from enforcer.engine.pool import DriverPool
from enforcer.engine.reconciler import BULK_THRESHOLD, Reconciler
from enforcer.inventory.profiles import load_profiles
from enforcer.metrics import Metrics
from enforcer.mib import oid
from enforcer.store import Store
from enforcer.store.records import DeviceSpec, OrderSpec, TargetRecord, TargetSpec
from enforcer.transport.base import DeviceLimiter, Oid, SnmpValue

PROFILES = load_profiles(Path(__file__).resolve().parents[2] / "device_profiles")
MECH = "cm-ctrl-disable-forwarding"
N = BULK_THRESHOLD + 4
LOST, GONE = 5, 7  # re-registered without the block; not listed by the device at all


def mac(i: int) -> Mac:
    return Mac(f"00:1d:cf:00:01:{i:02x}")


def state(store: Store, order_id: str) -> TargetRecord:
    [t] = store.targets_for_order(order_id)
    return t


def device_table() -> dict[Oid, SnmpValue]:
    out: dict[Oid, SnmpValue] = {}
    for i in range(N):
        if i == GONE:
            continue
        out[(*oid("docsIf3CmtsCmRegStatusMacAddr"), 200 + i)] = mac(i).packed
        out[(*oid("docsIf3CmtsCmRegStatusValue"), 200 + i)] = 8 if i == LOST else 17
    return out


async def setup(store: Store) -> tuple[Reconciler, FakeSnmp, list[tuple[str, str]],
                                       list[str], dict[int, str]]:
    orders: dict[int, str] = {}
    for i in range(N):
        order, _ = store.create_order(OrderSpec(
            ticket=f"T-{i}", account=f"A-{i}", reason=Reason.FRAUD, scope=Scope.NODE,
            devices=(DeviceSpec(mac(i), DeviceKind.CABLE_MODEM),), node="node-a"),
            actor="test", source="api")
        [t] = store.upsert_targets(order.id, [TargetSpec("dev1", mac(i),
                                                         DeviceKind.CABLE_MODEM, MECH)])
        store.update_target(t.id, actor="engine", audit_action="target.verified",
                            state=TargetState.VERIFIED, attempts=1)
        orders[i] = order.id
    fake = FakeSnmp(values=device_table())

    async def snmp() -> FakeSnmp:
        return fake
    drv = ProfileDriver("dev1", PROFILES["docsis3-generic"], snmp=snmp,
                        limiter=DeviceLimiter("dev1", max_sessions=2, resets_per_minute=60,
                                              rng=random.Random(7)))
    requeued: list[tuple[str, str]] = []
    breaches: list[str] = []

    async def breach(order_id: str, device: str, m: Mac, state: str, actor: str) -> None:
        breaches.append(str(m))
    rec = Reconciler(store=store, pool=DriverPool(lambda name: drv),
                     settings=SimpleNamespace(engine=SimpleNamespace(
                         retry_base_s=1.0, max_retry_backoff_s=10.0)),
                     metrics=Metrics(CollectorRegistry()),
                     requeue=lambda o, d: requeued.append((o, d)), breach=breach,
                     clock=store.clock)
    return rec, fake, requeued, breaches, orders


async def test_a_block_lost_at_re_registration_is_drift_and_marked_for_repair(
        store: Store) -> None:
    rec, fake, requeued, breaches, orders = await setup(store)
    report = await rec.reconcile("dev1")
    assert report.error is None and report.checked == N
    assert [r["mac"] for r in report.repairs] == [str(mac(LOST))]
    assert "forwarding" in report.repairs[0]["why"]
    assert breaches == [str(mac(LOST))]
    lost = state(store, orders[LOST])
    assert lost.state is TargetState.RETRYING and lost.last_error
    assert requeued == [(lost.order_id, "dev1")]
    assert [e.order_id for e in store.audit_entries(action="target.drift")] == [lost.order_id]
    for i in (0, GONE):  # blocked, and not listed: nothing to repair
        assert state(store, orders[i]).state is TargetState.VERIFIED
    # one bulk read of the registration table, no per-target GETs
    assert not [c for c in fake.calls if c[0] == "get"
                and any(o[:len(oid("docsIf3CmtsCmRegStatusValue"))] ==
                        oid("docsIf3CmtsCmRegStatusValue") for o in c[1])]


async def test_a_dry_run_reports_and_writes_nothing(store: Store) -> None:
    rec, _fake, requeued, breaches, orders = await setup(store)
    report = await rec.reconcile("dev1", dry_run=True)
    assert [r["mac"] for r in report.repairs] == [str(mac(LOST))]
    assert state(store, orders[LOST]).state is TargetState.VERIFIED
    assert (requeued, breaches) == ([], [])
    assert store.audit_entries(action="target.drift") == []
