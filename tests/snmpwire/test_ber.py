"""BER and message codec: round trips and edge cases (X.690, RFC 3416, RFC 3412)."""

from __future__ import annotations

from typing import Any

import pytest
from pyasn1.codec.ber import decoder as pyasn1_decoder  # type: ignore[import-untyped,unused-ignore]
from pyasn1.codec.ber import encoder as pyasn1_encoder  # type: ignore[import-untyped,unused-ignore]
from pyasn1.type import univ  # type: ignore[import-untyped,unused-ignore]

from enforcer.transport.snmpwire.ber import (
    SnmpWireError,
    Tag,
    dec_value,
    decode_oid,
    decode_value,
    enc_int,
    enc_len,
    enc_oid,
    enc_value,
    read_tlv,
    tlv,
)
from enforcer.transport.snmpwire.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    FLAG_REPORTABLE,
    CommunityMessage,
    Pdu,
    PduType,
    UsmSecurityParameters,
    V3Message,
    decode_message,
    decode_scoped_pdu,
    encode_community,
    encode_pdu,
    encode_scoped_pdu,
    encode_v3,
    encode_varbind_list,
    pdu_bytes,
)

INTS = [
    0,
    1,
    -1,
    127,
    128,
    -128,
    -129,
    255,
    256,
    32767,
    32768,
    -32768,
    -32769,
    2**31 - 1,
    -(2**31),
    2**40,
    -(2**40),
    2**63 - 1,
    -(2**63),
]


@pytest.mark.parametrize("value", INTS)
def test_integer_round_trip_and_pyasn1_agree(value: int) -> None:
    encoded = enc_int(value)
    assert int(pyasn1_decoder.decode(encoded)[0]) == value
    assert decode_value(encoded) == (Tag.INTEGER, value)


def test_integer_is_minimal() -> None:
    # X.690 8.3.2: no leading 0x00 / 0xff octet that the sign does not need
    assert enc_int(-128) == b"\x02\x01\x80"
    assert enc_int(-129) == b"\x02\x02\xff\x7f"
    assert enc_int(128) == b"\x02\x02\x00\x80"
    assert enc_int(-(2**31)) == b"\x02\x04\x80\x00\x00\x00"


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (Tag.OCTET_STRING, b""),
        (Tag.OCTET_STRING, b"\x00\xff" * 200),  # long length form
        (Tag.OCTET_STRING, bytes(70000)),  # three-octet length
        (Tag.IP_ADDRESS, bytes((192, 0, 2, 1))),
        (Tag.COUNTER32, 0),
        (Tag.COUNTER32, 2**32 - 1),
        (Tag.GAUGE32, 2**31),
        (Tag.TIMETICKS, 123456789),
        (Tag.COUNTER64, 2**64 - 1),
        (Tag.COUNTER64, 2**63),
        (Tag.COUNTER64, 0),
        (Tag.OPAQUE, b"\x9f\x78\x04\x42\xf6\x00\x00"),
        (Tag.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 4491, 2, 1, 20)),
        (Tag.NULL, None),
        (Tag.NO_SUCH_OBJECT, None),
        (Tag.NO_SUCH_INSTANCE, None),
        (Tag.END_OF_MIB_VIEW, None),
    ],
)
def test_value_round_trip(tag: Tag, value: Any) -> None:
    assert decode_value(enc_value(tag, value)) == (tag, value)


def test_unsigned_leading_zero_and_range() -> None:
    assert enc_value(Tag.COUNTER32, 2**32 - 1) == b"\x41\x05\x00\xff\xff\xff\xff"
    assert enc_value(Tag.COUNTER64, 2**64 - 1) == b"\x46\x09\x00" + b"\xff" * 8
    with pytest.raises(SnmpWireError):
        enc_value(Tag.COUNTER32, 2**32)
    with pytest.raises(SnmpWireError):
        enc_value(Tag.GAUGE32, -1)
    with pytest.raises(SnmpWireError):
        enc_value(Tag.COUNTER64, 2**64)


@pytest.mark.parametrize(
    "oid",
    [
        (0, 0),
        (1, 3),
        (1, 39),
        (2, 0),
        (2, 999),
        (2, 2**32 - 1),
        (1, 3, 6, 1, 4, 1, 2**32 - 1),
        (1, 3, 127, 128, 16383, 16384, 2097151, 2097152, 268435455, 268435456),
        (1, 3) + (1,) * 126,
    ],
)
def test_oid_round_trip_and_pyasn1_agree(oid: tuple[int, ...]) -> None:
    encoded = enc_oid(oid)
    assert encoded == pyasn1_encoder.encode(univ.ObjectIdentifier(oid))
    assert decode_oid(encoded) == oid


@pytest.mark.parametrize(
    "bad",
    [
        b"\x06\x00",  # empty
        b"\x06\x01\x80",  # truncated sub-identifier
        b"\x06\x03\x2b\x80\x01",  # non-minimal
        b"\x06\x06\x2b\x90\x80\x80\x80\x00",  # sub-id over 2^32-1
        b"\x06\x02\x2b",  # length past end
        b"\x06\x82" + (129).to_bytes(2, "big") + b"\x2b" + b"\x01" * 128,  # 130 sub-ids
    ],
)
def test_bad_oids_raise_wire_error(bad: bytes) -> None:
    with pytest.raises(SnmpWireError):
        decode_oid(bad)


def test_encode_rejects_bad_oids() -> None:
    for oid in [(1,), (3, 1), (1, 40), (1, 3, -1), (1, 3, 2**32), (1, 3) + (1,) * 127]:
        with pytest.raises(SnmpWireError):
            enc_oid(oid)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 255, 256, 65535, 65536, 2**24])
def test_length_forms(n: int) -> None:
    header = b"\x04" + enc_len(n)
    tag, start, stop = read_tlv(header + bytes(n), 0, len(header) + n)
    assert (tag, start, stop) == (4, len(header), len(header) + n)
    if n < 128:
        assert len(header) == 2


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x04",
        b"\x04\x80\x00\x00",  # indefinite length
        b"\x04\x85\x00\x00\x00\x00\x01",  # 5 length octets
        b"\x04\x82\x01",  # truncated length
        b"\x1f\x01\x00",  # high tag number
        b"\x02\x00",  # empty INTEGER
        b"\x05\x01\x00",  # NULL with content
        b"\x41\x06\x01\x00\x00\x00\x00\x00",  # Counter32 too long
        b"\x99\x00",  # unknown tag
    ],
)
def test_bad_values_raise_wire_error(bad: bytes) -> None:
    with pytest.raises(SnmpWireError):
        dec_value(bad, 0, len(bad))


def _v2c_get() -> bytes:
    vbl = encode_varbind_list(
        [
            ((1, 3, 6, 1, 2, 1, 1, 1, 0), Tag.NULL, None),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 7), Tag.NULL, None),
        ]
    )
    return encode_community(1, b"public", encode_pdu(PduType.GET, 0x12345678, 0, 0, vbl))


def test_community_message_round_trip() -> None:
    data = _v2c_get()
    msg = decode_message(data)
    assert isinstance(msg, CommunityMessage)
    assert (msg.version, msg.community) == (1, b"public")
    assert msg.pdu.type is PduType.GET and msg.pdu.request_id == 0x12345678
    assert [vb[0][-1] for vb in msg.pdu.varbinds] == [0, 7]
    assert msg.pdu.raw_varbinds == encode_varbind_list(msg.pdu.varbinds)
    assert pdu_bytes(msg.pdu) in data


def test_getbulk_fields_and_negative_request_id() -> None:
    pdu = Pdu(PduType.GETBULK, -5, 2, 25, [((1, 3, 6), Tag.NULL, None)])
    msg = decode_message(encode_community(1, b"c", pdu_bytes(pdu)))
    assert isinstance(msg, CommunityMessage)
    assert msg.pdu.request_id == -5
    assert (msg.pdu.non_repeaters, msg.pdu.max_repetitions) == (2, 25)


def test_v3_message_round_trip_with_auth_offset() -> None:
    usm = UsmSecurityParameters(
        b"\x80\x00\x1f\x88\x04engine", 3, 1234, b"admin", bytes(12), b"saltsalt"
    )
    scoped = encode_scoped_pdu(
        b"\x80\x00\x1f\x88\x04engine",
        b"",
        encode_pdu(PduType.GET, 1, 0, 0, encode_varbind_list([])),
    )
    flags = FLAG_AUTH | FLAG_REPORTABLE
    data, offset = encode_v3(77, 65507, flags, usm, scoped)
    assert data[offset : offset + 12] == bytes(12)
    msg = decode_message(data)
    assert isinstance(msg, V3Message)
    assert (msg.msg_id, msg.max_size, msg.flags, msg.security_model) == (77, 65507, flags, 3)
    assert msg.usm == usm and msg.auth_offset == offset
    assert msg.scoped_pdu is not None and msg.scoped_pdu.pdu.request_id == 1
    enc, _ = encode_v3(78, 1500, FLAG_AUTH | FLAG_PRIV, usm, tlv(Tag.OCTET_STRING, b"cipher"))
    msg2 = decode_message(enc)
    assert isinstance(msg2, V3Message) and msg2.encrypted_pdu == b"cipher"
    assert decode_scoped_pdu(scoped + b"\x00\x00").pdu.request_id == 1  # padding ignored


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d + b"\x00",  # trailing garbage
        lambda d: d[:-1],  # truncated
        lambda d: d.replace(b"\x02\x01\x01", b"\x02\x01\x07", 1),  # unsupported version
        lambda d: d.replace(b"\xa0", b"\xa4", 1),  # trap v1 PDU
    ],
)
def test_bad_messages_raise_wire_error(mutate: Any) -> None:
    with pytest.raises(SnmpWireError):
        decode_message(mutate(_v2c_get()))


def test_v3_priv_without_auth_rejected() -> None:
    usm = UsmSecurityParameters(b"engine-id", 0, 0, b"u")
    data, _ = encode_v3(1, 1500, FLAG_PRIV, usm, tlv(Tag.OCTET_STRING, b"x"))
    with pytest.raises(SnmpWireError):
        decode_message(data)
