"""SNMP mechanisms: SET PDUs from the profile, read back by GET or observe source.

Each PDU is sent as one SET, so a CMTS applies it atomically (RFC 3416 section
4.2.5); CM-CTRL sends MacAddr, DisableForwarding and Commit in one PDU with Commit
last (docs/docsis.md section 1). A bounded table (ARRIS deny list, capacity 100 per
the MIB note, 1000 on C4) is counted before adding, and resourceUnavailable on the
SET also means full: both raise CapacityError. A table found full is not walked again
for ``FULL_RECHECK_S`` (every ban would otherwise re-count it before falling back), unless
this driver removes an entry from it meanwhile.
"""

from __future__ import annotations

import time

from enforcer.domain.mac import Mac
from enforcer.drivers.render import Context, get_line, set_line, show_value
from enforcer.drivers.snmp_state import RowResolver, lookup_value, read_sources
from enforcer.errors import CapacityError, DriverError, SnmpStatusError
from enforcer.inventory.profiles import Kick, Mechanism, Profile, Varbind
from enforcer.transport.base import Missing, SnmpSession, SnmpValue

FULL_RECHECK_S = 30.0


class SnmpMechanisms:
    """Apply / remove / read back / kick for one device's SNMP mechanisms."""

    def __init__(self, device: str, profile: Profile, resolver: RowResolver) -> None:
        self.device = device
        self.profile = profile
        self.resolver = resolver
        self.session: SnmpSession = resolver.session
        self._full_until: dict[str, float] = {}  # table limit name -> monotonic deadline

    async def context(self, mac: Mac, templates: list[str], transcript: list[str]) -> Context:
        """Placeholder values, resolving ``{ifindex}`` only when a template needs it."""
        ctx = Context(mac, self.profile.mac_format)
        if "ifindex" in ctx.needs(templates):
            lookup = self.profile.observe.snmp.ifindex if self.profile.observe.snmp else None
            if lookup is None:
                raise DriverError(f"{self.device}: profile has no observe.snmp.ifindex")
            value = await lookup_value(self.resolver, lookup, mac, transcript)
            if not isinstance(value, int):
                raise DriverError(f"{self.device}: {mac} has no MAC-domain ifIndex "
                                  f"({show_value(value)}): not registered here")
            ctx.values["ifindex"] = str(value)
        return ctx

    async def read_back(self, m: Mechanism, mac: Mac, transcript: list[str], *,
                        known: dict[str, SnmpValue | None] | None = None) -> bool:
        """True when the block reads back present. ``known``: observe-source values read
        for this MAC moments ago in the same operation (not read again)."""
        expects = m.read_back.snmp or []
        ctx = await self.context(mac, [e.oid for e in expects if e.oid], transcript)
        for e in expects:
            if e.source is not None and known is not None and e.source in known:
                value = known[e.source]
            elif e.source is not None:
                assert self.profile.observe.snmp is not None
                src = next(s for s in self.profile.observe.snmp.sources if s.name == e.source)
                got = await read_sources(self.resolver, [src], mac, transcript)
                value = got[src.name][1]
            else:
                assert e.oid is not None
                oid = tuple(int(p) for p in ctx.text(e.oid).split("."))
                [(_, value)] = await self.session.get([oid])
                transcript.append(get_line(oid, value))
            if isinstance(value, Missing) and value is not Missing.NO_SUCH_INSTANCE:
                # noSuchObject: the agent has no such table (not supported); that is
                # not "no entry", so it must not read back as absent.
                raise DriverError(f"{self.device}: {m.name} read back answered "
                                  f"{show_value(value)} (not supported), not an entry state")
            if not isinstance(value, int) or value not in e.values:
                return False
        return True

    async def requirements(self, m: Mechanism, mac: Mac, transcript: list[str]) -> None:
        for name in m.requires:
            probe = self.profile.capabilities[name].snmp_present
            ctx = await self.context(mac, [probe], transcript)
            oid = tuple(int(p) for p in ctx.text(probe).split("."))
            [(_, value)] = await self.session.get([oid])
            transcript.append(get_line(oid, value))
            if isinstance(value, Missing):
                raise DriverError(f"{self.device}: {m.name} needs {name}, which {mac} "
                                  "does not show here")

    async def check_capacity(self, m: Mechanism, transcript: list[str]) -> None:
        cap = m.capacity
        if cap is None or cap.count_walk is None:
            return
        limit = self._limit(m)
        if time.monotonic() < self._full_until.get(cap.limit, 0.0):
            transcript.append(f"{cap.count_walk}: found full within {FULL_RECHECK_S:g} s "
                              f"(limit {limit})")
            raise CapacityError(f"{self.device}: {m.name} is full (at its limit of {limit}, "
                                f"counted within {FULL_RECHECK_S:g} s)")
        column = tuple(int(p) for p in cap.count_walk.split("."))
        rows = await self.session.bulk_walk(column)
        transcript.append(f"WALK {cap.count_walk} -> {len(rows)} rows (limit {limit})")
        if not rows:
            await self.resolver.require_column(column, f"{self.device}: {m.name}")
        if len(rows) >= limit:
            self._note_full(cap.limit)
            raise CapacityError(f"{self.device}: {m.name} is full ({len(rows)} of {limit})")

    def _limit(self, m: Mechanism) -> int:
        """The size of ``m``'s bounded table (a loaded profile always sets it)."""
        size = self.profile.limits.table_size(m.capacity.limit) if m.capacity else None
        if size is None:
            raise DriverError(f"{self.device}: {m.name} has no table size in its profile")
        return size

    def _note_full(self, limit: str) -> None:
        """The table bounded by ``limit`` was found full: not counted again for a while."""
        self._full_until[limit] = time.monotonic() + FULL_RECHECK_S

    async def table(self, m: Mechanism) -> tuple[set[Mac], int] | None:
        """The MACs in a bounded table (rows of ``count_walk``, indexed by MAC) and the
        table's limit; None when the mechanism has no countable table."""
        cap = m.capacity
        if cap is None or cap.count_walk is None:
            return None
        base = tuple(int(p) for p in cap.count_walk.split("."))
        macs: set[Mac] = set()
        rows = await self.session.bulk_walk(base)
        if not rows:
            await self.resolver.require_column(base, f"{self.device}: {m.name}")
        for oid, _value in rows:
            index = tuple(oid[len(base):])
            if len(index) == 6:
                macs.add(Mac.from_oid_index(index))
        return macs, self._limit(m)

    async def fetch(self, m: Mechanism, ctx: Context, transcript: list[str]) -> None:
        """GET the values a mechanism needs first (e.g. the modem's BPI+ certificate)."""
        for name, template in m.fetch.items():
            oid = tuple(int(p) for p in ctx.text(template).split("."))
            [(_, value)] = await self.session.get([oid])
            transcript.append(get_line(oid, value))
            if not isinstance(value, bytes):
                raise DriverError(f"{self.device}: cannot read {name} for "
                                  f"{ctx.values['mac']} ({show_value(value)})")
            ctx.values[name] = value.hex()

    async def send(self, pdus: list[list[Varbind]], ctx: Context, transcript: list[str],
                   *, full_errors: list[str] | None = None) -> None:
        for pdu in pdus:
            vbs = ctx.varbinds(pdu)
            try:
                await self.session.set(vbs)
            except SnmpStatusError as e:
                transcript.append(set_line(vbs, e.status))
                if full_errors and e.status in full_errors:
                    raise CapacityError(f"{self.device}: table full ({e.status})") from e
                raise
            transcript.append(set_line(vbs, "noError"))

    async def change(self, m: Mechanism, mac: Mac, transcript: list[str], *,
                     apply: bool) -> bool:
        """Bring the block to the wanted state; False when it already was there."""
        if await self.read_back(m, mac, transcript) == apply:
            transcript.append(f"read back: {'present' if apply else 'absent'} already")
            return False
        action = m.apply if apply else m.remove
        pdus = action.snmp or []
        templates = [t for pdu in pdus for vb in pdu for t in (vb.oid, vb.value)]
        if apply:
            await self.requirements(m, mac, transcript)
            await self.check_capacity(m, transcript)
        ctx = await self.context(mac, [t for t in templates if t] + list(m.fetch.values()),
                                 transcript)
        if apply:
            await self.fetch(m, ctx, transcript)
        full = m.capacity.full_errors if (apply and m.capacity) else None
        try:
            await self.send(pdus, ctx, transcript, full_errors=full)
        except CapacityError:
            if m.capacity is not None:  # full_errors come from it
                self._note_full(m.capacity.limit)
            raise
        if not apply and m.capacity is not None:
            self._full_until.pop(m.capacity.limit, None)  # room again
        if await self.read_back(m, mac, transcript) != apply:
            raise DriverError(f"{self.device}: {m.name} sent for {mac} but read back says "
                              f"{'absent' if apply else 'still present'}")
        return True

    async def kick(self, kick: Kick, mac: Mac, transcript: list[str]) -> bool:
        """Send the kick PDUs; False when the device does not list the MAC."""
        pdus = kick.snmp or []
        ctx = await self.context(mac, [vb.oid for pdu in pdus for vb in pdu], transcript)
        try:
            await self.send(pdus, ctx, transcript)
        except SnmpStatusError as e:
            if e.status in kick.not_present:
                transcript.append(f"{mac} not listed on {self.device}: nothing to kick")
                return False
            raise
        return True
