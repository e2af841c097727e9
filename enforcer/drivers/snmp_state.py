"""Reading registration state over SNMP, as a profile's observe sources describe.

A source is a state column plus how a MAC finds its row (docs/docsis.md section 1):
``mac`` (MAC-indexed, e.g. cadIfCmtsCmStatusValue), ``pointer`` (GET
docsIfCmtsMacToCmTable.docsIfCmtsCmPtr.<mac> -> docsIfCmtsCmStatusIndex; noSuchInstance
= the CMTS does not know the modem), ``walk`` (DOCS-IF3 has no MAC -> Id table: walk
the MacAddr column once and cache it; a cached row is re-checked on every use, in the
same GET as the values it locates).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol, runtime_checkable

from enforcer.domain.mac import Mac
from enforcer.domain.model import Verdict
from enforcer.drivers.render import show_value
from enforcer.errors import DriverError, MacError
from enforcer.inventory.profiles import IndexSpec, Lookup, Source
from enforcer.transport.base import Missing, Oid, SnmpSession, SnmpValue, parse_oid

Reading = tuple[Verdict, str]


def reading(source: Source, value: SnmpValue) -> Reading:
    """Map a raw value through the source's state map; unmapped -> unknown. Only
    noSuchInstance (no row for this modem) means absent: noSuchObject says the agent
    does not have the column at all (not supported), which proves nothing."""
    if value is Missing.NO_SUCH_INSTANCE:
        return Verdict.ABSENT, value.value
    if isinstance(value, Missing):
        return Verdict.UNKNOWN, f"{value.value}(not supported)"
    if not isinstance(value, int):
        return Verdict.UNKNOWN, f"unexpected({value!r})"
    st = source.states.get(value)
    if st is None:
        return Verdict.UNKNOWN, f"unmapped({value})"
    return st.verdict, f"{st.name}({value})"


@runtime_checkable
class ColumnWalker(Protocol):
    """A session that walks several columns in one request stream (the lean client,
    ``enforcer.transport.hybrid.HybridSession``): a capability, found by isinstance."""

    async def walk_columns(self, columns: Sequence[Oid]) -> dict[Oid, list[Any]]: ...


class RowResolver:
    """MAC -> row index per index spec, with a cache for ``walk`` lookups. Whole-column
    walks go through ``fast`` (the lean BER client) when given: pysnmp decodes a
    varbind in hundreds of microseconds, the lean path in a few."""

    def __init__(self, session: SnmpSession, fast: ColumnWalker | None = None) -> None:
        self.session = session
        self.fast = fast
        self._walked: dict[str, dict[Mac, Oid]] = {}  # mac_column -> MAC -> row

    async def walk(self, columns: Sequence[Oid]) -> dict[Oid, list[tuple[Oid, SnmpValue]]]:
        """(index, value) rows of each column, by the fastest path available."""
        if self.fast is not None:
            got = await self.fast.walk_columns(list(columns))
            return {c: [(tuple(r[0]), r[2]) for r in got.get(tuple(c), [])] for c in columns}
        out: dict[Oid, list[tuple[Oid, SnmpValue]]] = {}
        for c in columns:
            out[c] = [(oid[len(c):], v) for oid, v in await self.session.bulk_walk(c)]
        return out

    async def walk_rows(self, columns: Sequence[Oid]) -> dict[Oid, Sequence[Sequence[Any]]]:
        """Like ``walk``, without copying the rows: each row's index is ``row[0]`` and
        its value ``row[-1]`` (the lean client's rows are (index, tag, value))."""
        if self.fast is not None:
            got = await self.fast.walk_columns(list(columns))
            return {c: got.get(tuple(c), []) for c in columns}
        return dict(await self.walk(columns))

    async def require_column(self, column: Oid, what: str) -> None:
        """An empty walk proves nothing by itself: GET an instance of ``column`` and
        raise when the agent answers noSuchObject (it has no such table: not supported)
        rather than noSuchInstance (a supported table without that row)."""
        [(_, value)] = await self.session.get([(*column, 0)])
        if value is Missing.NO_SUCH_OBJECT:
            raise DriverError(f"{what}: {'.'.join(map(str, column))} answered noSuchObject: "
                              "the agent does not support this table (not 'no entries')")

    def cached(self, spec: IndexSpec, mac: Mac) -> Oid | None:
        """The row a ``walk`` lookup found for ``mac`` last time (to be re-checked)."""
        if spec.by != "walk" or spec.mac_column is None:
            return None
        return self._walked.get(spec.mac_column, {}).get(mac)

    async def relearn(self, spec: IndexSpec, mac: Mac, transcript: list[str]) -> Oid | None:
        """Walk the MAC column again (a cached row no longer holds ``mac``)."""
        assert spec.mac_column is not None
        table = await self.learn(spec.mac_column)
        transcript.append(f"WALK {spec.mac_column} -> {len(table)} rows")
        return table.get(mac)

    async def row(self, spec: IndexSpec, mac: Mac, transcript: list[str]) -> Oid | None:
        if spec.by == "mac":
            return mac.oid_index
        if spec.by == "pointer":
            assert spec.pointer is not None
            oid = parse_oid(spec.pointer) + mac.oid_index
            [(_, value)] = await self.session.get([oid])
            transcript.append(f"GET {spec.pointer}.{mac.oid_suffix} -> {show_value(value)}")
            if isinstance(value, int):
                return (value,)
            if value is Missing.NO_SUCH_INSTANCE:
                return None
            raise DriverError(f"GET {spec.pointer}.{mac.oid_suffix} answered "
                              f"{show_value(value)}: the agent does not support this table, "
                              "which does not say the modem is absent")
        cached = self.cached(spec, mac)
        if cached is not None:
            assert spec.mac_column is not None
            [(_, value)] = await self.session.get([parse_oid(spec.mac_column) + cached])
            if value == mac.packed:
                return cached
        return await self.relearn(spec, mac, transcript)

    async def learn(self, mac_column: str) -> dict[Mac, Oid]:
        """Walk a MAC column: the whole MAC -> row map (refreshes the cache)."""
        col = parse_oid(mac_column)
        table: dict[Mac, Oid] = {}
        for row, value in (await self.walk([col]))[col]:
            mac = _as_mac(value)
            if mac is not None:
                table[mac] = row
        self._walked[mac_column] = table
        return table


async def read_sources(resolver: RowResolver, sources: Sequence[Source], mac: Mac,
                       transcript: list[str]) -> dict[str, tuple[Reading, SnmpValue | None]]:
    """Every source's reading for one MAC, with one GET for all located rows (and the
    re-check of cached ``walk`` rows in that same GET)."""
    rows: dict[IndexSpec, Oid | None] = {}
    checks: dict[IndexSpec, Oid] = {}  # cached walk rows: MAC column OID to re-check
    for s in sources:
        if s.index in rows:
            continue
        cached = resolver.cached(s.index, mac)
        if cached is not None:
            assert s.index.mac_column is not None
            rows[s.index] = cached
            checks[s.index] = parse_oid(s.index.mac_column) + cached
        else:
            rows[s.index] = await resolver.row(s.index, mac, transcript)
    values = await _get_located(resolver, sources, rows, list(checks.values()))
    moved = [spec for spec, oid in checks.items() if values.get(oid) != mac.packed]
    if moved:  # the modem re-registered under another row: learn again, read those
        for spec in moved:
            rows[spec] = await resolver.relearn(spec, mac, transcript)
        values.update(await _get_located(resolver, [s for s in sources if s.index in moved],
                                         rows, []))
    out: dict[str, tuple[Reading, SnmpValue | None]] = {}
    for s in sources:
        row = rows[s.index]
        if row is None:
            out[s.name] = ((Verdict.ABSENT, "noSuchInstance"), None)
            continue
        value = values[parse_oid(s.column) + row]
        out[s.name] = (reading(s, value), value)
        transcript.append(f"GET {s.name}.{'.'.join(map(str, row))} -> {out[s.name][0][1]}")
    return out


async def _get_located(resolver: RowResolver, sources: Sequence[Source],
                       rows: dict[IndexSpec, Oid | None], extra: list[Oid]
                       ) -> dict[Oid, SnmpValue]:
    oids = [parse_oid(s.column) + row for s in sources
            if (row := rows[s.index]) is not None] + extra
    return dict(await resolver.session.get(list(dict.fromkeys(oids)))) if oids else {}


async def lookup_value(resolver: RowResolver, lookup: Lookup, mac: Mac,
                       transcript: list[str]) -> SnmpValue:
    row = await resolver.row(lookup.index, mac, transcript)
    if row is None:
        return Missing.NO_SUCH_INSTANCE
    [(_, value)] = await resolver.session.get([parse_oid(lookup.column) + row])
    return value


async def sweep_sources(resolver: RowResolver, sources: Sequence[Source],
                        ) -> dict[Mac, dict[str, Reading]]:
    """Walk each source's state column (and MAC column) for every listed MAC."""
    out: dict[Mac, dict[str, Reading]] = {}
    # Every MAC column and state column in one walk (one request stream on the fast path).
    mac_cols = sorted({s.index.mac_column for s in sources
                       if s.index.by != "mac" and s.index.mac_column})
    columns = [parse_oid(c) for c in mac_cols] + [parse_oid(s.column) for s in sources]
    walked = await resolver.walk(list(dict.fromkeys(columns)))
    for column, rows in walked.items():
        if not rows:
            await resolver.require_column(column, "sweep")
    macs_by_column: dict[str, dict[Oid, Mac]] = {}
    for c in mac_cols:
        macs_by_column[c] = {row: m for row, v in walked[parse_oid(c)]
                             if (m := _as_mac(v)) is not None}
    for s in sources:
        row_macs = macs_by_column.get(s.index.mac_column or "", {})
        for row, value in walked[parse_oid(s.column)]:
            mac = _as_mac(bytes(row)) if s.index.by == "mac" and len(row) == 6 \
                else row_macs.get(row) if s.index.by != "mac" else None
            if mac is not None:
                out.setdefault(mac, {})[s.name] = reading(s, value)
    return out


DECISIVE = frozenset((Verdict.BLOCKED, Verdict.FORWARDING))


async def sweep_wanted(resolver: RowResolver, sources: Sequence[Source],
                       wanted: Collection[Mac]) -> dict[Mac, dict[str, Reading]]:
    """``sweep_sources`` for the MACs in ``wanted`` only, reading no more than their
    verdicts need. The sources are walked one after another in the given (profile)
    order, each source's MAC and state columns in one walk; the next source is walked
    only while some wanted MAC has no decisive reading (blocked or forwarding) yet.
    ``combine`` takes the first decisive reading in that order, so the readings left
    unread could not change a verdict: each wanted MAC the device lists gets the same
    verdict and state as from ``sweep_sources``. Rows of other MACs are not decoded
    into MACs or readings. An empty walk is checked as in ``sweep_sources`` (an agent
    without the table fails, it does not read as "no modems")."""
    by_packed = {m.packed: m for m in wanted}
    out: dict[Mac, dict[str, Reading]] = {}
    undecided = set(by_packed)
    for s in sources:
        if not undecided:
            break
        if s.index.by != "mac" and not s.index.mac_column:
            continue  # sweep_sources cannot place this source's rows either
        state_col = parse_oid(s.column)
        mac_col = parse_oid(s.index.mac_column) if s.index.by != "mac" and \
            s.index.mac_column else None
        columns = [state_col] if mac_col is None or mac_col == state_col \
            else [mac_col, state_col]
        walked = await resolver.walk_rows(columns)
        for column in columns:
            if not walked[column]:
                await resolver.require_column(column, "sweep")
        if mac_col is None:  # MAC-indexed: the row index is the MAC
            def row_key(row: Oid) -> bytes | None:
                return bytes(row) if len(row) == 6 and max(row) < 256 else None
            rows = ((row_key(r[0]), r[-1]) for r in walked[state_col])
        else:
            row_mac = {r[0]: v for r in walked[mac_col]
                       if isinstance(v := r[-1], bytes) and v in by_packed}
            rows = ((row_mac.get(r[0]), r[-1]) for r in walked[state_col])
        for packed, value in rows:
            if packed is None:
                continue
            mac = by_packed.get(packed)
            if mac is None:
                continue
            out.setdefault(mac, {})[s.name] = reading(s, value)
        # decided by this source's reading as sweep_sources keeps it (the last row of
        # a MAC listed twice)
        undecided = {p for p in undecided
                     if (got := out.get(by_packed[p])) is None or s.name not in got
                     or got[s.name][0] not in DECISIVE}
    return out


def _as_mac(value: SnmpValue | bytes) -> Mac | None:
    if not isinstance(value, bytes) or len(value) != 6:
        return None
    try:
        return Mac(value, allow_group=True)
    except MacError:
        return None
