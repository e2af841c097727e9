"""Helpers shared by the FastSnmpClient tests (no tests here): an in-process lab agent with
a table of every SNMP syntax, and parsers of net-snmp / pysnmp output into (oid, Tag, value).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any, cast

from enforcer.transport.params import AuthProtocol, PrivProtocol, Secret, SnmpAuth
from enforcer.transport.snmpwire.ber import OID, Tag
from lab.snmp.agent import AgentFaults, SnmpAgent, UsmUser
from lab.snmp.mibtree import Column, MibTree, Scalar, Syntax, Table

ENT: OID = (1, 3, 6, 1, 4, 1, 99999)
ENTRY: OID = (*ENT, 10, 1)  # index: one sub-identifier, small and large values
MAC_ENTRY: OID = (*ENT, 20, 1)  # index: a 6-octet MAC (sub-identifiers above 127)
ENGINE_ID = bytes.fromhex("80001f8880fa57c11e0001")
COMMUNITY = "fast-public"
USER, AUTH, PRIV = "poller", "auth-secret-1", "priv-secret-1"
SYS_DESCR: OID = (1, 3, 6, 1, 2, 1, 1, 1, 0)

INDEXES: list[OID] = sorted([(i,) for i in (1, 2, 127, 128, 300, 16384, 536870913)]
                            + [(1000 + i,) for i in range(30)])
MAC_INDEXES: list[OID] = sorted(tuple(bytes((0x02, 0xA0, i, 0xFF, 0x80, i * 7 % 256)))
                                for i in range(12))


def _row_no(ix: OID) -> int:
    return INDEXES.index(ix)


COLUMNS: dict[int, tuple[Syntax, Any]] = {
    2: (Syntax.OCTET_STRING, lambda i: bytes((0x02, 0, 0, i[0] >> 16 & 255, i[0] >> 8 & 255,
                                              i[0] & 255))),
    3: (Syntax.INTEGER, lambda i: (-1) ** i[0] * (i[0] % 70000)),
    4: (Syntax.IP_ADDRESS, lambda i: bytes((10, 1, i[0] >> 8 & 255, i[0] & 255))),
    5: (Syntax.COUNTER32, lambda i: (i[0] * 2654435761) % 2**32),
    6: (Syntax.UNSIGNED32, lambda i: i[0] * 3),
    7: (Syntax.TIMETICKS, lambda i: (i[0] * 100 + 7) % 2**32),
    8: (Syntax.COUNTER64, lambda i: 2**64 - 1 - i[0]),
    9: (Syntax.OBJECT_IDENTIFIER, lambda i: (1, 3, 6, 1, 4, 1, 4491, i[0])),
    10: (Syntax.OCTET_STRING, lambda i: b"" if i[0] % 2 else b"cm-%d" % i[0]),
}
COLUMN_OIDS: list[OID] = [(*ENTRY, c) for c in COLUMNS]
MAC_COLUMN_OIDS: list[OID] = [(*MAC_ENTRY, 2), (*MAC_ENTRY, 3)]


def build_tree() -> MibTree:
    tree = MibTree()
    tree.add(Scalar((1, 3, 6, 1, 2, 1, 1, 1), Syntax.OCTET_STRING, lambda: b"fast lab"))
    tree.add(Scalar((1, 3, 6, 1, 2, 1, 1, 3), Syntax.TIMETICKS, lambda: 4242))
    tree.add(Table(ENTRY, [Column(c, s, f) for c, (s, f) in COLUMNS.items()],
                   lambda: INDEXES, index_len=1))
    tree.add(Table(MAC_ENTRY, [
        Column(2, Syntax.INTEGER, lambda i: i[5]),
        Column(3, Syntax.OCTET_STRING, lambda i: bytes(i)),
    ], lambda: MAC_INDEXES, index_len=6))
    return tree


def expected_walk(columns: list[OID]) -> dict[OID, list[tuple[OID, Tag, Any]]]:
    tree = build_tree()
    out: dict[OID, list[tuple[OID, Tag, Any]]] = {}
    for col in columns:
        rows = []
        oid = col
        while True:
            nxt = tree.next(oid)
            if nxt is None or nxt[0][: len(col)] != col:
                break
            oid, syntax, value = nxt
            rows.append((oid[len(col):], syntax.tag, value))
        out[col] = rows
    return out


async def start_agent(host: str = "127.0.0.1", faults: AgentFaults | None = None,
                      users: list[UsmUser] | None = None) -> SnmpAgent:
    agent = SnmpAgent(build_tree(), communities={COMMUNITY: "ro"},
                      users=users if users is not None else [UsmUser(USER, "SHA", AUTH, "AES",
                                                                     PRIV, "ro")],
                      engine_id=ENGINE_ID, faults=faults, name="fast-test")
    await agent.start(host, 0)
    return agent


def v2c() -> SnmpAuth:
    return SnmpAuth(version="2c", community=Secret(COMMUNITY), allow_v2c=True)


def v3(user: str = USER, auth: str = AUTH, priv: str = PRIV, auth_proto: str = "SHA",
       priv_proto: str = "AES") -> SnmpAuth:
    return SnmpAuth(version="3", user=user, auth_protocol=cast(AuthProtocol, auth_proto),
                    priv_protocol=cast(PrivProtocol, priv_proto), auth_password=Secret(auth),
                    priv_password=Secret(priv))


def netsnmp_env(home: Path) -> dict[str, str]:
    return {**os.environ, "MIBS": "", "SNMPCONFPATH": str(home),
            "SNMP_PERSISTENT_DIR": str(home), "HOME": str(home)}


def netsnmp_auth(creds: SnmpAuth) -> list[str]:
    if creds.version == "2c":
        assert creds.community is not None
        return ["-v2c", "-c", creds.community.reveal()]
    assert creds.user and creds.auth_password and creds.priv_password
    return ["-v3", "-l", "authPriv", "-u", creds.user, "-a", creds.auth_protocol, "-A",
            creds.auth_password.reveal(), "-x", creds.priv_protocol, "-X",
            creds.priv_password.reveal()]


async def netsnmp(tool: str, args: list[str], env: dict[str, str]) -> list[tuple[OID, Tag, Any]]:
    """Run snmpget / snmpbulkwalk with -On -Ox and parse its lines."""
    proc = await asyncio.create_subprocess_exec(
        tool, "-On", "-Ox", "-t", "2", "-r", "1", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return [parse_netsnmp_line(line) for line in out.decode().splitlines()
            if " = " in line and "No more variables" not in line]


_TYPES = {"INTEGER": Tag.INTEGER, "Counter32": Tag.COUNTER32, "Gauge32": Tag.GAUGE32,
          "Counter64": Tag.COUNTER64}


def parse_netsnmp_line(line: str) -> tuple[OID, Tag, Any]:
    name, _, rhs = line.partition(" = ")
    oid = tuple(int(x) for x in name.strip(".").split("."))
    if rhs == '""':
        return oid, Tag.OCTET_STRING, b""
    if rhs.startswith("No Such Object"):
        return oid, Tag.NO_SUCH_OBJECT, None
    if rhs.startswith("No Such Instance"):
        return oid, Tag.NO_SUCH_INSTANCE, None
    kind, _, text = rhs.partition(": ")
    if kind in _TYPES:
        return oid, _TYPES[kind], int(text)
    if kind == "Hex-STRING":
        return oid, Tag.OCTET_STRING, bytes.fromhex(text.replace(" ", ""))
    if kind == "STRING":
        return oid, Tag.OCTET_STRING, text.strip('"').encode()
    if kind == "IpAddress":
        return oid, Tag.IP_ADDRESS, bytes(int(x) for x in text.split("."))
    if kind == "Timeticks":
        m = re.match(r"\((\d+)\)", text)
        assert m, line
        return oid, Tag.TIMETICKS, int(m.group(1))
    if kind == "OID":
        return oid, Tag.OBJECT_IDENTIFIER, tuple(int(x) for x in text.strip(".").split("."))
    raise AssertionError(f"unparsed net-snmp line {line!r}")


_PYSNMP_TAGS = {"Integer": Tag.INTEGER, "Integer32": Tag.INTEGER, "OctetString": Tag.OCTET_STRING,
                "IpAddress": Tag.IP_ADDRESS, "Counter32": Tag.COUNTER32,
                "Gauge32": Tag.GAUGE32, "Unsigned32": Tag.GAUGE32, "TimeTicks": Tag.TIMETICKS,
                "Counter64": Tag.COUNTER64, "ObjectIdentifier": Tag.OBJECT_IDENTIFIER,
                "ObjectName": Tag.OBJECT_IDENTIFIER}


def from_pysnmp(name: Any, value: Any) -> tuple[OID, Tag, Any]:
    tag = _PYSNMP_TAGS[type(value).__name__]
    if tag in (Tag.OCTET_STRING, Tag.IP_ADDRESS):
        v: Any = bytes(value.asOctets())
    elif tag is Tag.OBJECT_IDENTIFIER:
        v = tuple(value)
    else:
        v = int(value)
    return tuple(name), tag, v


def flatten(walk: dict[OID, list[tuple[OID, Tag, Any]]]) -> list[tuple[OID, Tag, Any]]:
    return sorted((col + ix, tag, v) for col, rows in walk.items() for ix, tag, v in rows)
