"""Test doubles: a recording in-memory ``Engine`` (for API and CLI tests, and demos
without devices) and a settable clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from enforcer.domain.mac import Mac

#: The host key fingerprint every device of the recording engine presents.
FAKE_FINGERPRINT = "SHA256:" + "f" * 43


@dataclass
class RecordingEngine:
    """Answers from its fields and records every call in ``calls``."""

    nodes: set[str] = field(default_factory=lambda: {"node-a", "node-b"})
    device_list: list[dict[str, Any]] = field(default_factory=lambda: [
        {"name": "cmts1", "platform": "lab", "reachable": True},
        {"name": "cmts2", "platform": "lab", "reachable": False},
    ])
    sightings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    plans: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)
    is_ready: tuple[bool, str] = (True, "ok")
    calls: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> list[str]:
        return [arg for name, arg in self.calls if name == "order_accepted"]

    def order_accepted(self, order_id: str) -> None:
        self.calls.append(("order_accepted", order_id))

    def ready(self) -> tuple[bool, str]:
        self.calls.append(("ready", None))
        return self.is_ready

    async def where(self, mac: Mac) -> list[dict[str, Any]]:
        self.calls.append(("where", mac))
        return self.sightings.get(str(mac), [])

    async def plan(self, order_id: str | None) -> list[dict[str, Any]]:
        self.calls.append(("plan", order_id))
        if order_id not in self.plans:
            raise LookupError(f"no order {order_id}")
        return self.plans[order_id]

    async def preview(self, order: Any) -> list[dict[str, Any]]:
        self.calls.append(("preview", order.id))
        return [{"device": "cmts1", "layer": "cmts", "mac": str(d.mac), "kind": d.kind.value,
                 "seen": "forwarding", "state": "online", "error": None,
                 "mechanism": "cm-ctrl", "action": "push", "reset": False}
                for d in order.devices]

    def devices(self) -> list[dict[str, Any]]:
        self.calls.append(("devices", None))
        return self.device_list

    async def check_device(self, name: str) -> dict[str, Any]:
        self.calls.append(("check_device", name))
        for d in self.device_list:
            if d["name"] == name:
                return {"name": name, "reachable": d.get("reachable", False)}
        raise LookupError(f"no device {name!r} in inventory")

    async def trust_device(self, name: str, actor: str,
                           expect: str | None = None) -> dict[str, Any]:
        self.calls.append(("trust_device", (name, actor)))
        if not any(d["name"] == name for d in self.device_list):
            raise LookupError(f"no device {name!r} in inventory")
        if expect is not None and expect != FAKE_FINGERPRINT:
            from enforcer.errors import HostKeyError
            raise HostKeyError(f"{name} presents {FAKE_FINGERPRINT}, not the expected {expect}",
                               device=name, reason="unexpected", presented=FAKE_FINGERPRINT)
        return {"name": name, "fingerprint": FAKE_FINGERPRINT, "host_key": "ssh-ed25519 AAAA",
                "pinned_in": "store", "previous_fingerprint": None, "changed": True}

    async def reconcile_all(self) -> dict[str, Any]:
        self.calls.append(("reconcile_all", None))
        return {"elapsed_s": 0.0, "devices": len(self.device_list), "checked": 0,
                "repairs": 0, "unreachable": [], "unowned_blocks": 0}

    def node_names(self) -> set[str]:
        return self.nodes


class FakeClock:
    """An injectable clock (aware UTC) that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
