"""In-memory transports that record every call, for unit tests (docs/architecture.md §P4: fakes
for unit tests, the real protocols against the lab in integration tests).

FakeSnmp answers from a dict; unknown OIDs answer noSuchInstance (as snmp_exporter's
mock answers NoSuchObject), never an empty value. ``on_set`` lets a test play the
device's reaction to a SET; ``set_errors`` answers an error-status for an OID;
``fail`` queues exceptions raised by the next calls (timeouts, auth errors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from enforcer.errors import SnmpStatusError
from enforcer.transport.base import Missing, Oid, SetVarbind, SnmpValue, oid_str


@dataclass
class FakeSnmp:
    device: str = "fake"
    values: dict[Oid, SnmpValue] = field(default_factory=dict)
    set_errors: dict[Oid, str] = field(default_factory=dict)
    on_set: Callable[[FakeSnmp, list[SetVarbind]], None] | None = None
    fail: list[Exception] = field(default_factory=list)
    calls: list[tuple[str, tuple[Oid, ...]]] = field(default_factory=list)
    sets: list[list[SetVarbind]] = field(default_factory=list)
    closed: bool = False

    def _maybe_fail(self) -> None:
        if self.fail:
            raise self.fail.pop(0)

    async def get(self, oids: Sequence[Oid]) -> list[tuple[Oid, SnmpValue]]:
        self.calls.append(("get", tuple(oids)))
        self._maybe_fail()
        return [(o, self.values.get(o, Missing.NO_SUCH_INSTANCE)) for o in oids]

    async def set(self, varbinds: Sequence[SetVarbind]) -> list[tuple[Oid, SnmpValue]]:
        vbs = list(varbinds)
        self.calls.append(("set", tuple(v.oid for v in vbs)))
        self._maybe_fail()
        for v in vbs:
            status = self.set_errors.get(v.oid)
            if status:
                raise SnmpStatusError(device=self.device, op="snmp.set", oid=oid_str(v.oid),
                                      status=status)
        self.sets.append(vbs)
        if self.on_set is not None:
            self.on_set(self, vbs)
        else:
            for v in vbs:
                self.values[v.oid] = v.value
        return [(v.oid, v.value) for v in vbs]

    async def bulk_walk(self, oid: Oid) -> list[tuple[Oid, SnmpValue]]:
        self.calls.append(("walk", (oid,)))
        self._maybe_fail()
        n = len(oid)
        return sorted((k, v) for k, v in self.values.items() if k[:n] == oid and len(k) > n)

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeCli:
    """Answers commands from ``responses`` (text or a function of the session);
    ``on_config`` / ``on_command`` play the device's reaction."""

    responses: dict[str, str | Callable[[FakeCli], str]] = field(default_factory=dict)
    on_config: Callable[[FakeCli, list[str]], str] | None = None
    on_command: Callable[[FakeCli, str], str | None] | None = None
    fail: list[Exception] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    configs: list[list[str]] = field(default_factory=list)
    closed: bool = False

    async def send_command(self, command: str) -> str:
        self.commands.append(command)
        if self.fail:
            raise self.fail.pop(0)
        if self.on_command is not None:
            out = self.on_command(self, command)
            if out is not None:
                return out
        answer = self.responses.get(command, "")
        return answer(self) if callable(answer) else answer

    async def send_config(self, lines: Sequence[str]) -> str:
        self.configs.append(list(lines))
        if self.fail:
            raise self.fail.pop(0)
        return self.on_config(self, list(lines)) if self.on_config else ""

    async def close(self) -> None:
        self.closed = True
