"""A lean asyncio SNMP client: GET, multi-column GETBULK walks and SET.

Built on the snmpwire codec instead of pysnmp/pyasn1 (docs/docsis.md section 7: pysnmp
spends 100-500 us per varbind, net-snmp about 3 us). One connected UDP socket per client;
requests are matched by request-id (v2c) or msgID (v3) and anything else is ignored, so
late answers to a retransmitted request are harmless. SNMPv2c needs a credential that
allows it; SNMPv3 is authPriv (SHA family / AES family) with engine discovery and
time-window resync (RFC 3414 sections 3.2 and 4).

Errors (enforcer/errors.py): no answer within ``timeout_s`` x (``retries`` + 1) ->
DeviceUnreachable; a USM Report -> SnmpAuthError naming it; a non-zero error-status ->
SnmpError naming the OID and status (RFC 3416 section 3; SnmpStatusError with the status
name for a SET, which drivers match against a profile's ``full_errors`` / ``not_present``);
an undecodable answer -> SnmpError. A SET over v2c needs ``allow_v2c_writes``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from enforcer.errors import ConfigError, SnmpAuthError, SnmpError, SnmpStatusError
from enforcer.transport.fastsnmp_codec import (
    Row,
    bulk_pdu,
    column_prefix,
    decode_columns,
    get_pdu,
    set_pdu,
    varbinds_tlv,
)
from enforcer.transport.fastsnmp_net import Exchanger, RequestBudget
from enforcer.transport.fastsnmp_usm import (
    USM_REPORT_TEXT,
    EngineState,
    Response,
    UsmReport,
    V3User,
)
from enforcer.transport.params import SnmpAuth
from enforcer.transport.snmpwire.ber import OID, SnmpWireError, Tag, enc_oid
from enforcer.transport.snmpwire.message import PduType, decode_varbind_list
from enforcer.transport.snmpwire.status import ErrorStatus
from enforcer.transport.snmpwire.usm import UsmError

log = logging.getLogger(__name__)

__all__ = ["ERROR_STATUS", "FastSnmpClient", "RequestBudget", "Row"]

ERROR_STATUS: Final = tuple(s.name for s in ErrorStatus)  # RFC 3416 section 3
TOO_BIG: Final = 1


def _bulk(reps: int, starts: list[bytes], request_id: int) -> bytes:
    return bulk_pdu(request_id, reps, starts)


MAX_WALK_RANGES: Final = 16  # GETBULK streams in flight for one walk of one device


def _dotted(oid: OID) -> str:
    return ".".join(map(str, oid))


@dataclass(frozen=True, slots=True)
class _Target:
    host: str
    port: int
    device: str


class FastSnmpClient:
    """SNMP manager for one device. Use ``async with`` or call :meth:`close`."""

    def __init__(
        self,
        host: str,
        port: int,
        credentials: SnmpAuth,
        *,
        device: str = "",
        max_repetitions: int = 25,
        timeout_s: float = 5.0,
        retries: int = 3,
        budget: RequestBudget | None = None,
        source_address: str | None = None,
        walk_ranges: int = 1,
    ) -> None:
        if not 1 <= max_repetitions <= 1000:
            raise ConfigError("max_repetitions must be 1..1000")
        if not 1 <= walk_ranges <= MAX_WALK_RANGES:
            raise ConfigError(f"walk_ranges must be 1..{MAX_WALK_RANGES}")
        self.walk_ranges = walk_ranges
        # columns walked -> where the last walk of them splits into walk_ranges parts
        self._splits: dict[tuple[OID, ...], list[OID]] = {}
        self.target = _Target(host, port, device or f"{host}:{port}")
        self.max_repetitions = max_repetitions
        self._community: bytes | None = None
        self._user: V3User | None = None
        self._writes = credentials.version == "3" or credentials.allow_v2c_writes
        if credentials.version == "2c":
            if not credentials.allow_v2c or credentials.community is None:
                raise ConfigError("SNMP v2c is not allowed for this credential")
            self._community = credentials.community.reveal().encode()
        else:
            if credentials.user is None or credentials.auth_password is None or \
                    credentials.priv_password is None:
                raise ConfigError("SNMPv3 needs user, auth and priv passwords")
            self._user = V3User(
                credentials.user.encode(),
                credentials.auth_protocol,
                credentials.auth_password.reveal().encode(),
                credentials.priv_protocol,
                credentials.priv_password.reveal().encode(),
            )
        self._net = Exchanger(host, port, self.target.device, timeout_s=timeout_s,
                              retries=retries, budget=budget or RequestBudget(),
                              community=self._community, user=self._user,
                              source_address=source_address)

    @property
    def version(self) -> str:
        return "2c" if self._community is not None else "3"

    @property
    def stats(self) -> dict[str, int]:
        """Counters: requests, retransmissions, stray and malformed datagrams."""
        return dict(self._net.stats)

    async def __aenter__(self) -> FastSnmpClient:
        await self._net.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._net.close()

    # ------------------------------------------------------------------------------------------
    # requests
    # ------------------------------------------------------------------------------------------

    async def _request(self, pdu_of: Callable[[int], bytes]) -> Response:
        """One confirmed-class request, with USM resync (at most once per cause)."""
        dev = self.target.device
        resynced: set[UsmError] = set()
        previous: EngineState | None = None  # the engine before an unproven rediscovery
        try:
            while True:
                answer = await self._net.exchange(pdu_of)
                if not isinstance(answer, UsmReport):
                    if answer[0] != PduType.RESPONSE:
                        raise SnmpError("answer is not a Response-PDU", device=dev)
                    previous = None  # authenticated: the (new) engine is proven
                    return answer
                err = answer.error
                if err is UsmError.NOT_IN_TIME_WINDOW and err not in resynced \
                        and answer.authenticated:
                    # RFC 3414 section 4: the authenticated Report moved our clock
                    # forward (fastsnmp_usm); resend once.
                    resynced.add(err)
                    continue
                if err is UsmError.UNKNOWN_ENGINE_ID and err not in resynced:
                    # The engine changed (device replaced): rediscover. Such a Report is
                    # never authenticated, so the old engine comes back unless the new
                    # one answers an authenticated request.
                    resynced.add(err)
                    previous = self._net.forget_engine()
                    continue
                break
        finally:
            if previous is not None:
                self._net.restore_engine(previous)
        if err is None:
            raise SnmpError("agent answered with a Report", device=dev,
                            detail=_dotted(answer.oid))
        raise SnmpAuthError(f"SNMPv3 refused: {USM_REPORT_TEXT[err]}", device=dev)

    def _status_error(self, op: str, oids: Sequence[OID], status: int,
                      index: int) -> SnmpStatusError:
        """The error for a non-zero error-status: its RFC 3416 name and the OID the
        error-index points at (all of them when it points at none)."""
        name = ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else f"status {status}"
        oid = _dotted(oids[index - 1]) if 1 <= index <= len(oids) else \
            ",".join(_dotted(o) for o in oids)
        return SnmpStatusError(device=self.target.device, op=op, oid=oid, status=name)

    async def get(self, oids: Sequence[OID]) -> list[tuple[OID, Tag, Any]]:
        """GET (RFC 3416 section 4.2.1). Missing objects come back with the noSuchObject /
        noSuchInstance tag and value None."""
        wanted = [tuple(o) for o in oids]
        resp = await self._request(lambda rid: get_pdu(rid, wanted))
        if resp[2]:
            raise self._status_error("GET", wanted, resp[2], resp[3])
        return self._varbinds(resp, wanted)

    async def set(self, varbinds: Sequence[tuple[OID, int, Any]]) -> list[tuple[OID, Tag, Any]]:
        """SET (RFC 3416 section 4.2.5) of ``(oid, tag, value)`` varbinds, one PDU: the
        agent applies all of them or none. Returns the Response's varbinds."""
        if not self._writes:
            raise SnmpError("SET over SNMP v2c refused: the credential does not say "
                            "allow_v2c_writes", device=self.target.device)
        wanted = [tuple(o) for o, _t, _v in varbinds]
        try:  # encoded once, before anything is sent: a bad value is refused here
            vbl = varbinds_tlv([(tuple(o), int(t), v) for o, t, v in varbinds])
        except SnmpWireError as exc:
            raise SnmpError("cannot encode SET", device=self.target.device,
                            detail=str(exc)) from None
        resp = await self._request(lambda rid: set_pdu(rid, vbl))
        if resp[2]:
            raise self._status_error("snmp.set", wanted, resp[2], resp[3])
        return self._varbinds(resp, wanted)

    def _varbinds(self, resp: Response, wanted: list[OID]) -> list[tuple[OID, Tag, Any]]:
        """The answer's varbinds, which must name exactly the requested OIDs."""
        _t, _rid, _status, _index, buf, start, stop = resp
        try:
            vbs = decode_varbind_list(buf, start, stop)
        except SnmpWireError as exc:
            raise SnmpError("undecodable response", device=self.target.device,
                            detail=str(exc)) from None
        if [v[0] for v in vbs] != wanted:
            raise SnmpError("response varbinds do not match the request",
                            device=self.target.device)
        return vbs

    async def walk_columns(
        self, columns: Sequence[OID], *, max_repetitions: int | None = None,
        splits: Sequence[OID] | None = None,
    ) -> dict[OID, list[Row]]:
        """Walk table columns together with GETBULK (RFC 3416 section 4.2.3).

        Each request asks for every column not yet finished, starting after the last OID
        seen in it; a column ends at the first OID outside it or at endOfMibView. A tooBig
        answer halves max-repetitions (down to 1). Returns ``{column: [(index, tag,
        value), ...]}`` in OID order.

        ``splits`` (row indexes, increasing) cut the index space into ranges
        ``(-, s1], (s1, s2], ..., (sN, -)``, each walked by its own GETBULK stream, all in
        flight together: the device answers one range while this side decodes another,
        with about as many messages as one stream. The ranges cover every index, so the
        result is the same whatever the splits. Without ``splits``, a client made with
        ``walk_ranges`` > 1 splits where its previous walk of the same columns did
        (:func:`split_points`): the first walk is one stream, later ones
        ``walk_ranges``.
        """
        cols = [tuple(c) for c in columns]
        if len(set(cols)) != len(cols):
            raise ConfigError("duplicate column in walk")
        learn = splits is None and self.walk_ranges > 1
        if splits is None:
            splits = self._splits.get(tuple(cols), [])
        bounds = [tuple(x) for x in splits]
        if any(not b for b in bounds) or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ConfigError("walk splits must be non-empty and increasing")
        try:
            prefixes = [column_prefix(c) for c in cols]
            for b in bounds:
                enc_oid((1, 3, *b))
        except SnmpWireError as exc:
            raise ConfigError(f"bad column OID or walk split: {exc}") from None
        reps = max_repetitions or self.max_repetitions
        if not bounds:
            result = await self._walk_range(cols, prefixes, reps, (), None)
        else:
            lows: list[OID] = [(), *bounds]
            highs: list[OID | None] = [*bounds, None]
            parts = await asyncio.gather(*(self._walk_range(cols, prefixes, reps, lo, hi)
                                           for lo, hi in zip(lows, highs, strict=True)))
            result = {c: [row for part in parts for row in part[c]] for c in cols}
        if learn and result:
            longest = max(result.values(), key=len)
            self._splits[tuple(cols)] = split_points([r[0] for r in longest],
                                                     self.walk_ranges)
        return result

    async def _walk_range(self, cols: list[OID], prefixes: list[bytes], reps: int,
                          after: OID, upto: OID | None) -> dict[OID, list[Row]]:
        """Walk ``cols`` over the row indexes in ``(after, upto]`` (``()``: from the
        first row; ``None``: to the column's end)."""
        result: dict[OID, list[Row]] = {c: [] for c in cols}
        # parallel lists over the columns still being walked
        act = list(range(len(cols)))
        a_pref = list(prefixes)
        a_sink = [result[c] for c in cols]
        a_last = [enc_oid((*c, *after)) for c in cols]
        a_idx: list[OID] = [after for _ in cols]
        while act:
            ended = [False] * len(act)
            resp = await self._request(functools.partial(_bulk, reps, list(a_last)))
            _t, _rid, status, index, buf, vstart, vstop = resp
            if status == TOO_BIG and reps > 1:
                reps = max(1, reps // 2)
                continue
            if status:
                raise self._status_error("GETBULK", [cols[c] for c in act], status, index)
            try:
                n = decode_columns(buf, vstart, vstop, a_pref, a_sink, a_last, a_idx, ended)
            except SnmpWireError as exc:
                raise SnmpError("undecodable GETBULK response", device=self.target.device,
                                detail=str(exc)) from None
            if n == 0:
                raise SnmpError("empty GETBULK response", device=self.target.device)
            if upto is not None:
                for i, sink in enumerate(a_sink):
                    if a_idx[i] > upto:  # past this range: the next one holds the rest
                        while sink and sink[-1][0] > upto:
                            sink.pop()
                        ended[i] = True
            if any(ended):
                keep = [i for i, e in enumerate(ended) if not e]
                act = [act[i] for i in keep]
                a_pref = [a_pref[i] for i in keep]
                a_sink = [a_sink[i] for i in keep]
                a_last = [a_last[i] for i in keep]
                a_idx = [a_idx[i] for i in keep]
        return result


def split_points(indexes: Sequence[OID], ranges: int) -> list[OID]:
    """``ranges - 1`` row indexes that cut ``indexes`` (sorted, as a walk returns them)
    into ``ranges`` parts of about equal size: the ``splits`` of the next walk of the same
    table. Fewer when there are fewer rows than ranges."""
    if ranges < 1:
        raise ConfigError("ranges must be at least 1")
    n = len(indexes)
    points = [indexes[n * k // ranges - 1] for k in range(1, ranges) if n * k // ranges > 0]
    return sorted(set(points))
