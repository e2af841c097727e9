"""FastSnmpClient: differential tests against net-snmp and pysnmp on the same lab agent,
and its errors, retries, budget and resync behaviour."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)

from enforcer.drivers.transport_args import snmp_target
from enforcer.errors import ConfigError, DeviceUnreachable, SnmpAuthError, SnmpError
from enforcer.inventory.model import Credentials, Device, Inventory, SnmpCredentials
from enforcer.transport.fastsnmp import FastSnmpClient, RequestBudget, split_points
from enforcer.transport.snmpwire.ber import Tag
from enforcer.transport.snmpwire.message import (
    PduType,
    encode_community,
    encode_pdu,
    encode_varbind_list,
)
from lab.snmp.agent import SnmpAgent, UsmUser
from tests.transport.test_fastsnmp_support import (
    AUTH,
    COLUMN_OIDS,
    COMMUNITY,
    ENTRY,
    MAC_COLUMN_OIDS,
    MAC_ENTRY,
    PRIV,
    SYS_DESCR,
    USER,
    expected_walk,
    flatten,
    from_pysnmp,
    netsnmp,
    netsnmp_auth,
    netsnmp_env,
    start_agent,
    v2c,
    v3,
)

pytestmark = pytest.mark.skipif(shutil.which("snmpbulkwalk") is None,
                                reason="net-snmp not installed")
ALL_COLUMNS = COLUMN_OIDS + MAC_COLUMN_OIDS


@pytest.fixture
async def agent() -> AsyncIterator[SnmpAgent]:
    a = await start_agent()
    yield a
    await a.stop()


def client(agent: SnmpAgent, creds: Any, **kw: Any) -> FastSnmpClient:
    kw.setdefault("timeout_s", 1.0)
    kw.setdefault("retries", 1)
    return FastSnmpClient(agent.host, agent.port, creds, device="dut", **kw)


def dotted(oid: tuple[int, ...]) -> str:
    return "." + ".".join(map(str, oid))


# ---------------------------------------------------------------------------------------------
# differential: FastSnmpClient == net-snmp == pysnmp == the MIB itself
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("proto", ["v2c", "v3"])
async def test_walk_matches_netsnmp_and_pysnmp(agent: SnmpAgent, proto: str,
                                               tmp_path: Path) -> None:
    creds = v2c() if proto == "v2c" else v3()
    async with client(agent, creds) as c:
        ours = await c.walk_columns(ALL_COLUMNS, max_repetitions=5)
    assert ours == expected_walk(ALL_COLUMNS)
    env = netsnmp_env(tmp_path)
    target = f"{agent.host}:{agent.port}"
    theirs = []
    for entry in (ENTRY, MAC_ENTRY):
        theirs += await netsnmp("snmpbulkwalk", [*netsnmp_auth(creds), "-Cr5", target,
                                                 dotted(entry)], env)
    assert flatten(ours) == sorted(theirs)

    engine = SnmpEngine()
    auth: Any = CommunityData(COMMUNITY) if proto == "v2c" else UsmUserData(
        USER, AUTH, PRIV, authProtocol=usmHMACSHAAuthProtocol, privProtocol=usmAesCfb128Protocol)
    tgt = await UdpTransportTarget.create((agent.host, agent.port), timeout=2, retries=1)
    py = []
    for entry in (ENTRY, MAC_ENTRY):
        async for err, status, _i, vbs in bulk_walk_cmd(
                engine, auth, tgt, ContextData(), 0, 5, ObjectType(ObjectIdentity(dotted(entry))),
                lexicographicMode=False):
            assert err is None and int(status) == 0
            py += [from_pysnmp(n, v) for n, v in vbs]
    engine.close_dispatcher()
    assert flatten(ours) == sorted(py)


@pytest.mark.parametrize("proto", ["v2c", "v3"])
async def test_get_matches_netsnmp(agent: SnmpAgent, proto: str, tmp_path: Path) -> None:
    creds = v2c() if proto == "v2c" else v3()
    oids = [SYS_DESCR, (1, 3, 6, 1, 2, 1, 1, 3, 0), (*ENTRY, 3, 536870913),
            (*ENTRY, 9, 128), (1, 3, 6, 1, 2, 1, 1, 9, 0), (*ENTRY, 3, 99)]
    async with client(agent, creds) as c:
        ours = await c.get(oids)
    assert ours[0] == (SYS_DESCR, Tag.OCTET_STRING, b"fast lab")
    assert ours[4][1] is Tag.NO_SUCH_OBJECT and ours[5][1] is Tag.NO_SUCH_INSTANCE
    theirs = await netsnmp("snmpget", [*netsnmp_auth(creds), f"{agent.host}:{agent.port}",
                                       *map(dotted, oids)], netsnmp_env(tmp_path))
    assert ours == theirs


async def test_walk_over_ipv6_and_mixed_column_lengths() -> None:
    try:
        a = await start_agent("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        async with client(a, v2c()) as c:
            got = await c.walk_columns([(*ENTRY, 10), MAC_COLUMN_OIDS[1], (*ENTRY, 2)])
        assert got == expected_walk([(*ENTRY, 10), MAC_COLUMN_OIDS[1], (*ENTRY, 2)])
    finally:
        await a.stop()


@pytest.mark.parametrize("proto", ["v2c", "v3"])
async def test_a_walk_split_into_ranges_returns_the_same_rows(agent: SnmpAgent,
                                                              proto: str) -> None:
    creds = v2c() if proto == "v2c" else v3()
    whole = expected_walk(COLUMN_OIDS)
    indexes = [ix for ix, _t, _v in whole[COLUMN_OIDS[0]]]
    assert len(indexes) > 8
    cases: list[list[tuple[int, ...]]] = [
        split_points(indexes, 4),                       # the previous walk's quartiles
        [indexes[0]],                                   # a first range of one row
        [(0,), indexes[-1]],                            # before every row; the last one
        [(*indexes[2], 0), (*indexes[3], 7, 7)],        # between rows, longer than an index
        [(2**32 - 2,), (2**32 - 1, 5)],                 # past the end: empty ranges
    ]
    async with client(agent, creds) as c:
        for splits in cases:
            got = await c.walk_columns(COLUMN_OIDS, max_repetitions=3, splits=splits)
            assert got == whole, splits
        sent = c.stats["requests"]
        await c.walk_columns(COLUMN_OIDS, max_repetitions=3,
                             splits=split_points(indexes, 4))
        split_cost = c.stats["requests"] - sent
        sent = c.stats["requests"]
        await c.walk_columns(COLUMN_OIDS, max_repetitions=3)
        one_stream = c.stats["requests"] - sent
    assert split_cost <= one_stream + 4  # about as many messages as one stream


async def test_a_client_with_walk_ranges_splits_where_its_last_walk_did(
        agent: SnmpAgent) -> None:
    whole = expected_walk(COLUMN_OIDS)
    indexes = [ix for ix, _t, _v in whole[COLUMN_OIDS[0]]]
    async with FastSnmpClient(agent.host, agent.port, v3(), walk_ranges=3,
                              max_repetitions=3) as c:
        assert await c.walk_columns(COLUMN_OIDS) == whole  # one stream, then learns
        assert c._splits[tuple(COLUMN_OIDS)] == split_points(indexes, 3)
        assert await c.walk_columns(COLUMN_OIDS) == whole  # three streams
        assert await c.walk_columns(COLUMN_OIDS, splits=()) == whole  # asked for one
    with pytest.raises(ConfigError, match="walk_ranges"):
        FastSnmpClient(agent.host, agent.port, v3(), walk_ranges=0)


async def test_walk_splits_must_increase(agent: SnmpAgent) -> None:
    async with client(agent, v2c()) as c:
        for bad in ([(5,), (5,)], [(7,), (3,)], [()], [(2**32,)]):
            with pytest.raises(ConfigError, match="split"):
                await c.walk_columns(COLUMN_OIDS, splits=bad)


def test_split_points_cut_into_equal_parts() -> None:
    ix = [(i,) for i in range(1, 101)]
    assert split_points(ix, 4) == [(25,), (50,), (75,)]
    assert split_points(ix, 1) == []
    assert split_points([(1,), (2,)], 4) == [(1,)]
    assert split_points([], 3) == []
    with pytest.raises(ConfigError):
        split_points(ix, 0)


async def test_truncated_responses_still_walk_everything(agent: SnmpAgent) -> None:
    agent.faults.too_big_bytes = 300  # the agent truncates each GETBULK to fit
    async with client(agent, v3()) as c:
        got = await c.walk_columns(COLUMN_OIDS, max_repetitions=25)
    assert got == expected_walk(COLUMN_OIDS)


class _TooBigAgent(SnmpAgent):
    """Answers tooBig to any GETBULK asking for more than 3 repetitions."""

    seen: list[int]

    def _execute(self, pdu: Any, rw: bool, budget: int) -> Any:
        from lab.snmp.agent import _Outcome

        self.seen.append(pdu.max_repetitions)
        if pdu.max_repetitions > 3:
            return _Outcome(1, 0, b"\x30\x00", 0)
        return super()._execute(pdu, rw, budget)


async def test_too_big_halves_max_repetitions() -> None:
    from tests.transport.test_fastsnmp_support import ENGINE_ID, build_tree

    a = _TooBigAgent(build_tree(), communities={COMMUNITY: "ro"}, users=[], engine_id=ENGINE_ID)
    a.seen = []
    await a.start("127.0.0.1", 0)
    try:
        async with client(a, v2c()) as c:
            got = await c.walk_columns([(*ENTRY, 2)], max_repetitions=25)
        assert got == expected_walk([(*ENTRY, 2)])
        assert a.seen[:4] == [25, 12, 6, 3] and set(a.seen[4:]) == {3}
    finally:
        await a.stop()


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


async def test_gen_err_names_oid_and_status(agent: SnmpAgent) -> None:
    agent.faults.gen_err = True
    async with client(agent, v2c()) as c:
        with pytest.raises(SnmpError, match=r"dut: GET 1\.3\.6\.1\.2\.1\.1\.1\.0 -> genErr"):
            await c.get([SYS_DESCR])
        with pytest.raises(SnmpError, match=r"GETBULK 1\.3\.6\.1\.4\.1\.99999\.10\.1\.2 -> genErr"):
            await c.walk_columns([(*ENTRY, 2)])


@pytest.mark.parametrize(("creds", "reason"), [
    (v3(auth="wrong-auth-pass"), "wrong digest"),
    (v3(priv="wrong-priv-pass"), "decryption error"),
    (v3(user="nobody"), "unknown user name"),
    (v3(auth_proto="SHA-256"), "wrong digest"),
])
async def test_v3_refusals_are_auth_errors(agent: SnmpAgent, creds: Any, reason: str) -> None:
    t0 = time.monotonic()
    async with client(agent, creds, timeout_s=2.0) as c:
        with pytest.raises(SnmpAuthError, match=reason) as info:
            await c.get([SYS_DESCR])
    assert time.monotonic() - t0 < 1.5  # an answer, not a timeout
    for secret in ("wrong-auth-pass", "wrong-priv-pass", AUTH, PRIV):
        assert secret not in str(info.value) and secret not in repr(c.__dict__)


async def test_unsupported_security_level() -> None:
    a = await start_agent(users=[UsmUser(USER, "SHA", AUTH, None, None, "ro")])
    try:
        async with client(a, v3()) as c:
            with pytest.raises(SnmpAuthError, match="unsupported security level"):
                await c.get([SYS_DESCR])
    finally:
        await a.stop()


async def test_wrong_community_is_unreachable_after_retries(agent: SnmpAgent) -> None:
    creds = replace(v2c(), community=v3().auth_password)
    async with client(agent, creds, timeout_s=0.2, retries=1) as c:
        t0 = time.monotonic()
        with pytest.raises(DeviceUnreachable, match="no SNMP answer"):
            await c.get([SYS_DESCR])
        assert 0.4 <= time.monotonic() - t0 < 0.8


async def test_closed_port_is_unreachable_within_bound() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = FastSnmpClient("127.0.0.1", port, v2c(), device="gone", timeout_s=0.3, retries=2)
    t0 = time.monotonic()
    with pytest.raises(DeviceUnreachable, match="gone: "):
        await c.walk_columns([(*ENTRY, 2)])
    assert time.monotonic() - t0 < 0.3 * 3 + 0.2
    await c.close()


async def test_silent_agent_times_out_with_retries(agent: SnmpAgent) -> None:
    agent.faults.unreachable = True
    async with client(agent, v3(), timeout_s=0.2, retries=2) as c:
        t0 = time.monotonic()
        with pytest.raises(DeviceUnreachable, match=r"3 attempts of 0\.2 s"):
            await c.get([SYS_DESCR])
        elapsed = time.monotonic() - t0
    assert 0.6 <= elapsed < 0.6 + 0.15 + 0.3  # 3 windows + backoff pauses + slack


# ---------------------------------------------------------------------------------------------
# matching, retries, USM resync, budget
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("proto", ["v2c", "v3"])
async def test_late_answer_to_first_attempt_is_accepted(agent: SnmpAgent, proto: str) -> None:
    agent.faults.delay_s = 0.25
    async with client(agent, v2c() if proto == "v2c" else v3(), timeout_s=0.15, retries=3) as c:
        got = await c.get([SYS_DESCR])
        assert got[0][2] == b"fast lab"
        assert c.stats["retransmits"] >= 1


async def test_stray_datagrams_are_ignored(agent: SnmpAgent) -> None:
    async with client(agent, v2c()) as c:
        await c.get([SYS_DESCR])
        stray = encode_community(1, COMMUNITY.encode(), encode_pdu(
            PduType.RESPONSE, 7, 0, 0, encode_varbind_list([(SYS_DESCR, Tag.NULL, None)])))
        c._net.received(b"garbage")
        c._net.received(stray)
        assert c.stats["malformed"] + c.stats["stray"] >= 2
        assert (await c.get([SYS_DESCR]))[0][2] == b"fast lab"


async def test_not_in_time_window_resyncs(agent: SnmpAgent) -> None:
    async with client(agent, v3()) as c:
        await c.get([SYS_DESCR])
        agent.reboot()  # boots + 1: our next request is outside the time window
        assert (await c.get([SYS_DESCR]))[0][2] == b"fast lab"
        assert agent.stats.reports >= 2  # discovery + notInTimeWindow


async def test_engine_id_change_rediscovers(agent: SnmpAgent) -> None:
    async with client(agent, v3()) as c:
        await c.get([SYS_DESCR])
        agent.engine_id = bytes.fromhex("80001f8880fa57c11e0002")
        agent.set_users([UsmUser(USER, "SHA", AUTH, "AES", PRIV, "ro")])
        assert (await c.get([SYS_DESCR]))[0][2] == b"fast lab"


async def test_request_budget_paces_requests(agent: SnmpAgent) -> None:
    budget = RequestBudget(max_in_flight=1, requests_per_s=20, burst=1)
    async with client(agent, v2c(), budget=budget) as c:
        t0 = time.monotonic()
        await asyncio.gather(*(c.get([SYS_DESCR]) for _ in range(6)))
        assert time.monotonic() - t0 >= 5 / 20 * 0.9


def test_inventory_device_target_and_config_errors(tmp_path: Path) -> None:
    """The inventory lookup lives at the boundary (drivers/transport_args.py), not in the
    transport; the client gets plain host, port and SnmpAuth."""
    snmp = SnmpCredentials(user=USER, auth_password=SecretStr(AUTH),
                           priv_password=SecretStr(PRIV))
    inv = Inventory(
        credentials={"snmp": Credentials(snmp=snmp), "none": Credentials()},
        devices={"cmts-1": Device(kind="cmts", profile="docsis3-generic", host="127.0.0.1",
                                  snmp_port=16161, credentials="snmp"),
                 "cmts-2": Device(kind="cmts", profile="docsis3-generic", host="127.0.0.1",
                                  credentials="none")})
    host, port, auth = snmp_target(inv, "cmts-1")
    assert auth == v3() and AUTH not in repr(auth) and PRIV not in str(auth)
    c = FastSnmpClient(host, port, auth, device="cmts-1", max_repetitions=10, timeout_s=2,
                       retries=0)
    assert (c.target.host, c.target.port, c.version, c.max_repetitions) == (
        "127.0.0.1", 16161, "3", 10)
    assert AUTH not in repr(vars(c)) and PRIV not in repr(vars(c))
    with pytest.raises(ConfigError, match="no SNMP"):
        snmp_target(inv, "cmts-2")
    with pytest.raises(ConfigError, match="unknown device"):
        snmp_target(inv, "cmts-3")
    creds = replace(v2c(), allow_v2c=False)
    with pytest.raises(ConfigError, match="v2c is not allowed"):
        FastSnmpClient("127.0.0.1", 161, creds)
