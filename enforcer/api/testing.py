"""Test doubles: a recording in-memory ``Engine`` (for API and CLI tests, and demos
without devices) and a settable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from enforcer.domain.mac import Mac
from enforcer.engine.contract import (
    Checked,
    CheckResult,
    ClusterStatus,
    DeviceRow,
    PlanRow,
    PreviewRow,
    ReconcileSummary,
    Sighting,
    TrustResult,
)
from enforcer.store.records import OrderRecord

#: The host key fingerprint every device of the recording engine presents.
FAKE_FINGERPRINT = "SHA256:" + "f" * 43


def _device(name: str, reachable: bool | None) -> DeviceRow:
    return DeviceRow(name=name, kind="cmts", profile="cisco-cbr8", host="127.0.0.1",
                     snmp_port=161, ssh_port=22, host_key_pinned=False, reachable=reachable,
                     last_error=None, owner="test-instance")


@dataclass
class RecordingEngine:
    """An ``enforcer.engine.contract.EngineAPI`` (checked by mypy there) that answers
    from its fields, in the engine's shapes, and records every call in ``calls``."""

    nodes: set[str] = field(default_factory=lambda: {"node-a", "node-b"})
    device_list: list[DeviceRow] = field(default_factory=lambda: [
        _device("cmts1", True), _device("cmts2", False)])
    sightings: dict[str, list[Sighting]] = field(default_factory=dict)
    plans: dict[str | None, list[PlanRow]] = field(default_factory=dict)
    is_ready: tuple[bool, str] = (True, "ok")
    calls: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> list[str]:
        return [arg for name, arg in self.calls if name == "order_accepted"]

    def _known(self, name: str) -> DeviceRow:
        for d in self.device_list:
            if d["name"] == name:
                return d
        raise LookupError(f"no device {name!r} in inventory")

    def order_accepted(self, order_id: str) -> None:
        self.calls.append(("order_accepted", order_id))

    def ready(self) -> tuple[bool, str]:
        self.calls.append(("ready", None))
        return self.is_ready

    def node_names(self) -> set[str]:
        return self.nodes

    def layer_of(self, device: str) -> str:
        try:
            return self._known(device)["kind"]
        except LookupError:
            raise KeyError(device) from None

    async def where(self, mac: Mac) -> list[Sighting]:
        self.calls.append(("where", mac))
        return self.sightings.get(str(mac), [])

    async def plan(self, order_id: str | None) -> list[PlanRow]:
        self.calls.append(("plan", order_id))
        if order_id not in self.plans:
            raise LookupError(f"no order {order_id}")
        return self.plans[order_id]

    async def preview(self, order: OrderRecord) -> list[PreviewRow]:
        self.calls.append(("preview", order.id))
        return [PreviewRow(device="cmts1", layer="cmts", mac=str(d.mac), kind=d.kind.value,
                           seen="forwarding", state="online", error=None,
                           mechanism="cm-ctrl", action="push", reset=False)
                for d in order.devices]

    def devices(self) -> list[DeviceRow]:
        self.calls.append(("devices", None))
        return self.device_list

    async def check_device(self, name: str) -> CheckResult:
        self.calls.append(("check_device", name))
        d = self._known(name)
        return Checked(name=name, reachable=bool(d["reachable"]),
                       error=None if d["reachable"] else "timeout", platform="lab")

    async def trust_device(self, name: str, actor: str,
                           expect: str | None = None) -> TrustResult:
        self.calls.append(("trust_device", (name, actor)))
        self._known(name)
        if expect is not None and expect != FAKE_FINGERPRINT:
            from enforcer.errors import HostKeyError
            raise HostKeyError(f"{name} presents {FAKE_FINGERPRINT}, not the expected {expect}",
                               device=name, reason="unexpected", presented=FAKE_FINGERPRINT)
        return TrustResult(name=name, fingerprint=FAKE_FINGERPRINT,
                           host_key="ssh-ed25519 AAAA", pinned_in="store",
                           previous_fingerprint=None, changed=True)

    async def reconcile_all(self) -> ReconcileSummary:
        self.calls.append(("reconcile_all", None))
        return ReconcileSummary(elapsed_s=0.0, devices=len(self.device_list), checked=0,
                                repairs=0, unreachable=[], unowned_blocks=0)

    async def cluster_status(self) -> ClusterStatus:
        self.calls.append(("cluster_status", None))
        return ClusterStatus(self="test-instance", instances=[], leases=[], failovers_here=0)


class FakeClock:
    """An injectable clock (aware UTC) that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
