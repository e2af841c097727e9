"""One SNMP session per device on the lean BER client, with pysnmp as the writer where a
profile asks for it.

GETs, walks and (by default) SETs go through ``FastSnmpClient`` (a few microseconds per
varbind; pysnmp spends hundreds). A profile may name ``transports.snmp.writer: pysnmp``
for an agent that needs pysnmp's SET (the reference implementation the lean path is
tested against). Both speak SNMPv3 authPriv with the same credentials and raise the same
errors; SETs are timed in ``TransportMetrics`` as ``snmp.set`` either way."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from enforcer.transport.base import (
    Missing,
    NoMetrics,
    Oid,
    SetType,
    SetVarbind,
    SnmpSession,
    SnmpValue,
    TransportMetrics,
)
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.snmpwire.ber import Tag

_MISSING = {Tag.NO_SUCH_OBJECT: Missing.NO_SUCH_OBJECT,
            Tag.NO_SUCH_INSTANCE: Missing.NO_SUCH_INSTANCE,
            Tag.END_OF_MIB_VIEW: Missing.END_OF_MIB_VIEW}
SET_TAGS: dict[SetType, Tag] = {"integer": Tag.INTEGER, "unsigned32": Tag.GAUGE32,
                                "gauge32": Tag.GAUGE32, "octets": Tag.OCTET_STRING,
                                "ipaddress": Tag.IP_ADDRESS}


class HybridSession:
    """An ``SnmpSession`` on the lean client; SETs through ``writer`` when one is given."""

    def __init__(self, reader: FastSnmpClient, writer: SnmpSession | None = None, *,
                 metrics: TransportMetrics | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self._metrics = metrics or NoMetrics()

    async def get(self, oids: Sequence[Oid]) -> list[tuple[Oid, SnmpValue]]:
        rows = await self.reader.get([tuple(o) for o in oids])
        return [(tuple(oid), _MISSING.get(tag, value)) for oid, tag, value in rows]

    async def set(self, varbinds: Sequence[SetVarbind]) -> list[tuple[Oid, SnmpValue]]:
        if self.writer is not None:
            return await self.writer.set(varbinds)  # times itself
        start = time.monotonic()
        try:
            rows = await self.reader.set([(tuple(v.oid), SET_TAGS[v.type], v.value)
                                          for v in varbinds])
        finally:
            self._metrics.request(self.reader.target.device, "snmp.set",
                                  time.monotonic() - start)
        return [(tuple(oid), _MISSING.get(tag, value)) for oid, tag, value in rows]

    async def bulk_walk(self, oid: Oid) -> list[tuple[Oid, SnmpValue]]:
        col = tuple(oid)
        got = await self.reader.walk_columns([col])
        return [(col + tuple(index), value) for index, _tag, value in got.get(col, [])]

    async def walk_columns(self, columns: Sequence[Oid]) -> dict[Oid, list[Any]]:
        """Several columns in one request stream: (index, tag, value) rows by column."""
        got: dict[Oid, list[Any]] = await self.reader.walk_columns(
            [tuple(c) for c in columns])
        return got

    async def close(self) -> None:
        try:
            await self.reader.close()
        finally:
            if self.writer is not None:
                await self.writer.close()
