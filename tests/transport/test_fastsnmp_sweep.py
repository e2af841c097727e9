"""Footprint sweep over several in-process lab agents serving a DOCS-IF3 registration table."""

from __future__ import annotations

import socket
from typing import Any

from enforcer.engine.sweep import (
    DOCS_IF3_REG_ENTRY,
    DOCS_IF3_REG_STATUS,
    registration_states,
    sweep_footprint,
)
from enforcer.errors import DeviceUnreachable
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.snmpwire.ber import OID, Tag
from lab.snmp.agent import SnmpAgent, UsmUser
from lab.snmp.mibtree import Column, MibTree, Syntax, Table
from tests.transport.test_fastsnmp_support import AUTH, COMMUNITY, PRIV, USER, v2c, v3


def reg_tree(device: int, modems: int) -> tuple[MibTree, dict[bytes, int]]:
    rows: list[OID] = [(536870913 + i,) for i in range(modems)]
    macs = {ix: bytes((0x02, device, 0, 0, ix[0] >> 8 & 255, ix[0] & 255)) for ix in rows}
    states = {ix: 6 + ix[0] % 3 for ix in rows}
    tree = MibTree()
    tree.add(Table(DOCS_IF3_REG_ENTRY, [
        Column(2, Syntax.OCTET_STRING, lambda i: macs[i]),
        Column(5, Syntax.IP_ADDRESS, lambda i: b"\x0a\x00\x00\x01"),
        Column(6, Syntax.INTEGER, lambda i: states[i]),
    ], lambda: rows, index_len=1))
    return tree, {macs[ix]: states[ix] for ix in rows}


async def test_sweep_footprint_collects_states_and_errors() -> None:
    agents: list[SnmpAgent] = []
    truth: dict[str, dict[bytes, int]] = {}
    try:
        for d in range(4):
            tree, expect = reg_tree(d, 40 + d * 17)
            a = SnmpAgent(tree, communities={COMMUNITY: "ro"},
                          users=[UsmUser(USER, "SHA", AUTH, "AES", PRIV, "ro")],
                          engine_id=bytes.fromhex(f"80001f8880aa0000000{d}"))
            await a.start("127.0.0.1", 0)
            agents.append(a)
            truth[f"cmts-{d}"] = expect
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        clients = {f"cmts-{d}": FastSnmpClient(a.host, a.port, v3() if d % 2 else v2c(),
                                               device=f"cmts-{d}", max_repetitions=7)
                   for d, a in enumerate(agents)}
        clients["dead"] = FastSnmpClient("127.0.0.1", dead_port, v2c(), device="dead",
                                         timeout_s=0.2, retries=1)
        result = await sweep_footprint(clients, DOCS_IF3_REG_STATUS, concurrency=2)
        assert dict(result) == truth
        assert set(result.errors) == {"dead"}
        assert isinstance(result.errors["dead"], DeviceUnreachable)
        assert result.modems == sum(len(v) for v in truth.values())
        for c in clients.values():
            await c.close()
    finally:
        for a in agents:
            await a.stop()


def test_registration_states_joins_on_index_and_skips_partial_rows() -> None:
    mac, state = DOCS_IF3_REG_STATUS
    walk: dict[OID, list[tuple[OID, Tag, Any]]] = {
        mac: [((1,), Tag.OCTET_STRING, b"\x02\x00\x00\x00\x00\x01"),
              ((2,), Tag.OCTET_STRING, b"\x02\x00\x00\x00\x00\x02"),
              ((3,), Tag.OCTET_STRING, b"short"),
              ((5,), Tag.OCTET_STRING, b"\x02\x00\x00\x00\x00\x05")],
        state: [((1,), Tag.INTEGER, 6), ((3,), Tag.INTEGER, 6), ((4,), Tag.INTEGER, 8),
                ((5,), Tag.NO_SUCH_INSTANCE, None)],
    }
    assert registration_states(walk) == {b"\x02\x00\x00\x00\x00\x01": 6}
