"""What every enforcement driver is: one small Protocol and results that fail closed
(docs/architecture.md §P6: ``failed`` stays True until success is proven by a read-back).

Mechanism semantics (docs/docsis.md section 6): persistent blocks (ARRIS deny list,
BPI+ hotlist) take effect at the next registration, so the engine kicks after
applying them (``Mechanism.kick_after_apply``); CM-CTRL acts on the current
registration at once and is lost at the next one, so the reconciler re-applies it
from ``read_back`` / ``observe``. A full device table raises CapacityError so the
engine can fall back to the next mechanism in ``mechanisms()`` order.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Verdict
from enforcer.errors import DriverError
from enforcer.inventory.profiles import Mechanism, Profile

Action = Literal["apply", "remove", "kick"]


@dataclass
class PushResult:
    """The outcome of one push. ``transcript`` holds what was sent and received
    (secrets scrubbed; SNMP as ``SET oid = value -> noError``)."""

    device: str
    mac: Mac
    mechanism: str
    action: Action
    changed: bool = False
    failed: bool = True
    transcript: list[str] = field(default_factory=list)
    error: str | None = None
    exception: Exception | None = None

    def succeed(self, changed: bool) -> PushResult:
        self.changed = changed
        self.failed = False
        self.error = None
        return self


@dataclass
class Observation:
    """What one device says about one MAC. ``state`` is the raw state that decided
    the verdict (e.g. ``forwardingDisabled(17)``, ``online(d)``); ``detail`` holds
    every source's reading; ``blocks_present`` maps mechanism -> read back."""

    device: str
    mac: Mac
    verdict: Verdict
    state: str
    detail: dict[str, Any] = field(default_factory=dict)
    blocks_present: dict[str, bool] = field(default_factory=dict)


class DeviceDriver(Protocol):
    """One device, driven as its profile says."""

    name: str
    profile: Profile

    async def apply(self, mac: Mac, mechanism: str, *, kind: DeviceKind) -> PushResult: ...

    async def remove(self, mac: Mac, mechanism: str) -> PushResult: ...

    async def read_back(self, mac: Mac, mechanism: str) -> bool: ...

    async def kick(self, mac: Mac) -> PushResult: ...

    async def observe(self, mac: Mac) -> Observation: ...

    async def sweep(self) -> dict[Mac, Observation]: ...

    def mechanisms(self) -> list[str]: ...

    async def close(self) -> None: ...


# ---- optional capabilities: found with isinstance, never hasattr ----------------------


class CheckFacts(TypedDict, total=False):
    """What a driver's ``check`` read from its device. A profile-driven CMTS or
    headend: its ``platform``, SNMP ``sys_descr`` and ``uptime_ticks``, and ``cli``
    ("ok", or the first line the profile's check command printed); a Kea server: how
    many control ``commands`` it offers, whether it can delete leases (``lease_cmds``),
    and the MACs and remote-ids its DROP class holds."""

    platform: str
    sys_descr: str
    uptime_ticks: str
    cli: str | list[str]
    commands: int
    lease_cmds: bool
    drop_macs: int
    drop_remote_ids: int


@runtime_checkable
class DeviceCheck(Protocol):
    """A driver that can contact its device on demand and say what it found
    (``enforcer devices check``)."""

    async def check(self) -> CheckFacts: ...


@runtime_checkable
class BlockTables(Protocol):
    """A driver that can list a mechanism's whole block table in one read (None: the
    mechanism keeps its blocks outside a walkable table) and knows the table's size."""

    async def list_blocks(self, mechanism: str) -> set[Mac] | None: ...

    def table_limit(self, mechanism: str) -> int | None: ...


@runtime_checkable
class BulkObserve(Protocol):
    """A driver that reads the registration state of many MACs in one bulk read (the
    profile's sweep, restricted to those MACs): for each MAC the device lists, the
    verdict and state ``sweep`` would give; MACs it does not list are left out."""

    async def observe_macs(self, macs: Collection[Mac]) -> dict[Mac, Observation]: ...


@runtime_checkable
class EcmLookup(Protocol):
    """A headend controller driver that knows each set-top's embedded modem MAC."""

    async def ecm_mac(self, mac: Mac) -> Mac | None: ...


def combine(readings: list[tuple[Verdict, str]]) -> tuple[Verdict, str]:
    """The decisive (verdict, state) among several sources' readings, given in the
    profile's order (most specific source first): the first source that says blocked
    or forwarding decides. DOCS-IF has no notion of CM-CTRL, so a modem it calls
    operational(8) may be forwardingDisabled(17) in DOCS-IF3 (docs/docsis.md
    section 1): the more specific source must win, not a fixed verdict ranking.
    Without a decisive reading: unknown if any source is in transition, else absent."""
    for v, state in readings:
        if v in (Verdict.BLOCKED, Verdict.FORWARDING):
            return v, state
    for v, state in readings:
        if v is Verdict.UNKNOWN:
            return v, state
    if readings:
        return readings[0]
    return Verdict.UNKNOWN, "no reading"


class MechanismDriver:
    """What every profile-driven driver shares: mechanism look-up and the apply / remove
    entry points. Subclasses set ``name`` and ``profile`` and implement ``_push``."""

    name: str
    profile: Profile

    def mechanisms(self) -> list[str]:
        return [m.name for m in self.profile.mechanisms]

    def _mechanism(self, name: str) -> Mechanism:
        try:
            return self.profile.mechanism(name)
        except KeyError:
            raise DriverError(f"{self.name}: profile {self.profile.platform} has no "
                              f"mechanism {name!r}") from None

    async def apply(self, mac: Mac, mechanism: str, *, kind: DeviceKind) -> PushResult:
        m = self._mechanism(mechanism)
        result = PushResult(self.name, mac, m.name, "apply")
        if kind not in m.kinds:
            result.error = f"{m.name} is not for a {kind.value}"
            return result
        return await self._push(result, m, apply=True)

    async def remove(self, mac: Mac, mechanism: str) -> PushResult:
        m = self._mechanism(mechanism)
        return await self._push(PushResult(self.name, mac, m.name, "remove"), m, apply=False)

    async def _push(self, result: PushResult, m: Mechanism, *, apply: bool) -> PushResult:
        raise NotImplementedError
