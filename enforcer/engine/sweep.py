"""Footprint sweep: every CMTS's registration table, many devices at once, one process.

Operators poll all modems in a 15-minute cycle (docs/docsis.md section 6); the watcher
sweeps for banned MACs with this instead. Each device is walked with one multi-column
GETBULK stream (:meth:`FastSnmpClient.walk_columns`); ``concurrency`` bounds how many devices
are walked at the same time. A device that fails does not fail the sweep: its error is kept
in :attr:`SweepResult.errors` and it is absent from the mapping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from enforcer.errors import TransportError
from enforcer.mib import oid
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.snmpwire.ber import OID, Tag


class RegColumns(NamedTuple):
    """The two columns of a registration table: CM MAC (6 octets) and its state, joined
    on the row index."""

    mac: OID
    state: OID


DOCS_IF3_REG_ENTRY: OID = oid("docsIf3CmtsCmRegStatusEntry")
#: index: reg id
DOCS_IF3_REG_STATUS = RegColumns(oid("docsIf3CmtsCmRegStatusMacAddr"),
                                 oid("docsIf3CmtsCmRegStatusValue"))
#: index: status index
DOCS_IF_CM_STATUS = RegColumns(oid("docsIfCmtsCmStatusMacAddress"), oid("docsIfCmtsCmStatusValue"))

MacStates = dict[bytes, int]


class SweepResult(dict[str, MacStates]):
    """``{device: {mac: state}}`` for the devices that answered, plus the failures."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, TransportError] = {}
        self.elapsed_s = 0.0

    @property
    def modems(self) -> int:
        return sum(len(v) for v in self.values())


def registration_states(
    walk: Mapping[OID, list[tuple[OID, Tag, Any]]], columns: RegColumns = DOCS_IF3_REG_STATUS
) -> MacStates:
    """Join a walk of the MAC and state columns on the row index into ``{mac: state}``.

    Rows missing either column, with a MAC that is not 6 octets or a state that is not an
    INTEGER are skipped (a row may appear or vanish between two GETBULK requests).
    """
    macs = {ix: v for ix, tag, v in walk.get(columns.mac, ()) if tag is Tag.OCTET_STRING
            and len(v) == 6}
    out: MacStates = {}
    for ix, tag, v in walk.get(columns.state, ()):
        mac = macs.get(ix)
        if mac is not None and tag is Tag.INTEGER:
            out[bytes(mac)] = v
    return out


async def sweep_device(
    client: FastSnmpClient, columns: RegColumns = DOCS_IF3_REG_STATUS
) -> MacStates:
    """Walk one device's registration table into ``{mac: state}``."""
    walk = await client.walk_columns([columns.mac, columns.state])
    return registration_states(walk, columns)


async def sweep_footprint(
    clients: Mapping[str, FastSnmpClient],
    columns: RegColumns = DOCS_IF3_REG_STATUS,
    *,
    concurrency: int = 32,
) -> SweepResult:
    """Sweep every device in ``clients`` with at most ``concurrency`` walks in flight.

    Transport errors are collected per device; anything else (a bug) propagates.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    result = SweepResult()
    gate = asyncio.Semaphore(concurrency)
    t0 = time.monotonic()

    async def one(name: str, client: FastSnmpClient) -> None:
        async with gate:
            try:
                result[name] = await sweep_device(client, columns)
            except TransportError as exc:
                result.errors[name] = exc

    await asyncio.gather(*(one(n, c) for n, c in clients.items()))
    result.elapsed_s = time.monotonic() - t0
    return result
