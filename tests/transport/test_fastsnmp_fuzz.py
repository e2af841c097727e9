"""Fuzz: malformed and mutated response datagrams never raise anything but SnmpWireError
from the decoders, never raise at all from the datagram path, and never hang a request."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcer.errors import SnmpError, TransportError
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.fastsnmp_codec import column_prefix, decode_columns
from enforcer.transport.fastsnmp_net import _Slot
from enforcer.transport.fastsnmp_usm import UsmReport, V3Engine, V3User
from enforcer.transport.snmpwire.ber import SnmpWireError, Tag, enc_octets, enc_oid, read_tlv
from enforcer.transport.snmpwire.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    PduType,
    UsmSecurityParameters,
    V3Message,
    decode_message,
    decode_varbind_list,
    encode_community,
    encode_pdu,
    encode_scoped_pdu,
    encode_v3,
    encode_varbind_list,
)
from enforcer.transport.snmpwire.usm import UserKeys
from lab.snmp.agent import SnmpAgent
from tests.transport.test_fastsnmp_support import (
    AUTH,
    COLUMN_OIDS,
    COMMUNITY,
    ENGINE_ID,
    PRIV,
    USER,
    build_tree,
    v2c,
)

AGENT = SnmpAgent(build_tree(), communities={COMMUNITY: "ro"}, users=[], engine_id=ENGINE_ID)
RID = 4242
COLS = COLUMN_OIDS[:3]


def _bulk_response() -> bytes:
    vbl = b"".join(b"\x30" + bytes([len(t) + 2]) + t + b"\x05\x00" for t in map(enc_oid, COLS))
    req = encode_community(1, COMMUNITY.encode(), encode_pdu(
        PduType.GETBULK, RID, 0, 6, b"\x30" + bytes([len(vbl)]) + vbl))
    out = AGENT.process(req)
    assert out is not None
    return out


VALID = _bulk_response()


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, val in ops:
        if not buf:
            break
        i = pos % len(buf)
        if kind == 0:
            buf[i] = val
        elif kind == 1:
            del buf[i]
        elif kind == 2:
            buf.insert(i, val)
        else:
            del buf[i:]
    return bytes(buf)


mutations = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 255)),
                     min_size=1, max_size=6)


def _decode(data: bytes, start: int, stop: int) -> None:
    k = len(COLS)
    decode_columns(data, start, stop, [column_prefix(c) for c in COLS], [[] for _ in COLS],
                   [b""] * k, [()] * k, [False] * k)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | mutations.map(lambda ops: _mutate(VALID, ops)))
def test_decode_columns_only_raises_wire_errors(data: bytes) -> None:
    with contextlib.suppress(SnmpWireError):
        _decode(data, 0, len(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations.map(lambda ops: _mutate(VALID, ops)))
def test_datagram_path_never_raises(data: bytes) -> None:
    loop = asyncio.new_event_loop()
    try:
        c = FastSnmpClient("127.0.0.1", 9, v2c(), device="fuzz")
        fut: asyncio.Future[Any] = loop.create_future()
        c._net._pending[RID] = _Slot(fut)
        c._net.received(data)  # must not raise
        if fut.done():
            if fut.exception() is not None:
                assert isinstance(fut.exception(), SnmpError)
            else:
                _t, _rid, _s, _i, buf, start, stop = fut.result()
                with contextlib.suppress(SnmpWireError):
                    _decode(buf, start, stop)
    finally:
        loop.close()


ENGINE_KEYS = UserKeys(ENGINE_ID, "SHA", AUTH.encode(), "AES", PRIV.encode())


def _v3_answer(scoped: bytes) -> bytes:
    """An authentic authPriv message from the agent whose (decrypted) scopedPDU is ``scoped``."""
    salt = b"\x00" * 7 + b"\x01"
    data = enc_octets(ENGINE_KEYS.encrypt(scoped, 1, 10, salt))
    params = UsmSecurityParameters(ENGINE_ID, 1, 10, USER.encode(), bytes(12), salt)
    msg, off = encode_v3(77, 65507, FLAG_AUTH | FLAG_PRIV, params, data)
    return ENGINE_KEYS.sign(msg, off)


SCOPED = encode_scoped_pdu(ENGINE_ID, b"", VALID[VALID.index(bytes([PduType.RESPONSE])):])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations.map(lambda ops: _mutate(SCOPED, ops)) | st.binary(max_size=200))
def test_v3_decrypt_path_only_raises_wire_errors(scoped: bytes) -> None:
    engine = V3Engine(V3User(USER.encode(), "SHA", AUTH.encode(), "AES", PRIV.encode()))
    engine.learn(UsmReport(None, (), ENGINE_ID, 1, 10))
    try:
        msg = decode_message(_v3_answer(scoped))
        assert isinstance(msg, V3Message)
        answer = engine.incoming(msg)
    except SnmpWireError:
        return
    assert answer is not None
    if not isinstance(answer, UsmReport):
        _t, _rid, _s, _i, buf, start, stop = answer
        with contextlib.suppress(SnmpWireError):
            _decode(buf, start, stop)


class _Garbler(asyncio.DatagramProtocol):
    """Answers every request with a mutation of a real response carrying its request-id."""

    def __init__(self, ops: list[tuple[int, int, int]]) -> None:
        self.ops = ops
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        answer = AGENT.process(data)
        if answer is not None:
            self.transport.sendto(_mutate(answer, self.ops), addr)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations)
def test_walk_against_garbling_agent_never_hangs(ops: list[tuple[int, int, int]]) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Garbler(ops),
                                                           local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        try:
            async with FastSnmpClient("127.0.0.1", port, v2c(), timeout_s=0.05,
                                      retries=1) as c:
                with contextlib.suppress(TransportError):
                    await c.walk_columns(COLS, max_repetitions=4)
        finally:
            transport.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


_values = st.one_of(
    st.tuples(st.just(Tag.INTEGER), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just(Tag.OCTET_STRING), st.binary(max_size=40)),
    st.tuples(st.just(Tag.IP_ADDRESS), st.binary(min_size=4, max_size=4)),
    st.tuples(st.sampled_from([Tag.COUNTER32, Tag.GAUGE32, Tag.TIMETICKS]),
              st.integers(0, 2**32 - 1)),
    st.tuples(st.just(Tag.COUNTER64), st.integers(0, 2**64 - 1)),
    st.tuples(st.just(Tag.OBJECT_IDENTIFIER),
              st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=12).map(
                  lambda x: (1, 3, *x))),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=8), _values),
                min_size=1, max_size=20))
def test_decode_columns_agrees_with_snmpwire(rows: list[Any]) -> None:
    """Valid single-column lists decode exactly as the general snmpwire decoder does."""
    col = COLS[0]
    rows = sorted({tuple(ix): tv for ix, tv in rows}.items())
    vbs = [((*col, *ix), tag, value) for ix, (tag, value) in rows]
    vbl = encode_varbind_list(vbs)
    _tag, start, stop = read_tlv(vbl, 0, len(vbl))
    sink: list[Any] = []
    decode_columns(vbl, start, stop, [column_prefix(col)], [sink], [b""], [()], [False])
    assert [(col + ix, t, v) for ix, t, v in sink] == decode_varbind_list(vbl, start, stop)
