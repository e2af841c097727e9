"""Two engine behaviours of a burst of new orders, on a real SQLite store with
in-memory devices:

- the footprint watcher does not take an order the device has not answered for yet
  (its own scan plans the target there) for a sighting: no notification, no audit
  entry, its scan on the device is not cleared;
- an order waiting between verification polls gives its device slot to another order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from enforcer.api.testing import FakeClock
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Scope, Verdict
from enforcer.drivers.base import Observation
from enforcer.engine.pool import DriverPool
from enforcer.engine.runner import _Slot
from enforcer.engine.watcher import Watcher
from enforcer.inventory.model import load_inventory
from enforcer.inventory.profiles import load_profiles
from enforcer.metrics import Metrics
from enforcer.store import OrderSpec, Store, upgrade
from enforcer.store.records import DeviceSpec

INVENTORY = """
credentials:
  c: {snmp: {version: "3", user: u, auth_password: aaaaaaaa, priv_password: bbbbbbbb}}
devices:
  c1: {kind: cmts, profile: docsis3-generic, host: 127.0.0.1, snmp_port: 1, credentials: c}
nodes:
  n1: {serving: [{device: c1, interfaces: [1]}]}
"""
MAC = Mac("00:1d:cf:00:00:01")


class ForwardingCmts:
    """A CMTS on which the banned modem is registered and forwarding (nothing pushed)."""

    profile = load_profiles(Path(__file__).resolve().parents[2] / "device_profiles")[
        "docsis3-generic"]

    async def observe(self, mac: Mac) -> Observation:
        return Observation("c1", mac, Verdict.FORWARDING, "online")

    async def close(self) -> None:
        return None


@pytest.fixture
def store(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path}/w.db"
    upgrade(url)
    st = Store.from_url(url, clock=FakeClock())
    yield st
    st.dispose()


def _watcher(store: Any, tmp_path: Path, notified: list[str]) -> Watcher:
    inv_path = tmp_path / "inventory.yaml"
    inv_path.write_text(INVENTORY)
    return Watcher(store=store, inventory=load_inventory(inv_path),
                   pool=DriverPool(lambda n: ForwardingCmts()),  # type: ignore[arg-type,return-value]
                   metrics=Metrics(CollectorRegistry()), requeue=lambda o, d: None,
                   notify=lambda event, _p: notified.append(event))


def _order(store: Any) -> str:
    spec = OrderSpec(ticket="T-1", account="ACC-1", reason=Reason.FRAUD, scope=Scope.NODE,
                     node="n1", devices=(DeviceSpec(MAC, DeviceKind.CABLE_MODEM),))
    order, _created = store.create_order(spec, actor="test", source="api")
    return str(order.id)


def test_a_new_order_is_not_a_sighting_before_its_device_answered(store: Any,
                                                                   tmp_path: Path) -> None:
    notified: list[str] = []
    order_id = _order(store)
    report = asyncio.run(_watcher(store, tmp_path, notified).sweep())
    assert report.sightings == [] and notified == []
    assert store.audit_entries(order_id=order_id, action="ban.sighting") == []


def test_a_forwarding_mac_the_device_answered_for_is_a_sighting(store: Any,
                                                                 tmp_path: Path) -> None:
    notified: list[str] = []
    order_id = _order(store)
    # c1 answered (nothing planned there, e.g. the modem registered elsewhere then).
    store.record_scan(order_id, "c1", phase="ban", ok=True, detail={}, target_updates=[],
                      relevant=["c1"], actor="engine", definition=None)
    report = asyncio.run(_watcher(store, tmp_path, notified).sweep())
    assert [(s.order_id, s.device, s.mac) for s in report.sightings] == [
        (order_id, "c1", MAC)]
    assert notified == ["ban.sighting"]
    assert order_id not in store.scanned_orders_in("c1", ["accepted", "enforcing",
                                                          "enforced", "verified"])


def test_an_order_waiting_between_polls_lends_its_slot() -> None:
    async def run() -> list[str]:
        sem = asyncio.Semaphore(1)
        events: list[str] = []
        waiting = asyncio.Event()

        async def first() -> None:
            async with _Slot(sem) as slot:
                events.append("first pushed")
                async with slot.released():
                    waiting.set()
                    await asyncio.sleep(0.05)  # "the modem re-registers"
                events.append("first verified")

        async def second() -> None:
            await waiting.wait()
            async with _Slot(sem):
                events.append("second pushed")

        await asyncio.wait_for(asyncio.gather(first(), second()), 10)
        assert not sem.locked()  # every slot given back exactly once
        return events

    assert asyncio.run(run()) == ["first pushed", "second pushed", "first verified"]
