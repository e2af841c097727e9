"""The provisioning-side driver: bans as membership of Kea's built-in ``DROP`` client
class, through Kea's control channel (docs/docsis.md section 6; docs/dhcp.md).

A mechanism's ``drop`` list says what a banned MAC adds to the class: ``mac`` (the
modem's own DISCOVER/REQUEST, ``pkt4.mac``) and ``remote_id`` (requests the CMTS
relays for the CPEs behind the modem, option 82 ``relay4[2].hex`` = the modem MAC).
Every change is read-modify-write of the whole configuration (``config-get`` ->
``config-test`` -> ``config-set`` -> ``config-write``) and is serialised per server
(an asyncio lock, and the profile's ``max_sessions: 1``). It reads back first (already
in the wanted state: ``changed=False``, nothing sent) and again afterwards; ``failed``
stays True until that last read back agrees (docs/architecture.md §P6).

The refusal bites at the modem's next DHCP exchange, so the modem must be reset on its
CMTS afterwards (``kick_after_apply``): that is the engine's job, since the reset is
done by a CMTS driver. ``kick`` here only releases the MAC's leases (lease_cmds hook)
after recording them in the transcript.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from enforcer.dhcp.dropclass import DropSet, find_class, parse_class, render_class, with_class
from enforcer.dhcp.kea_control import KeaControl, UnixKeaControl
from enforcer.domain.mac import Mac
from enforcer.domain.model import Verdict
from enforcer.drivers.base import CheckFacts, MechanismDriver, Observation, PushResult
from enforcer.drivers.render import Scrubber
from enforcer.errors import ConfigError, DriverError, EnforcerError
from enforcer.inventory.profiles import Mechanism, Profile
from enforcer.transport.base import DeviceLimiter

T = TypeVar("T")
Terms = tuple[frozenset[Mac], frozenset[bytes]]


class KeaDriver(MechanismDriver):
    """A DeviceDriver for a Kea DHCPv4 server (profile kind ``dhcp``)."""

    def __init__(self, name: str, profile: Profile, *, limiter: DeviceLimiter,
                 snmp: Any = None, cli: Any = None, scrub: Scrubber | None = None,
                 socket_path: str | None = None, control: KeaControl | None = None) -> None:
        self.name = name
        self.profile = profile
        self.limiter = limiter
        spec = profile.transports.kea
        if spec is None:
            raise ConfigError(f"{name}: profile {profile.platform} has no kea transport")
        if control is None:
            if not socket_path:
                raise ConfigError(f"{name}: a dhcp device's host must be the Kea control "
                                  "socket path")
            control = UnixKeaControl(name, socket_path, timeout_s=spec.timeout_s)
        self.control = control
        self.write_config = spec.write_config
        self._lock = asyncio.Lock()  # one read-modify-write of the config at a time
        self._commands: frozenset[str] | None = None

    # ---- helpers ---------------------------------------------------------------------

    def _mechanism(self, name: str) -> Mechanism:
        m = super()._mechanism(name)
        if m.transport != "kea":
            raise DriverError(f"{self.name}: {name} is not a kea mechanism")
        return m

    @staticmethod
    def terms(m: Mechanism, mac: Mac) -> Terms:
        """What ``m`` adds to the DROP class for ``mac``."""
        return (frozenset({mac}) if "mac" in m.drop else frozenset(),
                frozenset({mac.packed}) if "remote_id" in m.drop else frozenset())

    async def _guarded(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        return await self.limiter.run(op, fn)

    async def _read(self, transcript: list[str]) -> tuple[dict[str, Any], DropSet, bool]:
        args = await self.control.call("config-get")
        dhcp4 = args.get("Dhcp4") if isinstance(args, dict) else None
        if not isinstance(dhcp4, dict):
            raise DriverError(f"{self.name}: config-get returned no Dhcp4 configuration")
        cls = find_class(dhcp4)
        drops, consistent = parse_class(cls)
        transcript.append(f"config-get -> DROP test: {cls.get('test') if cls else '(none)'}")
        return dhcp4, drops, consistent

    async def _write(self, dhcp4: dict[str, Any], want: DropSet, transcript: list[str]) -> None:
        cls = render_class(want, find_class(dhcp4))
        config = {"Dhcp4": with_class(dhcp4, cls)}
        shown = cls["test"] if cls else "(class removed)"
        await self.control.call("config-test", config)
        await self.control.call("config-set", config)
        transcript.append(f"config-set DROP test: {shown} -> ok")
        if self.write_config:
            written = await self.control.call("config-write", {})
            where = written.get("filename", "ok") if isinstance(written, dict) else "ok"
            transcript.append(f"config-write -> {where}")

    async def commands(self) -> frozenset[str]:
        if self._commands is None:
            got = await self.control.call("list-commands")
            if not isinstance(got, list):
                raise DriverError(f"{self.name}: list-commands returned no list")
            self._commands = frozenset(str(c) for c in got)
        return self._commands

    # ---- the DeviceDriver protocol ---------------------------------------------------

    async def _push(self, result: PushResult, m: Mechanism, *, apply: bool) -> PushResult:
        t = result.transcript
        macs, rids = self.terms(m, result.mac)

        def settled(d: DropSet) -> bool:
            if apply:
                return d.holds(macs, rids)
            return not (macs & d.macs) and not (rids & d.remote_ids)

        async def change() -> bool:
            async with self._lock:
                dhcp4, drops, consistent = await self._read(t)
                if settled(drops) and consistent:
                    t.append(f"read back: {'present' if apply else 'absent'} already")
                    return False
                want = drops.with_(macs, rids) if apply else drops.without(macs, rids)
                await self._write(dhcp4, want, t)
                _, after, ok = await self._read(t)
                if not (settled(after) and ok):
                    raise DriverError(f"{self.name}: {m.name} sent for {result.mac} but "
                                      f"read back says {'absent' if apply else 'present'}")
                return True
        try:
            return result.succeed(await self._guarded(result.action, change))
        except EnforcerError as e:
            result.error, result.exception = str(e), e
            return result

    async def read_back(self, mac: Mac, mechanism: str) -> bool:
        m = self._mechanism(mechanism)

        async def check() -> bool:
            _, drops, _ = await self._read([])
            return drops.holds(*self.terms(m, mac))
        return await self._guarded("read_back", check)

    async def drop_set(self) -> DropSet:
        """Everything the server's DROP class holds for the enforcer."""
        async def get() -> DropSet:
            return (await self._read([]))[1]
        return await self._guarded("drop_set", get)

    async def leases(self, mac: Mac) -> list[dict[str, Any]]:
        """The MAC's IPv4 leases; [] when the lease_cmds hook is not loaded."""
        if "lease4-get-by-hw-address" not in await self.commands():
            return []
        got = await self.control.call("lease4-get-by-hw-address",
                                      {"hw-address": mac.colon()}, empty_ok=True)
        leases = got.get("leases", []) if isinstance(got, dict) else []
        return [x for x in leases if isinstance(x, dict)]

    async def kick(self, mac: Mac) -> PushResult:
        """Release the MAC's leases (recorded first). The re-registration itself is
        forced on the modem's CMTS by the engine."""
        result = PushResult(self.name, mac, "kick", "kick")

        async def release() -> bool:
            if "lease4-del" not in await self.commands():
                result.transcript.append("lease_cmds not loaded: no leases released")
                return False
            found = await self.leases(mac)
            for lease in found:
                ip = str(lease.get("ip-address"))
                result.transcript.append(f"lease {ip} (state {lease.get('state')}, "
                                         f"expires {lease.get('cltt', 0)}+"
                                         f"{lease.get('valid-lft', 0)})")
                await self.control.call("lease4-del", {"ip-address": ip}, empty_ok=True)
                result.transcript.append(f"lease4-del {ip} -> ok")
            return bool(found)
        try:
            return result.succeed(await self._guarded("kick", release))
        except EnforcerError as e:
            result.error, result.exception = str(e), e
            return result

    async def observe(self, mac: Mac) -> Observation:
        """blocked: the DROP class holds the MAC (for any mechanism); otherwise
        forwarding when the server has an active lease for it, absent when not."""
        async def look() -> Observation:
            _, drops, consistent = await self._read([])
            blocks = {m.name: drops.holds(*self.terms(m, mac))
                      for m in self.profile.mechanisms}
            detail: dict[str, Any] = {"drop_consistent": consistent}
            held = [w for w, on in (("mac", mac in drops.macs),
                                    ("remote-id", mac.packed in drops.remote_ids)) if on]
            if held:
                return Observation(self.name, mac, Verdict.BLOCKED,
                                   f"DROP({', '.join(held)})", detail, blocks)
            active = [x for x in await self.leases(mac) if x.get("state", 0) == 0]
            if active:
                detail["leases"] = [x.get("ip-address") for x in active]
                return Observation(self.name, mac, Verdict.FORWARDING,
                                   f"leased {active[0].get('ip-address')}", detail, blocks)
            return Observation(self.name, mac, Verdict.ABSENT, "no lease", detail, blocks)
        return await self._guarded("observe", look)

    async def sweep(self) -> dict[Mac, Observation]:
        """Every MAC the DROP class holds (as blocked)."""
        drops = await self.drop_set()
        return {mac: Observation(self.name, mac, Verdict.BLOCKED, "DROP(mac)")
                for mac in sorted(drops.macs)}

    async def check(self) -> CheckFacts:
        """Reachability and what the server supports (for ``devices check``)."""
        cmds = await self._guarded("check", self.commands)
        drops = await self.drop_set()
        return {"commands": len(cmds), "lease_cmds": "lease4-del" in cmds,
                "drop_macs": len(drops.macs), "drop_remote_ids": len(drops.remote_ids)}

    async def close(self) -> None:
        return None
