"""One SNMP session per device that reads on the fast path and writes with pysnmp.

GETs and walks go through the lean BER client (``FastSnmpClient``: a few microseconds
per varbind); SETs, which change a device and are few, go through pysnmp. Both speak
SNMPv3 authPriv with the same credentials and raise the same errors."""

from __future__ import annotations

from collections.abc import Sequence

from enforcer.transport.base import Missing, Oid, SetVarbind, SnmpSession, SnmpValue
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.snmpwire.ber import Tag

_MISSING = {Tag.NO_SUCH_OBJECT: Missing.NO_SUCH_OBJECT,
            Tag.NO_SUCH_INSTANCE: Missing.NO_SUCH_INSTANCE,
            Tag.END_OF_MIB_VIEW: Missing.END_OF_MIB_VIEW}


class HybridSession:
    """An ``SnmpSession``: reads fast, writes with pysnmp."""

    def __init__(self, writer: SnmpSession, reader: FastSnmpClient) -> None:
        self.writer = writer
        self.reader = reader

    async def get(self, oids: Sequence[Oid]) -> list[tuple[Oid, SnmpValue]]:
        rows = await self.reader.get([tuple(o) for o in oids])
        return [(tuple(oid), _MISSING.get(tag, value)) for oid, tag, value in rows]

    async def set(self, varbinds: Sequence[SetVarbind]) -> list[tuple[Oid, SnmpValue]]:
        return await self.writer.set(varbinds)

    async def bulk_walk(self, oid: Oid) -> list[tuple[Oid, SnmpValue]]:
        col = tuple(oid)
        got = await self.reader.walk_columns([col])
        return [(col + tuple(index), value) for index, _tag, value in got.get(col, [])]

    async def close(self) -> None:
        try:
            await self.reader.close()
        finally:
            await self.writer.close()
