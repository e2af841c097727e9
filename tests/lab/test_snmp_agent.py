"""The lab SNMP agent and MibTree, exercised with real clients (net-snmp tools and pysnmp 7)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    Integer,
    ObjectIdentity,
    ObjectType,
    OctetString,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    get_cmd,
    set_cmd,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)

from enforcer.transport.snmpwire.ber import Tag, decode_value
from enforcer.transport.snmpwire.message import (
    CommunityMessage,
    PduType,
    decode_message,
    decode_varbind_list,
    encode_community,
    encode_pdu,
    encode_varbind_list,
)
from lab.snmp.agent import AgentFaults, SnmpAgent, UsmUser
from lab.snmp.mibtree import (
    Column,
    ErrorStatus,
    MibTree,
    NoSuchInstance,
    NoSuchObject,
    Scalar,
    Syntax,
    Table,
    encode_value,
)

# Same layout as the model in tests/lab/conftest.py (fixtures there are snmp_agent_*).
ENT = (1, 3, 6, 1, 4, 1, 99999)
ROWS_ENTRY = (*ENT, 10, 1)
PAIRS_ENTRY = (*ENT, 20, 1)
ENGINE_ID = bytes.fromhex("80001f8880aabbccdd01")
SnmpAgentLoop = Any
SnmpAgentModel = Any

pytestmark = pytest.mark.skipif(shutil.which("snmpget") is None, reason="net-snmp not installed")

Running = tuple[SnmpAgent, SnmpAgentModel]


def dotted(oid: tuple[int, ...]) -> str:
    return "." + ".".join(map(str, oid))


# ---------------------------------------------------------------------------------------------
# net-snmp helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def netsnmp_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("netsnmp")
    return {
        **os.environ,
        "MIBS": "",
        "SNMPCONFPATH": str(home),
        "SNMP_PERSISTENT_DIR": str(home),
        "HOME": str(home),
    }


V3_ADMIN = [
    "-v3",
    "-l",
    "authPriv",
    "-u",
    "admin",
    "-a",
    "SHA",
    "-A",
    "authpass123",
    "-x",
    "AES",
    "-X",
    "privpass123",
]
V3_READER = [
    "-v3",
    "-l",
    "authPriv",
    "-u",
    "reader",
    "-a",
    "SHA",
    "-A",
    "readpass123",
    "-x",
    "AES",
    "-X",
    "readpriv123",
]
V2_RO = ["-v2c", "-c", "public"]
V2_RW = ["-v2c", "-c", "private"]


class NetSnmp:
    def __init__(self, env: dict[str, str], agent: SnmpAgent) -> None:
        self.env = env
        self.target = f"{agent.host}:{agent.port}"
        if ":" in agent.host:
            self.target = f"udp6:[{agent.host}]:{agent.port}"

    def __call__(
        self, tool: str, auth: list[str], *args: str, timeout: str = "2", retries: str = "1"
    ) -> subprocess.CompletedProcess[str]:
        cmd = [tool, *auth, "-On", "-t", timeout, "-r", retries, self.target, *args]
        return subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )


@pytest.fixture
def nsnmp(netsnmp_env: dict[str, str], snmp_agent_running: Running) -> NetSnmp:
    return NetSnmp(netsnmp_env, snmp_agent_running[0])


def walk_oids(stdout: str) -> list[str]:
    return [line.split(" = ", 1)[0] for line in stdout.splitlines() if " = " in line]


# ---------------------------------------------------------------------------------------------
# MibTree (no network)
# ---------------------------------------------------------------------------------------------


def _probes(model: SnmpAgentModel) -> Iterator[tuple[int, ...]]:
    yield (1, 3)
    yield (0, 0)
    yield (2, 0)
    yield (1, 3, 6, 1, 2, 1, 1, 2)
    yield ENT
    yield (*ENT, 10)
    yield (*ENT, 10, 1, 7)
    yield (*ENT, 10, 1, 5, 2)
    yield (*ENT, 10, 1, 9, 50, 0)
    yield (*ENT, 20, 1, 1, 1)
    yield (*ENT, 20, 1, 1, 2, 4)
    yield (*ENT, 20, 1, 2)
    yield (*ENT, 99)
    for oid, _v in model.instances():
        yield oid
        yield oid[:-1]
        yield (*oid, 0)
        yield (*oid[:-1], oid[-1] + 1)
        if oid[-1] > 0:
            yield (*oid[:-1], oid[-1] - 1, 2**32 - 1)


def test_mibtree_next_matches_bruteforce_order(snmp_agent_model: SnmpAgentModel) -> None:
    instances = snmp_agent_model.instances()
    assert [o for o, _ in instances] == sorted(o for o, _ in instances)
    tree = snmp_agent_model.tree
    for probe in _probes(snmp_agent_model):
        expected = next(((o, v) for o, v in instances if o > probe), None)
        got = tree.next(probe)
        if expected is None:
            assert got is None, probe
        else:
            assert got is not None, probe
            assert (got[0], got[2]) == expected, probe


def test_mibtree_walk_encoded_matches_next(snmp_agent_model: SnmpAgentModel) -> None:
    tree = snmp_agent_model.tree
    out: list[bytes] = []
    count, last = tree.walk_encoded((1, 3), 10_000, out)
    assert count == len(snmp_agent_model.instances()) == len(out)
    assert last == snmp_agent_model.instances()[-1][0]
    for probe in list(_probes(snmp_agent_model))[:200]:
        chunk: list[bytes] = []
        n, _last = tree.walk_encoded(probe, 3, chunk)
        expected = [o for o, _ in snmp_agent_model.instances() if o > probe][:3]
        assert n == len(expected)
        names = [decode_varbind_list(c, 0, len(c))[0][0] for c in chunk]
        assert names == expected


def test_mibtree_get_kinds(snmp_agent_model: SnmpAgentModel) -> None:
    tree = snmp_agent_model.tree
    assert tree.get((1, 3, 6, 1, 2, 1, 1, 1, 0)) == (Syntax.OCTET_STRING, b"lab CMTS")
    assert tree.get((1, 3, 6, 1, 2, 1, 1, 1)) == (NoSuchInstance, None)
    assert tree.get((1, 3, 6, 1, 2, 1, 1, 1, 1)) == (NoSuchInstance, None)
    assert tree.get((1, 3, 6, 1, 2, 1, 1, 2, 0)) == (NoSuchObject, None)
    assert tree.get((*ROWS_ENTRY, 2, 7)) == (Syntax.OCTET_STRING, bytes.fromhex("001122334407"))
    assert tree.get((*ROWS_ENTRY, 2, 700)) == (NoSuchInstance, None)
    assert tree.get((*ROWS_ENTRY, 5, 2)) == (NoSuchInstance, None)  # column value None
    assert tree.get((*ROWS_ENTRY, 6, 1)) == (NoSuchObject, None)
    assert tree.get((*PAIRS_ENTRY, 1, 1)) == (NoSuchInstance, None)  # partial index
    assert tree.get((*PAIRS_ENTRY, 1, 2, 5)) == (Syntax.INTEGER, 25)


@pytest.mark.parametrize(
    ("syntax", "value", "wire"),
    [
        (Syntax.COUNTER32, 2**32 + 5, 5),  # counters wrap
        (Syntax.TIMETICKS, 2**32, 0),
        (Syntax.COUNTER64, 2**64 + 1, 1),
        (Syntax.GAUGE32, 2**40, 2**32 - 1),  # gauges latch
        (Syntax.UNSIGNED32, -3, 0),
        (Syntax.UNSIGNED32, 2**31, 2**31),
        (Syntax.INTEGER, -(2**31), -(2**31)),
        (Syntax.OCTET_STRING, "text", b"text"),
        (Syntax.IP_ADDRESS, b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01"),
        (Syntax.OBJECT_IDENTIFIER, [1, 3, 6], (1, 3, 6)),
    ],
)
def test_mibtree_value_encoding(syntax: Syntax, value: Any, wire: Any) -> None:
    tag, decoded = decode_value(encode_value(syntax, value))
    assert tag == syntax.tag and decoded == wire


def test_mibtree_overlap_rejected() -> None:
    tree = MibTree()
    tree.add(Table((1, 3, 6, 1, 9, 1), [Column(1, Syntax.INTEGER, lambda i: 1)], lambda: []))
    with pytest.raises(ValueError):
        tree.add(Scalar((1, 3, 6, 1, 9, 1, 5), Syntax.INTEGER, lambda: 1))
    with pytest.raises(ValueError):
        tree.add(Scalar((1, 3, 6, 1, 9), Syntax.INTEGER, lambda: 1))


def test_mibtree_set_semantics(snmp_agent_model: SnmpAgentModel) -> None:
    m = snmp_agent_model
    tree = m.tree
    ok = tree.set(
        [
            ((*ROWS_ENTRY, 3, 1), Tag.INTEGER, 2),
            ((*ROWS_ENTRY, 2, 1), Tag.OCTET_STRING, b"\xaa" * 6),
        ]
    )
    assert ok == (ErrorStatus.noError, 0)
    assert m.status[(1,)] == 2 and m.macs[(1,)] == b"\xaa" * 6
    cases: list[tuple[list[tuple[tuple[int, ...], Tag, Any]], tuple[ErrorStatus, int]]] = [
        ([((*ROWS_ENTRY, 3, 2), Tag.OCTET_STRING, b"x")], (ErrorStatus.wrongType, 1)),
        (
            [((*ROWS_ENTRY, 3, 2), Tag.INTEGER, 3), ((*ROWS_ENTRY, 2, 2), Tag.OCTET_STRING, b"12")],
            (ErrorStatus.wrongLength, 2),
        ),
        ([((*ROWS_ENTRY, 3, 2), Tag.INTEGER, 9)], (ErrorStatus.wrongValue, 1)),
        ([((*ROWS_ENTRY, 3, 2), Tag.INTEGER, 2**31)], (ErrorStatus.wrongValue, 1)),
        ([((*ROWS_ENTRY, 4, 2), Tag.GAUGE32, 1)], (ErrorStatus.notWritable, 1)),
        ([((1, 3, 6, 1, 2, 1, 1, 1, 0), Tag.OCTET_STRING, b"x")], (ErrorStatus.notWritable, 1)),
        ([((1, 3, 6, 1, 77, 0), Tag.INTEGER, 1)], (ErrorStatus.notWritable, 1)),
        ([((1, 3, 6, 1, 2, 1, 1, 5, 1), Tag.OCTET_STRING, b"x")], (ErrorStatus.noCreation, 1)),
        (
            [((1, 3, 6, 1, 2, 1, 1, 5, 0), Tag.OCTET_STRING, b"forbidden")],
            (ErrorStatus.inconsistentValue, 1),
        ),
        ([((*ENT, 2, 0), Tag.IP_ADDRESS, b"\x01\x02\x03")], (ErrorStatus.wrongLength, 1)),
        ([((*ROWS_ENTRY, 3, 900), Tag.INTEGER, 1)], (ErrorStatus.noCreation, 1)),
        ([((*PAIRS_ENTRY, 1, 9, 9), Tag.INTEGER, 1)], (ErrorStatus.noCreation, 1)),
        ([((*ROWS_ENTRY, 9, 901, 1), Tag.INTEGER, 4)], (ErrorStatus.noCreation, 1)),
        ([((*ROWS_ENTRY, 9, 901), Tag.INTEGER, 1)], (ErrorStatus.inconsistentValue, 1)),
        ([((*ENT, 4, 0), Tag.INTEGER, 1)], (ErrorStatus.commitFailed, 1)),
    ]
    for varbinds, expected in cases:
        before = (m.sys_name, m.ip, dict(m.status), dict(m.macs), list(m.rows))
        assert tree.set(varbinds) == expected, varbinds
        if expected[0] is not ErrorStatus.commitFailed:
            assert before == (m.sys_name, m.ip, dict(m.status), dict(m.macs), list(m.rows))
    # row creation: every varbind of the PDU addressed to the new row goes to create()
    created = tree.set(
        [
            ((*ROWS_ENTRY, 2, 77), Tag.OCTET_STRING, b"\x01" * 6),
            ((*ROWS_ENTRY, 9, 77), Tag.INTEGER, 4),
            ((*ROWS_ENTRY, 3, 77), Tag.INTEGER, 3),
        ]
    )
    assert created == (ErrorStatus.noError, 0)
    assert m.macs[(77,)] == b"\x01" * 6 and m.status[(77,)] == 3 and (77,) in m.rows
    assert tree.set([((*ROWS_ENTRY, 9, 77), Tag.INTEGER, 6)]) == (ErrorStatus.noError, 0)
    assert (77,) not in m.rows


# ---------------------------------------------------------------------------------------------
# net-snmp v2c
# ---------------------------------------------------------------------------------------------


def test_netsnmp_v2c_get(nsnmp: NetSnmp) -> None:
    r = nsnmp(
        "snmpget",
        V2_RO,
        "1.3.6.1.2.1.1.1.0",
        "1.3.6.1.2.1.1.2.0",
        dotted((*ROWS_ENTRY, 2, 9999)),
        dotted((*ENT, 3, 0)),
        dotted((*ENT, 2, 0)),
        dotted((*ENT, 1, 0)),
        "1.3.6.1.2.1.1.3.0",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == '.1.3.6.1.2.1.1.1.0 = STRING: "lab CMTS"'
    assert "No Such Object" in lines[1]
    assert "No Such Instance" in lines[2]
    assert lines[3].endswith("Counter64: 18446744073709551615")
    assert lines[4].endswith("IpAddress: 10.0.0.1")
    assert lines[5].endswith("OID: .1.3.6.1.4.1.99999.7.7")
    assert "Timeticks: (123456)" in lines[6]


def test_netsnmp_v2c_getnext_between_and_past_end(nsnmp: NetSnmp) -> None:
    r = nsnmp(
        "snmpgetnext",
        V2_RO,
        "1.3.6.1.2.1.1.1.0",
        "1.3.6.1.2.1.1.4",
        dotted((*ROWS_ENTRY, 5, 2)),
        dotted((*PAIRS_ENTRY, 1, 1)),
        dotted((*PAIRS_ENTRY, 1, 3, 1)),
        "1.3.6.1.5",
    )
    assert r.returncode == 0, r.stderr
    assert walk_oids(r.stdout) == [
        ".1.3.6.1.2.1.1.3.0",
        ".1.3.6.1.2.1.1.5.0",
        dotted((*ROWS_ENTRY, 5, 3)),
        dotted((*PAIRS_ENTRY, 1, 1, 1)),
        dotted((*PAIRS_ENTRY, 1, 3, 1)),
        ".1.3.6.1.5",
    ]
    assert "No more variables left" in r.stdout.splitlines()[-1]


@pytest.mark.parametrize("reps", ["1", "7", "25", "100"])
def test_netsnmp_v2c_bulkwalk_complete(
    nsnmp: NetSnmp, snmp_agent_running: Running, reps: str
) -> None:
    _agent, model = snmp_agent_running
    r = nsnmp("snmpbulkwalk", V2_RO, f"-Cr{reps}", "1.3")
    assert r.returncode == 0, r.stderr
    expected = [dotted(o) for o, _ in model.instances()]
    got = walk_oids(r.stdout)
    assert got[: len(expected)] == expected
    assert got[len(expected) :] in ([], [expected[-1]])  # the endOfMibView line, if printed


def test_netsnmp_v2c_bulkwalk_subtree_terminates(nsnmp: NetSnmp) -> None:
    r = nsnmp("snmpbulkwalk", V2_RO, "-Cr25", dotted((*ROWS_ENTRY, 5)))
    assert r.returncode == 0, r.stderr
    assert walk_oids(r.stdout) == [dotted((*ROWS_ENTRY, 5, i)) for i in range(1, 51, 2)]


def test_netsnmp_v2c_getbulk_nonrepeaters_and_end(nsnmp: NetSnmp) -> None:
    r = nsnmp(
        "snmpbulkget",
        V2_RO,
        "-Cn1",
        "-Cr4",
        "1.3.6.1.2.1.1.1",
        dotted((*PAIRS_ENTRY, 1, 2, 5)),
        dotted((*ROWS_ENTRY, 9, 49)),
    )
    assert r.returncode == 0, r.stderr
    oids = walk_oids(r.stdout)
    last = dotted((*PAIRS_ENTRY, 1, 3, 1))
    # row 1: pairs -> (3,1), rows.9.49 -> .50; row 2: end, pairs.1.1.1; row 3: end, next...
    assert oids[0] == ".1.3.6.1.2.1.1.1.0"
    assert oids[1:3] == [last, dotted((*ROWS_ENTRY, 9, 50))]
    assert oids[3:5] == [last, dotted((*PAIRS_ENTRY, 1, 1, 1))]
    assert len(oids) == 1 + 2 * 4
    lines = r.stdout.splitlines()
    assert "No more variables" in lines[3] and "No more variables" in lines[5]


def test_netsnmp_v2c_unknown_community_dropped(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    agent, _ = snmp_agent_running
    r = nsnmp("snmpget", ["-v2c", "-c", "nope"], "1.3.6.1.2.1.1.1.0", timeout="0.3", retries="0")
    assert r.returncode != 0 and "Timeout" in r.stderr
    assert agent.stats.auth_failures >= 1 and agent.stats.dropped >= 1


def test_netsnmp_v2c_readonly_set_is_refused(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    _, model = snmp_agent_running
    r = nsnmp("snmpset", V2_RO, "1.3.6.1.2.1.1.5.0", "s", "hacked")
    assert "noAccess" in r.stderr
    assert model.sys_name == b"cmts-1"


def test_netsnmp_v2c_set_and_errors(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    _, model = snmp_agent_running
    r = nsnmp(
        "snmpset", V2_RW, "1.3.6.1.2.1.1.5.0", "s", "renamed", dotted((*ROWS_ENTRY, 3, 4)), "i", "2"
    )
    assert r.returncode == 0, r.stderr
    assert 'STRING: "renamed"' in r.stdout and "INTEGER: 2" in r.stdout  # echoed varbinds
    assert model.sys_name == b"renamed" and model.status[(4,)] == 2
    cases = [
        (
            ["1.3.6.1.2.1.1.5.0", "s", "x", dotted((*ROWS_ENTRY, 3, 4)), "s", "1"],
            "wrongType",
            dotted((*ROWS_ENTRY, 3, 4)),
        ),
        ([dotted((*ROWS_ENTRY, 2, 4)), "x", "0011"], "wrongLength", dotted((*ROWS_ENTRY, 2, 4))),
        ([dotted((*ROWS_ENTRY, 4, 4)), "u", "5"], "notWritable", dotted((*ROWS_ENTRY, 4, 4))),
        (
            [dotted((*PAIRS_ENTRY, 1, 7, 7)), "i", "5"],
            "noCreation",
            dotted((*PAIRS_ENTRY, 1, 7, 7)),
        ),
        ([dotted((*ROWS_ENTRY, 3, 4)), "i", "0"], "wrongValue", dotted((*ROWS_ENTRY, 3, 4))),
        (["1.3.6.1.2.1.1.5.0", "s", "forbidden"], "inconsistentValue", ".1.3.6.1.2.1.1.5.0"),
        ([dotted((*ENT, 4, 0)), "i", "1"], "commitFailed", dotted((*ENT, 4, 0))),
    ]
    for args, reason, failed in cases:
        r = nsnmp("snmpset", V2_RW, *args)
        assert f"Reason: {reason}" in r.stderr, (args, r.stderr)
        assert f"Failed object: {failed}" in r.stderr, (args, r.stderr)
    assert model.sys_name == b"renamed" and model.status[(4,)] == 2  # nothing partially applied


def test_netsnmp_v2c_row_creation(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    _, model = snmp_agent_running
    r = nsnmp(
        "snmpset",
        V2_RW,
        dotted((*ROWS_ENTRY, 9, 60)),
        "i",
        "4",
        dotted((*ROWS_ENTRY, 2, 60)),
        "x",
        "AABBCCDDEEFF",
    )
    assert r.returncode == 0, r.stderr
    assert model.macs[(60,)] == bytes.fromhex("AABBCCDDEEFF")
    r = nsnmp("snmpget", V2_RO, dotted((*ROWS_ENTRY, 2, 60)))
    assert "AA BB CC DD EE FF" in r.stdout


# ---------------------------------------------------------------------------------------------
# net-snmp v3
# ---------------------------------------------------------------------------------------------


def test_netsnmp_v3_authpriv_get_walk_set(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    _, model = snmp_agent_running
    r = nsnmp("snmpget", V3_ADMIN, "1.3.6.1.2.1.1.1.0")
    assert r.returncode == 0 and '"lab CMTS"' in r.stdout, r.stderr
    r = nsnmp("snmpbulkwalk", V3_ADMIN, "-Cr25", "1.3")
    expected = [dotted(o) for o, _ in model.instances()]
    assert r.returncode == 0, r.stderr
    assert walk_oids(r.stdout)[: len(expected)] == expected
    r = nsnmp("snmpset", V3_ADMIN, dotted((*ROWS_ENTRY, 3, 5)), "i", "1")
    assert r.returncode == 0, r.stderr
    assert model.status[(5,)] == 1


def test_netsnmp_v3_sha256_aes256(nsnmp: NetSnmp) -> None:
    auth = [
        "-v3",
        "-l",
        "authPriv",
        "-u",
        "strong",
        "-a",
        "SHA-256",
        "-A",
        "strongauth1",
        "-x",
        "AES-256",
        "-X",
        "strongpriv1",
    ]
    r = nsnmp("snmpget", auth, "1.3.6.1.2.1.1.1.0")
    assert r.returncode == 0 and '"lab CMTS"' in r.stdout, r.stderr
    auth = ["-v3", "-l", "authNoPriv", "-u", "authonly", "-a", "SHA-512", "-A", "authonly123"]
    r = nsnmp("snmpgetnext", auth, "1.3.6.1.2.1.1.1.0")
    assert r.returncode == 0 and "123456" in r.stdout, r.stderr


def test_netsnmp_v3_noauth_user(nsnmp: NetSnmp) -> None:
    auth = ["-v3", "-l", "noAuthNoPriv", "-u", "noauth"]
    r = nsnmp("snmpget", auth, "1.3.6.1.2.1.1.1.0")
    assert r.returncode == 0 and '"lab CMTS"' in r.stdout, r.stderr
    auth = ["-v3", "-l", "authNoPriv", "-u", "noauth", "-a", "SHA", "-A", "whatever123"]
    r = nsnmp("snmpget", auth, "1.3.6.1.2.1.1.1.0", timeout="1", retries="0")
    assert "Unsupported security level" in r.stderr


def test_netsnmp_v3_readonly_user_cannot_set(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    _, model = snmp_agent_running
    r = nsnmp("snmpget", V3_READER, "1.3.6.1.2.1.1.5.0")
    assert r.returncode == 0, r.stderr
    r = nsnmp("snmpset", V3_READER, "1.3.6.1.2.1.1.5.0", "s", "hacked")
    assert "noAccess" in r.stderr
    assert model.sys_name == b"cmts-1"


@pytest.mark.parametrize(
    ("auth", "message", "counter"),
    [
        (
            [
                "-v3",
                "-l",
                "authPriv",
                "-u",
                "admin",
                "-a",
                "SHA",
                "-A",
                "wrongpass11",
                "-x",
                "AES",
                "-X",
                "privpass123",
            ],
            "Authentication failure",
            "WRONG_DIGEST",
        ),
        (
            [
                "-v3",
                "-l",
                "authPriv",
                "-u",
                "admin",
                "-a",
                "SHA",
                "-A",
                "authpass123",
                "-x",
                "AES",
                "-X",
                "wrongpriv11",
            ],
            "Decryption error",
            "DECRYPTION_ERROR",
        ),
        (
            [
                "-v3",
                "-l",
                "authPriv",
                "-u",
                "ghost",
                "-a",
                "SHA",
                "-A",
                "authpass123",
                "-x",
                "AES",
                "-X",
                "privpass123",
            ],
            "Unknown user name",
            "UNKNOWN_USER_NAME",
        ),
        (
            ["-v3", "-l", "authNoPriv", "-u", "admin", "-a", "SHA", "-A", "authpass123"],
            "Unsupported security level",
            "UNSUPPORTED_SEC_LEVEL",
        ),
        (
            ["-v3", "-l", "noAuthNoPriv", "-u", "admin"],
            "Unsupported security level",
            "UNSUPPORTED_SEC_LEVEL",
        ),
    ],
)
def test_netsnmp_v3_usm_reports(
    nsnmp: NetSnmp, snmp_agent_running: Running, auth: list[str], message: str, counter: str
) -> None:
    agent, _ = snmp_agent_running
    r = nsnmp("snmpget", auth, "1.3.6.1.2.1.1.1.0", timeout="1", retries="0")
    assert r.returncode != 0
    assert message in r.stderr
    assert agent.usm_stats[next(e for e in agent.usm_stats if e.name == counter)] >= 1
    assert agent.usm_stats[next(e for e in agent.usm_stats if e.name == "UNKNOWN_ENGINE_ID")] >= 1


def test_netsnmp_v3_time_window_resync(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    agent, _ = snmp_agent_running
    agent.reboot()
    agent.reboot()
    # wrong boots/time given up front: the agent answers notInTimeWindow, net-snmp resyncs
    r = nsnmp("snmpget", [*V3_ADMIN, "-e", ENGINE_ID.hex(), "-Z", "1,99999"], "1.3.6.1.2.1.1.1.0")
    assert r.returncode == 0, r.stderr
    assert '"lab CMTS"' in r.stdout
    assert agent.engine_boots == 3
    assert agent.usm_stats[next(e for e in agent.usm_stats if e.name == "NOT_IN_TIME_WINDOW")] >= 1


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------


def test_fault_unreachable_and_gen_err(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    agent, _ = snmp_agent_running
    agent.faults.unreachable = True
    r = nsnmp("snmpget", V2_RO, "1.3.6.1.2.1.1.1.0", timeout="0.3", retries="0")
    assert "Timeout" in r.stderr
    agent.faults.unreachable = False
    agent.faults.gen_err = True
    r = nsnmp("snmpget", V2_RO, "1.3.6.1.2.1.1.1.0")
    assert "genErr" in r.stderr
    r = nsnmp("snmpget", V3_ADMIN, "1.3.6.1.2.1.1.1.0")
    assert "genErr" in r.stderr
    agent.faults.gen_err = False
    assert nsnmp("snmpget", V2_RO, "1.3.6.1.2.1.1.1.0").returncode == 0


def test_fault_delay_does_not_block_other_agents(
    snmp_agent_loop: SnmpAgentLoop, netsnmp_env: dict[str, str], snmp_agent_model_factory: Any
) -> None:
    slow = snmp_agent_loop.start_agent(
        snmp_agent_model_factory().tree, faults=AgentFaults(delay_s=1.5), name="slow"
    )
    fast = snmp_agent_loop.start_agent(snmp_agent_model_factory().tree, name="fast")
    slow_cmd = NetSnmp(netsnmp_env, slow)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["snmpget", *V2_RO, "-t", "5", "-r", "0", slow_cmd.target, "1.3.6.1.2.1.1.1.0"],
        env=netsnmp_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.2)
    r = NetSnmp(netsnmp_env, fast)("snmpget", V2_RO, "1.3.6.1.2.1.1.1.0")
    fast_elapsed = time.monotonic() - t0
    out, _err = proc.communicate(timeout=10)
    slow_elapsed = time.monotonic() - t0
    assert r.returncode == 0 and fast_elapsed < 1.2
    assert '"lab CMTS"' in out and slow_elapsed >= 1.5


def test_fault_too_big_and_bulk_truncation(nsnmp: NetSnmp, snmp_agent_running: Running) -> None:
    agent, model = snmp_agent_running
    agent.faults.too_big_bytes = 120
    oids = [dotted((*ROWS_ENTRY, 2, i)) for i in range(1, 8)]
    r = nsnmp("snmpget", V2_RO, *oids)
    assert "tooBig" in r.stderr
    r = nsnmp("snmpget", V3_ADMIN, *oids)
    assert "tooBig" in r.stderr
    # GETBULK truncates instead; the walk still completes, a few varbinds per response
    r = nsnmp("snmpbulkwalk", V2_RO, "-Cr50", "1.3")
    expected = [dotted(o) for o, _ in model.instances()]
    assert walk_oids(r.stdout)[: len(expected)] == expected
    agent.faults.too_big_bytes = 40  # not even one varbind fits
    r = nsnmp("snmpbulkget", V2_RO, "-Cr5", "1.3")
    assert "tooBig" in r.stderr
    agent.faults.too_big_bytes = None
    agent.faults.max_response_bytes = 300
    before = agent.stats.requests
    r = nsnmp("snmpbulkwalk", V3_ADMIN, "-Cr100", dotted(ROWS_ENTRY))
    assert r.returncode == 0, r.stderr
    assert len(walk_oids(r.stdout)) == 50 * 4 + 25
    assert agent.stats.requests - before > 225 * 30 // 300  # many small responses


def test_malformed_datagrams_are_dropped(snmp_agent_running: Running, nsnmp: NetSnmp) -> None:
    agent, _ = snmp_agent_running
    good = encode_community(
        1,
        b"public",
        encode_pdu(
            PduType.GET,
            7,
            0,
            0,
            encode_varbind_list([((1, 3, 6, 1, 2, 1, 1, 1, 0), Tag.NULL, None)]),
        ),
    )
    junk = [
        b"",
        b"\x30",
        b"\x30\x80\x00\x00",
        good[:-3],
        good + b"\x00",
        b"\xff" * 50,
        good.replace(b"\xa0", b"\xaf"),
        b"\x30\x03\x02\x01\x03",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for j in junk:
            s.sendto(j, (agent.host, agent.port))
        s.sendto(good, (agent.host, agent.port))
        data, _ = s.recvfrom(65535)
    reply = decode_message(data)
    assert isinstance(reply, CommunityMessage) and reply.pdu.request_id == 7
    assert agent.stats.malformed >= len(junk) - 1
    assert nsnmp("snmpget", V2_RO, "1.3.6.1.2.1.1.1.0").returncode == 0


def test_callback_failure_answers_gen_err(
    snmp_agent_loop: SnmpAgentLoop, netsnmp_env: dict[str, str]
) -> None:
    def boom() -> int:
        raise RuntimeError("model bug")

    tree = MibTree()
    tree.add(Scalar((1, 3, 6, 1, 2, 1, 1, 1), Syntax.INTEGER, lambda: 1))
    tree.add(Scalar((1, 3, 6, 1, 2, 1, 1, 2), Syntax.INTEGER, boom))
    agent = snmp_agent_loop.start_agent(tree)
    r = NetSnmp(netsnmp_env, agent)("snmpget", V2_RO, "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0")
    assert "genErr" in r.stderr and "Failed object: .1.3.6.1.2.1.1.2.0" in r.stderr


def test_ipv6_and_reconfiguration(
    snmp_agent_loop: SnmpAgentLoop, netsnmp_env: dict[str, str], snmp_agent_model_factory: Any
) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        agent = snmp_agent_loop.start_agent(snmp_agent_model_factory().tree, host="::1")
    except OSError:
        pytest.skip("::1 not available")
    ns = NetSnmp(netsnmp_env, agent)
    assert ns("snmpget", V2_RO, "1.3.6.1.2.1.1.1.0").returncode == 0
    agent.set_communities({"other": "ro"})
    assert ns("snmpget", V2_RO, "1.3.6.1.2.1.1.1.0", timeout="0.3", retries="0").returncode != 0
    agent.set_users([UsmUser("admin", "SHA", "newpass1234", "AES", "privpass123", "rw")])
    r = ns("snmpget", V3_ADMIN, "1.3.6.1.2.1.1.1.0", timeout="0.5", retries="0")
    assert "Authentication failure" in r.stderr


# ---------------------------------------------------------------------------------------------
# pysnmp 7 client
# ---------------------------------------------------------------------------------------------


def _usm(user: str, auth: str, priv: str) -> UsmUserData:
    return UsmUserData(
        user, auth, priv, authProtocol=usmHMACSHAAuthProtocol, privProtocol=usmAesCfb128Protocol
    )


def test_pysnmp_v2c_and_v3(snmp_agent_running: Running) -> None:
    agent, model = snmp_agent_running

    async def scenario() -> None:
        engine = SnmpEngine()
        try:
            target = await UdpTransportTarget.create((agent.host, agent.port), timeout=2, retries=1)
            admin = _usm("admin", "authpass123", "privpass123")
            for auth in (CommunityData("public"), admin):
                err, status, _idx, vbs = await get_cmd(
                    engine,
                    auth,
                    target,
                    ContextData(),
                    ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")),
                )
                assert err is None and int(status) == 0
                assert bytes(vbs[0][1]) == b"lab CMTS"
            names: list[tuple[int, ...]] = []
            async for err, status, _idx, vbs in bulk_walk_cmd(
                engine,
                admin,
                target,
                ContextData(),
                0,
                25,
                ObjectType(ObjectIdentity(".".join(map(str, ROWS_ENTRY)))),
                lexicographicMode=False,
            ):
                assert err is None and int(status) == 0
                names.extend(tuple(vb[0]) for vb in vbs)
            assert names == [o for o, _ in model.instances() if o[: len(ROWS_ENTRY)] == ROWS_ENTRY]
            err, status, _idx, _vbs = await set_cmd(
                engine,
                admin,
                target,
                ContextData(),
                ObjectType(ObjectIdentity("1.3.6.1.2.1.1.5.0"), OctetString(b"via-pysnmp")),
            )
            assert err is None and int(status) == 0
            assert model.sys_name == b"via-pysnmp"
            err, status, idx, _vbs = await set_cmd(
                engine,
                admin,
                target,
                ContextData(),
                ObjectType(
                    ObjectIdentity(".".join(map(str, (*ROWS_ENTRY, 3, 1)))), OctetString(b"x")
                ),
            )
            assert err is None and status.prettyPrint() == "wrongType" and int(idx) == 1
            reader = _usm("reader", "readpass123", "readpriv123")
            for auth in (CommunityData("public"), reader):
                err, status, idx, _vbs = await set_cmd(
                    engine,
                    auth,
                    target,
                    ContextData(),
                    ObjectType(ObjectIdentity(".".join(map(str, (*ROWS_ENTRY, 3, 1)))), Integer(1)),
                )
                assert err is None and status.prettyPrint() == "noAccess"
            assert model.status[(1,)] == 6
            # the agent reboots: pysnmp gets notInTimeWindow and resynchronises
            agent.reboot()
            err, status, _idx, vbs = await get_cmd(
                engine,
                admin,
                target,
                ContextData(),
                ObjectType(ObjectIdentity("1.3.6.1.2.1.1.1.0")),
            )
            assert err is None and int(status) == 0
        finally:
            engine.close_dispatcher()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_pysnmp_ipv6(snmp_agent_loop: SnmpAgentLoop, snmp_agent_model_factory: Any) -> None:
    try:
        agent = snmp_agent_loop.start_agent(snmp_agent_model_factory().tree, host="::1")
    except OSError:
        pytest.skip("::1 not available")

    async def scenario() -> None:
        engine = SnmpEngine()
        try:
            target = await Udp6TransportTarget.create(("::1", agent.port), timeout=2, retries=1)
            err, status, _idx, vbs = await get_cmd(
                engine,
                _usm("admin", "authpass123", "privpass123"),
                target,
                ContextData(),
                ObjectType(ObjectIdentity("1.3.6.1.2.1.1.5.0")),
            )
            assert err is None and int(status) == 0 and bytes(vbs[0][1]) == b"cmts-1"
        finally:
            engine.close_dispatcher()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_stats_are_plain_ints(snmp_agent_running: Running, nsnmp: NetSnmp) -> None:
    agent, _ = snmp_agent_running
    nsnmp("snmpbulkwalk", V2_RO, "-Cr10", dotted((*ROWS_ENTRY, 4)))
    stats = agent.stats.as_dict()
    assert all(type(v) is int for v in stats.values())
    assert stats["varbinds"] >= 50 and stats["requests"] >= 5
