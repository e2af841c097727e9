"""The driver every platform uses: the profile says what to send, this class sends it
through the device's limiter (concurrency, retries, reset budget) and proves each
change by reading it back (results fail closed, docs/architecture.md §P6)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from enforcer.domain.mac import Mac
from enforcer.drivers.base import CheckFacts, MechanismDriver, Observation, PushResult, combine
from enforcer.drivers.cli_mech import CliMechanisms, ListingResult
from enforcer.drivers.render import Scrubber
from enforcer.drivers.snmp_mech import SnmpMechanisms
from enforcer.drivers.snmp_state import (
    ColumnWalker,
    Reading,
    RowResolver,
    read_sources,
    sweep_sources,
    sweep_wanted,
)
from enforcer.errors import CapacityError, CliCommandError, DriverError, EnforcerError, SshError
from enforcer.inventory.profiles import Mechanism, Profile
from enforcer.mib import oid
from enforcer.transport.base import CliSession, DeviceLimiter, SnmpSession, SnmpValue

S = TypeVar("S")
T = TypeVar("T")
Factory = Callable[[], Awaitable[S]]


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return str(v)


class ProfileDriver(MechanismDriver):
    """A DeviceDriver for any profile; sessions are opened lazily and reused."""

    def __init__(self, name: str, profile: Profile, *, limiter: DeviceLimiter,
                 snmp: Factory[SnmpSession] | None = None,
                 cli: Factory[CliSession] | None = None,
                 scrub: Scrubber | None = None) -> None:
        self.name = name
        self.profile = profile
        self.limiter = limiter
        self._snmp_factory = snmp
        self._cli_factory = cli
        self._scrub = scrub or Scrubber(())
        self._snmp_mech: SnmpMechanisms | None = None
        self._cli: CliSession | None = None
        self._cli_open = asyncio.Lock()
        self._cli_mech = CliMechanisms(name, profile, self._cli_session, self._scrub)

    # ---- sessions ------------------------------------------------------------------

    async def _snmp(self) -> SnmpMechanisms:
        if self._snmp_mech is None:
            if self._snmp_factory is None:
                raise DriverError(f"{self.name}: no SNMP transport for {self.profile.platform}")
            session = await self._snmp_factory()
            # A session that walks several columns in one request stream (the lean
            # client's HybridSession) serves sweeps in one walk, not one per column.
            fast = session if isinstance(session, ColumnWalker) else None
            self._snmp_mech = SnmpMechanisms(self.name, self.profile, RowResolver(session, fast))
        return self._snmp_mech

    async def _cli_session(self) -> CliSession:
        async with self._cli_open:
            if self._cli is None:
                if self._cli_factory is None:
                    raise DriverError(f"{self.name}: no SSH transport for "
                                      f"{self.profile.platform}")
                self._cli = await self._cli_factory()
            return self._cli

    async def _guarded(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run through the limiter; a broken SSH session is dropped so the next try
        (the limiter retries DeviceUnreachable) connects afresh."""
        async def once() -> T:
            try:
                return await fn()
            except SshError as e:
                if not isinstance(e, CliCommandError):
                    await self._drop_cli()
                raise
        return await self.limiter.run(op, once)

    async def _drop_cli(self) -> None:
        cli, self._cli = self._cli, None
        if cli is not None:
            # already broken; the error that got us here is what matters
            with contextlib.suppress(EnforcerError):
                await cli.close()

    # ---- the DeviceDriver protocol --------------------------------------------------

    async def check(self) -> CheckFacts:
        """Contact the device over every transport its profile uses: SNMP sysDescr and
        sysUpTime (SNMPv2-MIB), and an SSH login with one harmless command.
        Raises the transport error of the first transport that fails."""
        out: CheckFacts = {"platform": self.profile.platform}
        if self._snmp_factory is not None:
            async def snmp_check() -> list[tuple[Any, Any]]:
                mech = await self._snmp()
                return list(await mech.resolver.session.get(
                    [(*oid("sysDescr"), 0), (*oid("sysUpTime"), 0)]))
            got = await self._guarded("check", snmp_check)
            out["sys_descr"] = _text(got[0][1])
            out["uptime_ticks"] = _text(got[1][1])
        if self._cli_factory is not None:
            probe = self.profile.transports.ssh.check_command if (
                self.profile.transports.ssh is not None) else None

            async def cli_check() -> str:
                session = await self._cli_session()
                return await session.send_command(probe or "")
            text = await self._guarded("check", cli_check)
            out["cli"] = "ok" if probe is None else text.strip().splitlines()[0:1]
        return out

    async def list_blocks(self, mechanism: str) -> set[Mac] | None:
        """Every MAC a bounded SNMP table (deny list, hotlist) holds now; None when the
        mechanism keeps no such table (per-registration blocks, CLI-only lists)."""
        m = self._mechanism(mechanism)
        if m.transport != "snmp" or m.capacity is None or m.capacity.count_walk is None:
            return None

        async def walk() -> set[Mac] | None:
            got = await (await self._snmp()).table(m)
            return None if got is None else got[0]
        return await self._guarded("list_blocks", walk)

    def table_limit(self, mechanism: str) -> int | None:
        m = self._mechanism(mechanism)
        if m.capacity is None:
            return None
        return self.profile.limits.table_size(m.capacity.limit) or None

    async def _push(self, result: PushResult, m: Mechanism, *, apply: bool) -> PushResult:
        t = result.transcript

        async def change() -> bool:
            if m.transport == "snmp":
                return await (await self._snmp()).change(m, result.mac, t, apply=apply)
            steps = m.apply.cli if apply else m.remove.cli
            assert steps is not None and m.read_back.cli is not None  # checked at load
            full = m.capacity.full_errors if (apply and m.capacity) else None
            return await self._cli_mech.change(steps, m.read_back.cli, result.mac, t,
                                               apply=apply, name=m.name, full_errors=full)
        try:
            return result.succeed(await self._guarded(result.action, change))
        except CapacityError:
            raise
        except EnforcerError as e:
            result.error, result.exception = str(e), e
            return result

    async def read_back(self, mac: Mac, mechanism: str) -> bool:
        m = self._mechanism(mechanism)
        return await self._guarded("read_back", lambda: self._read_back(m, mac, []))

    async def _read_back(self, m: Mechanism, mac: Mac, transcript: list[str], *,
                         known: dict[str, SnmpValue | None] | None = None) -> bool:
        if m.transport == "snmp":
            return await (await self._snmp()).read_back(m, mac, transcript, known=known)
        assert m.read_back.cli is not None
        return await self._cli_mech.check(m.read_back.cli, mac, transcript)

    async def kick(self, mac: Mac) -> PushResult:
        """Force re-registration, within the device's reset budget (facts section 6)."""
        result = PushResult(self.name, mac, "kick", "kick")
        kick = self.profile.kick
        if kick is None:
            result.error = f"profile {self.profile.platform} defines no kick"
            return result
        waited = await self.limiter.acquire_reset()
        if waited:
            result.transcript.append(f"waited {waited:.2f}s for the reset budget")

        async def send() -> bool:
            if kick.snmp is not None:
                return await (await self._snmp()).kick(kick, mac, result.transcript)
            assert kick.cli is not None
            await self._cli_mech.run(kick.cli, self._cli_mech.context(mac), result.transcript)
            return True
        try:
            return result.succeed(await self._guarded("kick", send))
        except EnforcerError as e:
            result.error, result.exception = str(e), e
            return result

    async def observe(self, mac: Mac) -> Observation:
        """Targeted look-up; the verdict comes from the profile's state maps."""
        return await self._guarded("observe", lambda: self._observe(mac))

    async def _observe(self, mac: Mac) -> Observation:
        spec = self.profile.observe
        transcript: list[str] = []
        readings: list[Reading] = []
        detail: dict[str, object] = {}
        known: dict[str, SnmpValue | None] = {}
        if spec.snmp is not None:
            mech = await self._snmp()
            got = await read_sources(mech.resolver, spec.snmp.sources, mac, transcript)
            for name, (r, value) in got.items():
                readings.append(r)
                detail[name] = r[1]
                known[name] = value
        if spec.cli is not None:
            r, fields = await self._cli_mech.observe(spec.cli, mac, transcript)
            readings.append(r)
            detail.update(state=r[1], **fields)
        verdict, state = combine(readings)
        blocks: dict[str, bool] = {}
        errors: dict[str, str] = {}
        for name in spec.blocks:
            try:
                blocks[name] = await self._read_back(self._mechanism(name), mac, transcript,
                                                     known=known)
            except EnforcerError as e:
                errors[name] = str(e)
        if errors:
            detail["block_errors"] = errors
        return Observation(self.name, mac, verdict, state, detail, blocks)

    async def sweep(self) -> dict[Mac, Observation]:
        """Every MAC the device lists (blocks_present is left empty: read back per MAC
        with ``read_back`` when needed)."""
        return await self._guarded("sweep", self._sweep)

    async def _sweep(self) -> dict[Mac, Observation]:
        spec = self.profile.sweep
        out: dict[Mac, Observation] = {}
        if spec is None:
            raise DriverError(f"{self.name}: profile {self.profile.platform} has no sweep")
        if spec.snmp_sources and self.profile.observe.snmp is not None:
            sources = [s for s in self.profile.observe.snmp.sources
                       if s.name in spec.snmp_sources]
            per_mac = await sweep_sources((await self._snmp()).resolver, sources)
            for mac, readings in per_mac.items():
                verdict, state = combine(list(readings.values()))
                out[mac] = Observation(self.name, mac, verdict, state,
                                       {k: v[1] for k, v in readings.items()})
        if spec.cli is not None and self.profile.observe.cli is not None:
            rows = await self._cli_mech.sweep(spec.cli, self.profile.observe.cli, [])
            for mac, (verdict, state) in rows.items():
                out[mac] = Observation(self.name, mac, verdict, state, {"state": state})
        return out

    async def observe_macs(self, macs: Collection[Mac]) -> dict[Mac, Observation]:
        """The sweep's verdicts for ``macs`` only (``BulkObserve``): the SNMP sweep
        sources are walked in profile order while some MAC is still undecided
        (``sweep_wanted``), rows of other modems are skipped. A profile whose sweep
        includes a CLI listing (which decides over the SNMP readings) sweeps in full."""
        return await self._guarded("sweep", lambda: self._observe_macs(macs))

    async def _observe_macs(self, macs: Collection[Mac]) -> dict[Mac, Observation]:
        spec = self.profile.sweep
        if spec is None:
            raise DriverError(f"{self.name}: profile {self.profile.platform} has no sweep")
        if spec.cli is not None:
            full = await self._sweep()
            return {m: o for m in macs if (o := full.get(m)) is not None}
        out: dict[Mac, Observation] = {}
        if spec.snmp_sources and self.profile.observe.snmp is not None and macs:
            sources = [s for s in self.profile.observe.snmp.sources
                       if s.name in spec.snmp_sources]
            per_mac = await sweep_wanted((await self._snmp()).resolver, sources, macs)
            for mac, readings in per_mac.items():
                verdict, state = combine(list(readings.values()))
                out[mac] = Observation(self.name, mac, verdict, state,
                                       {k: v[1] for k, v in readings.items()})
        return out

    async def list_modems(self) -> ListingResult:
        """The device's own modem listing (the profile's ``listing``: e.g. ``show cable
        modem``) read over the CLI and mapped through the profile's state vocabulary.
        Raises UnrecognisedAnswer for an answer that is not that listing."""
        spec = self.profile.listing
        if spec is None:
            raise DriverError(f"{self.name}: profile {self.profile.platform} has no listing")
        return await self._guarded("list_modems",
                                   lambda: self._cli_mech.listing(spec, []))

    async def close(self) -> None:
        await self._drop_cli()
        mech, self._snmp_mech = self._snmp_mech, None
        if mech is not None:
            await mech.session.close()
