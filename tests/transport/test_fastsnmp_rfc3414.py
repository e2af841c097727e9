"""RFC 3414 section 3.2 step 7 and section 4 on the SNMPv3 client, against the lab agent
on loopback and crafted (forged) datagrams:

* an unauthenticated Report after discovery changes neither the engine ID nor the clock
  used for authenticated requests (a forged notInTimeWindow is discarded; a forged
  unknownEngineID leads to a rediscovery that is undone unless the engine then answers
  an authenticated request);
* an authenticated answer with older boots, or the same boots and a time more than
  150 s behind our estimate, is discarded as notInTimeWindow; one within the window is
  accepted.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest

from enforcer.errors import DeviceUnreachable
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.fastsnmp_usm import MAX_MSG_SIZE
from enforcer.transport.snmpwire.ber import Tag
from enforcer.transport.snmpwire.message import (
    PduType,
    UsmSecurityParameters,
    encode_pdu,
    encode_scoped_pdu,
    encode_v3,
    encode_varbind_list,
)
from enforcer.transport.snmpwire.usm import UsmError
from lab.snmp.agent import SnmpAgent
from tests.transport.test_fastsnmp_support import SYS_DESCR, start_agent, v3

pytestmark = pytest.mark.skipif(shutil.which("snmpbulkwalk") is None,
                                reason="net-snmp not installed")
FORGED_ENGINE = bytes.fromhex("80001f88800badc0de0badc0de")


@pytest.fixture
async def agent() -> AsyncIterator[SnmpAgent]:
    a = await start_agent()
    yield a
    await a.stop()


def _client(agent: SnmpAgent, **kw: float) -> FastSnmpClient:
    return FastSnmpClient(agent.host, agent.port, v3(), device="dut",
                          timeout_s=kw.get("timeout_s", 0.5), retries=int(kw.get("retries", 1)))


def _forged_report(msg_id: int, error: UsmError, *, boots: int, engine_time: int) -> bytes:
    """An unauthenticated Report (noAuthNoPriv) as an attacker on the path would send."""
    pdu = encode_pdu(PduType.REPORT, 0, 0, 0, encode_varbind_list(
        [(error.oid, Tag.COUNTER32, 1)]))
    params = UsmSecurityParameters(FORGED_ENGINE, boots, engine_time, b"")
    msg, _ = encode_v3(msg_id, MAX_MSG_SIZE, 0, params, encode_scoped_pdu(FORGED_ENGINE, b"", pdu))
    return msg


async def _inject_while_pending(c: FastSnmpClient, error: UsmError) -> int:
    """Wait until a request is in flight, then hand the client a forged Report for it."""
    for _ in range(200):
        if c._net._pending:
            break
        await asyncio.sleep(0.005)
    ids = list(c._net._pending)
    assert ids
    for msg_id in ids:
        c._net.received(_forged_report(msg_id, error, boots=999, engine_time=5))
    return len(ids)


async def test_forged_not_in_time_window_report_is_discarded(agent: SnmpAgent) -> None:
    async with _client(agent, timeout_s=2.0) as c:
        await c.get([SYS_DESCR])
        engine = c._net.engine
        assert engine is not None and engine.confirmed
        before_id, before_clock = engine.engine_id, engine.clock()
        agent.faults.delay_s = 0.3  # the real answer comes after the forgery
        task = asyncio.create_task(c.get([SYS_DESCR]))
        await _inject_while_pending(c, UsmError.NOT_IN_TIME_WINDOW)
        got = await task
        assert got[0][2] == b"fast lab"
        assert engine.engine_id == before_id == agent.engine_id
        assert engine.clock()[0] == before_clock[0] == agent.engine_boots  # not 999
        assert abs(engine.clock()[1] - agent.engine_time) <= 2  # not 5
        assert c.stats["unauthentic"] >= 1


async def test_forged_unknown_engine_id_is_undone_without_an_authenticated_answer(
        agent: SnmpAgent) -> None:
    async with _client(agent, timeout_s=0.3, retries=0) as c:
        await c.get([SYS_DESCR])
        engine = c._net.engine
        assert engine is not None
        state = engine.snapshot()
        agent.faults.delay_s = 0.5  # slower than our timeout: no authenticated answer
        task = asyncio.create_task(c.get([SYS_DESCR]))
        await _inject_while_pending(c, UsmError.UNKNOWN_ENGINE_ID)
        with pytest.raises(DeviceUnreachable):
            await task
        assert engine.snapshot() == state  # the proven engine and its clock are back
        agent.faults.delay_s = 0.0
        assert (await c.get([SYS_DESCR]))[0][2] == b"fast lab"


async def test_forged_unknown_engine_id_with_a_live_agent_keeps_the_real_engine(
        agent: SnmpAgent) -> None:
    async with _client(agent, timeout_s=2.0) as c:
        await c.get([SYS_DESCR])
        engine = c._net.engine
        assert engine is not None
        agent.faults.delay_s = 0.2
        task = asyncio.create_task(c.get([SYS_DESCR]))
        await _inject_while_pending(c, UsmError.UNKNOWN_ENGINE_ID)
        assert (await task)[0][2] == b"fast lab"
        assert engine.engine_id == agent.engine_id != FORGED_ENGINE


async def test_authenticated_answer_with_older_boots_is_refused(agent: SnmpAgent) -> None:
    async with _client(agent, timeout_s=0.3, retries=1) as c:
        await c.get([SYS_DESCR])
        engine = c._net.engine
        assert engine is not None
        boots = engine.clock()[0]
        agent._boots = boots - 1  # an agent (or a replay) from an earlier boot
        with pytest.raises(DeviceUnreachable):
            await c.get([SYS_DESCR])
        assert c.stats["not_in_time_window"] >= 1
        assert engine.clock()[0] == boots  # our notion of boots never goes back


async def test_authenticated_answer_far_behind_is_refused_near_is_accepted(
        agent: SnmpAgent) -> None:
    async with _client(agent, timeout_s=0.3, retries=1) as c:
        await c.get([SYS_DESCR])
        engine = c._net.engine
        assert engine is not None
        agent._time_base += 100  # the agent's clock 100 s behind ours: inside 150 s
        assert (await c.get([SYS_DESCR]))[0][2] == b"fast lab"
        assert c.stats["not_in_time_window"] == 0
        agent._time_base += 1000  # now 1,100 s behind: outside the window
        with pytest.raises(DeviceUnreachable):
            await c.get([SYS_DESCR])
        assert c.stats["not_in_time_window"] >= 1


async def test_reboot_moves_the_clock_forward_through_an_authenticated_report(
        agent: SnmpAgent) -> None:
    async with _client(agent, timeout_s=1.0) as c:
        await c.get([SYS_DESCR])
        agent.reboot()  # boots + 1, time 0: the agent's authenticated report moves us on
        assert (await c.get([SYS_DESCR]))[0][2] == b"fast lab"
        engine = c._net.engine
        assert engine is not None and engine.clock()[0] == agent.engine_boots
