"""Random and mutated datagrams never raise anything but SnmpWireError (decoder and agent)."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcer.transport.snmpwire.ber import SnmpWireError, Tag, decode_value
from enforcer.transport.snmpwire.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    FLAG_REPORTABLE,
    PduType,
    UsmSecurityParameters,
    decode_message,
    decode_scoped_pdu,
    encode_community,
    encode_pdu,
    encode_scoped_pdu,
    encode_v3,
    encode_varbind_list,
)
from enforcer.transport.snmpwire.usm import UserKeys
from lab.snmp.agent import SnmpAgent, UsmUser
from lab.snmp.mibtree import Column, MibTree, Scalar, Syntax, Table

ENGINE = bytes.fromhex("80001f8880aabbccdd01")
KEYS = UserKeys(ENGINE, "SHA", b"authpass123", "AES", b"privpass123")
ROWS = [(i,) for i in range(1, 20)]


def _tree() -> MibTree:
    tree = MibTree()
    tree.add(
        Scalar((1, 3, 6, 1, 2, 1, 1, 1), Syntax.OCTET_STRING, lambda: b"fuzz", set=lambda v: None)
    )
    tree.add(
        Table(
            (1, 3, 6, 1, 4, 1, 9, 1, 1),
            [
                Column(2, Syntax.OCTET_STRING, lambda i: bytes(6), set=lambda i, v: None),
                Column(3, Syntax.INTEGER, lambda i: i[0], set=lambda i, v: None, creates_row=True),
                Column(4, Syntax.COUNTER64, lambda i: 2**64 - 1),
            ],
            lambda: ROWS,
            create=lambda i, v: None,
        )
    )
    return tree


AGENT = SnmpAgent(
    _tree(),
    communities={"public": "rw"},
    users=[UsmUser("admin", "SHA", "authpass123", "AES", "privpass123", "rw")],
    engine_id=ENGINE,
)


def _seeds() -> list[bytes]:
    vbl = encode_varbind_list(
        [
            ((1, 3, 6, 1, 2, 1, 1, 1, 0), Tag.NULL, None),
            ((1, 3, 6, 1, 4, 1, 9, 1, 1, 2, 3), Tag.OCTET_STRING, b"\x00" * 6),
            ((1, 3, 6, 1, 4, 1, 9, 1, 1, 3, 30), Tag.INTEGER, 4),
            ((1, 3, 6, 1, 4, 1, 9, 1, 1, 4, 1), Tag.COUNTER64, 2**64 - 1),
            ((1, 3, 6, 1), Tag.IP_ADDRESS, b"\x01\x02\x03\x04"),
        ]
    )
    seeds = [
        encode_community(1, b"public", encode_pdu(t, 42, 1, 3, vbl))
        for t in (PduType.GET, PduType.GETNEXT, PduType.GETBULK, PduType.SET)
    ]
    usm = UsmSecurityParameters(ENGINE, 1, 0, b"admin", bytes(12), b"\x00" * 8)
    scoped = encode_scoped_pdu(ENGINE, b"", encode_pdu(PduType.GETBULK, 7, 0, 5, vbl))
    plain, off = encode_v3(9, 1500, FLAG_AUTH | FLAG_REPORTABLE, usm, scoped)
    seeds.append(KEYS.sign(plain, off))
    cipher = KEYS.encrypt(scoped, 1, 0, b"\x00" * 8)
    enc, off = encode_v3(
        10,
        1500,
        FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE,
        usm,
        b"\x04" + bytes([len(cipher)]) + cipher,
    )
    seeds.append(KEYS.sign(enc, off))
    discovery = UsmSecurityParameters(b"", 0, 0, b"")
    seeds.append(
        encode_v3(
            11,
            1500,
            FLAG_REPORTABLE,
            discovery,
            encode_scoped_pdu(b"", b"", encode_pdu(PduType.GET, 1, 0, 0, b"\x30\x00")),
        )[0]
    )
    return seeds


SEEDS = _seeds()


def _check(data: bytes) -> None:
    with contextlib.suppress(SnmpWireError):
        decode_message(data)
    with contextlib.suppress(SnmpWireError):
        decode_scoped_pdu(data)
    with contextlib.suppress(SnmpWireError):
        decode_value(data)
    try:
        response = AGENT.process(data)
    except SnmpWireError:
        return
    if response is not None:
        decode_message(response)  # whatever the agent sends must itself decode


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        decode_message(seed)
        assert AGENT.process(seed) is not None


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == 2 and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_datagrams(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.integers(0, 2000), st.integers(0, 255))
def test_length_octet_bombs(seed: bytes, pos: int, value: int) -> None:
    data = bytearray(seed)
    pos %= len(data)
    data[pos] = value
    data[pos:pos] = b"\x84\xff\xff\xff\xff"
    _check(bytes(data))
