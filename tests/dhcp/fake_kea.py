"""An in-memory Kea control channel that records calls (docs/architecture.md §P4). It answers
config-get / config-test / config-set / config-write / list-commands and the lease_cmds
look-ups the driver uses, like Kea 2.2 does; ``fail`` makes a command answer an error."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from enforcer.dhcp.kea_control import EMPTY, KeaCommandError


class FakeKea:
    def __init__(self, *, client_classes: list[dict[str, Any]] | None = None,
                 lease_cmds: bool = True, delay_s: float = 0.0) -> None:
        self.dhcp4: dict[str, Any] = {
            "interfaces-config": {"interfaces": ["eth0"]},
            "subnet4": [{"id": 1, "subnet": "10.0.0.0/24"}],
            "client-classes": list(client_classes or []),
        }
        self.calls: list[str] = []
        self.written: dict[str, Any] | None = None
        self.leases: dict[str, list[dict[str, Any]]] = {}
        self.lease_cmds = lease_cmds
        self.fail: dict[str, str] = {}
        self.delay_s = delay_s
        self.busy = False
        self.overlaps = 0

    async def call(self, command: str, arguments: dict[str, Any] | None = None,
                   *, empty_ok: bool = False) -> Any:
        self.calls.append(command)
        if self.busy:
            self.overlaps += 1
        self.busy = True
        try:
            await asyncio.sleep(self.delay_s)
            return self._answer(command, arguments or {}, empty_ok)
        finally:
            self.busy = False

    def _answer(self, command: str, args: dict[str, Any], empty_ok: bool) -> Any:
        if command in self.fail:
            raise KeaCommandError(command, 1, self.fail[command])
        if command == "list-commands":
            base = ["config-get", "config-set", "config-test", "config-write", "list-commands"]
            return base + (["lease4-get-by-hw-address", "lease4-del"] if self.lease_cmds
                           else [])
        if command == "config-get":
            return {"Dhcp4": copy.deepcopy(self.dhcp4), "hash": "abc"}
        if command in ("config-test", "config-set"):
            if set(args) != {"Dhcp4"}:
                raise KeaCommandError(command, 1, "expected exactly a Dhcp4 map")
            if command == "config-set":
                self.dhcp4 = copy.deepcopy(args["Dhcp4"])
            return {}
        if command == "config-write":
            self.written = copy.deepcopy(self.dhcp4)
            return {"filename": "/etc/kea/kea-dhcp4.conf"}
        if command == "lease4-get-by-hw-address":
            found = self.leases.get(args["hw-address"], [])
            if not found and not empty_ok:
                raise KeaCommandError(command, EMPTY, "0 IPv4 lease(s) found.")
            return {"leases": found}
        if command == "lease4-del":
            for mac, leases in self.leases.items():
                self.leases[mac] = [x for x in leases if x["ip-address"] != args["ip-address"]]
            return {}
        raise KeaCommandError(command, 2, "not supported")

    def drop_test(self) -> str | None:
        for c in self.dhcp4.get("client-classes", []):
            if c.get("name") == "DROP":
                return str(c["test"])
        return None
