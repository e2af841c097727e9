"""Hand-written BER for the SNMP subset of ASN.1 (RFC 3416 section 3, RFC 2578 section 7.1).

Only the definite-length, low-tag-number forms that SNMP uses are accepted. Every decode
problem raises :class:`SnmpWireError`; nothing else escapes on malformed input.

Values are plain Python objects: ``int`` for INTEGER and the unsigned application types,
``bytes`` for OCTET STRING, IpAddress and Opaque, ``tuple[int, ...]`` for OBJECT IDENTIFIER
and ``None`` for NULL and the three exception values.
"""

from __future__ import annotations

import enum
from typing import Any, Final

OID = tuple[int, ...]

MAX_OID_LEN: Final = 128  # RFC 2578 section 3.5
MAX_SUBID: Final = 0xFFFFFFFF
MAX_INT32: Final = 0x7FFFFFFF
MIN_INT32: Final = -0x80000000
MAX_UINT32: Final = 0xFFFFFFFF
MAX_UINT64: Final = 0xFFFFFFFFFFFFFFFF


class SnmpWireError(ValueError):
    """A datagram or value cannot be encoded or decoded as SNMP BER."""


class Tag(enum.IntEnum):
    """BER identifier octets used by SNMP (RFC 3416 section 3, RFC 2578 section 7.1)."""

    INTEGER = 0x02
    OCTET_STRING = 0x04
    NULL = 0x05
    OBJECT_IDENTIFIER = 0x06
    SEQUENCE = 0x30
    IP_ADDRESS = 0x40
    COUNTER32 = 0x41
    GAUGE32 = 0x42  # also Unsigned32
    TIMETICKS = 0x43
    OPAQUE = 0x44
    COUNTER64 = 0x46
    NO_SUCH_OBJECT = 0x80
    NO_SUCH_INSTANCE = 0x81
    END_OF_MIB_VIEW = 0x82


UNSIGNED32: Final = Tag.GAUGE32

_TAG_BY_BYTE: Final[dict[int, Tag]] = {int(t): t for t in Tag if t is not Tag.SEQUENCE}
_MAX_FIRST: Final = MAX_SUBID + 80  # first encoded arc may carry 2.x with x up to MAX_SUBID
_UNSIGNED32_TAGS: Final = frozenset({Tag.COUNTER32, Tag.GAUGE32, Tag.TIMETICKS})
_EXCEPTION_TAGS: Final = frozenset(
    {Tag.NO_SUCH_OBJECT, Tag.NO_SUCH_INSTANCE, Tag.END_OF_MIB_VIEW, Tag.NULL}
)

# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------

_BYTE: Final = tuple(bytes((i,)) for i in range(256))
_INT_SMALL: Final = tuple(bytes((0x02, 1, i)) for i in range(128))

NULL_TLV: Final = b"\x05\x00"
NO_SUCH_OBJECT_TLV: Final = b"\x80\x00"
NO_SUCH_INSTANCE_TLV: Final = b"\x81\x00"
END_OF_MIB_VIEW_TLV: Final = b"\x82\x00"


def enc_len(n: int) -> bytes:
    """Definite-length octets for a content length ``n`` (X.690 section 8.1.3)."""
    if n < 0x80:
        return _BYTE[n]
    if n < 0x100:
        return b"\x81" + _BYTE[n]
    if n < 0x10000:
        return b"\x82" + n.to_bytes(2, "big")
    size = (n.bit_length() + 7) // 8
    return _BYTE[0x80 | size] + n.to_bytes(size, "big")


def tlv(tag: int, body: bytes) -> bytes:
    """One TLV: ``tag`` byte, definite length, ``body``."""
    n = len(body)
    if n < 0x80:
        return _BYTE[tag] + _BYTE[n] + body
    return _BYTE[tag] + enc_len(n) + body


def enc_int(value: int) -> bytes:
    """INTEGER TLV, two's complement, minimal length (X.690 section 8.3)."""
    if 0 <= value < 0x80:
        return _INT_SMALL[value]
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
    return b"\x02" + _BYTE[size] + value.to_bytes(size, "big", signed=True)


def enc_unsigned(tag: int, value: int, limit: int = MAX_UINT32) -> bytes:
    """Counter32 / Gauge32 / TimeTicks / Counter64 TLV (non-negative INTEGER encoding)."""
    if value < 0 or value > limit:
        raise SnmpWireError(f"value {value} out of range for tag 0x{tag:02x}")
    size = (value.bit_length() + 8) // 8
    return _BYTE[tag] + _BYTE[size] + value.to_bytes(size, "big")


def enc_octets(value: bytes, tag: int = Tag.OCTET_STRING) -> bytes:
    """OCTET STRING (or IpAddress / Opaque) TLV."""
    n = len(value)
    if n < 0x80:
        return _BYTE[tag] + _BYTE[n] + value
    return _BYTE[tag] + enc_len(n) + value


_SUBID_CACHE: Final = tuple(bytes((i,)) for i in range(128))


def enc_subid(v: int) -> bytes:
    """Base-128 encoding of one sub-identifier (X.690 section 8.19.2)."""
    if v < 0x80:
        if v < 0:
            raise SnmpWireError("negative sub-identifier")
        return _SUBID_CACHE[v]
    out = bytearray((v & 0x7F,))
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    out.reverse()
    return bytes(out)


def enc_subids(subids: OID) -> bytes:
    """Concatenated base-128 sub-identifiers (no first-pair folding): an index suffix."""
    for v in subids:
        if v < 0 or v > MAX_SUBID:
            raise SnmpWireError(f"sub-identifier {v} out of range")
    if all(v < 0x80 for v in subids):
        return bytes(subids)
    return b"".join(enc_subid(v) for v in subids)


def enc_oid_body(oid: OID) -> bytes:
    """Content octets of an OBJECT IDENTIFIER; the first two arcs fold into one (X.690 8.19.4)."""
    if len(oid) < 2 or len(oid) > MAX_OID_LEN:
        raise SnmpWireError(f"OID must have 2..{MAX_OID_LEN} sub-identifiers")
    first, second = oid[0], oid[1]
    if first > 2 or (first < 2 and second > 39) or first < 0 or second < 0:
        raise SnmpWireError("invalid first two OID arcs")
    if second > MAX_SUBID:
        raise SnmpWireError(f"sub-identifier {second} out of range")
    return enc_subid(first * 40 + second) + enc_subids(oid[2:])


def enc_oid(oid: OID) -> bytes:
    """OBJECT IDENTIFIER TLV."""
    return tlv(Tag.OBJECT_IDENTIFIER, enc_oid_body(oid))


def enc_value(tag: Tag | int, value: Any) -> bytes:
    """TLV for a varbind value of the given tag."""
    if tag == Tag.INTEGER:
        if not isinstance(value, int):
            raise SnmpWireError("INTEGER value must be int")
        return enc_int(value)
    if tag == Tag.OCTET_STRING or tag == Tag.IP_ADDRESS or tag == Tag.OPAQUE:
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise SnmpWireError("octet value must be bytes")
        return enc_octets(bytes(value), tag)
    if tag in _UNSIGNED32_TAGS:
        if not isinstance(value, int):
            raise SnmpWireError("unsigned value must be int")
        return enc_unsigned(tag, value)
    if tag == Tag.COUNTER64:
        if not isinstance(value, int):
            raise SnmpWireError("Counter64 value must be int")
        return enc_unsigned(tag, value, MAX_UINT64)
    if tag == Tag.OBJECT_IDENTIFIER:
        return enc_oid(tuple(value))
    if tag in _EXCEPTION_TAGS:
        return _BYTE[tag] + b"\x00"
    raise SnmpWireError(f"cannot encode tag 0x{int(tag):02x}")


def enc_varbind(oid: OID, tag: Tag | int, value: Any) -> bytes:
    """One VarBind SEQUENCE { name, value }."""
    return tlv(Tag.SEQUENCE, enc_oid(oid) + enc_value(tag, value))


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one TLV header at ``pos``; return ``(tag, body_start, body_end)``.

    Rejects high tag numbers, the indefinite form and lengths running past ``end``.
    """
    if pos + 2 > end:
        raise SnmpWireError("truncated TLV header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise SnmpWireError("high tag number form not used by SNMP")
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        count = n & 0x7F
        if count == 0:
            raise SnmpWireError("indefinite length not allowed")
        if count > 4:
            raise SnmpWireError("length field too long")
        if pos + count > end:
            raise SnmpWireError("truncated length")
        n = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + n > end:
        raise SnmpWireError("TLV runs past its container")
    return tag, pos, pos + n


def expect(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """Read a TLV that must carry ``tag``; return ``(body_start, body_end)``."""
    got, start, stop = read_tlv(data, pos, end)
    if got != tag:
        raise SnmpWireError(f"expected tag 0x{tag:02x}, got 0x{got:02x}")
    return start, stop


def dec_int_body(data: bytes, start: int, stop: int) -> int:
    """Signed INTEGER content octets."""
    if stop <= start:
        raise SnmpWireError("empty INTEGER")
    if stop - start > 9:
        raise SnmpWireError("INTEGER too long")
    return int.from_bytes(data[start:stop], "big", signed=True)


def dec_uint_body(data: bytes, start: int, stop: int, max_len: int = 5) -> int:
    """Unsigned application-type content octets (Counter32, Gauge32, TimeTicks, Counter64).

    Decoded as unsigned, which also tolerates encoders that omit the leading zero octet.
    """
    if stop <= start:
        raise SnmpWireError("empty unsigned value")
    if stop - start > max_len:
        raise SnmpWireError("unsigned value too long")
    return int.from_bytes(data[start:stop], "big")


def dec_int(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read an INTEGER TLV; return ``(value, next_pos)``."""
    start, stop = expect(data, pos, end, Tag.INTEGER)
    return dec_int_body(data, start, stop), stop


def dec_octets(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """Read an OCTET STRING TLV; return ``(value, next_pos)``."""
    start, stop = expect(data, pos, end, Tag.OCTET_STRING)
    return data[start:stop], stop


def dec_oid_body(data: bytes, start: int, stop: int) -> OID:
    """OBJECT IDENTIFIER content octets to a tuple (X.690 section 8.19)."""
    if stop <= start:
        raise SnmpWireError("empty OBJECT IDENTIFIER")
    out: list[int] = []
    v = 0
    started = False
    for i in range(start, stop):
        b = data[i]
        if b == 0x80 and not started:
            raise SnmpWireError("non-minimal sub-identifier")
        v = (v << 7) | (b & 0x7F)
        if v > _MAX_FIRST:
            raise SnmpWireError("sub-identifier too large")
        if b & 0x80:
            started = True
            continue
        started = False
        if out:
            if v > MAX_SUBID:
                raise SnmpWireError("sub-identifier too large")
            out.append(v)
            if len(out) > MAX_OID_LEN:
                raise SnmpWireError("OID too long")
        elif v < 40:
            out.extend((0, v))
        elif v < 80:
            out.extend((1, v - 40))
        else:
            out.extend((2, v - 80))
        v = 0
    if started:
        raise SnmpWireError("truncated sub-identifier")
    return tuple(out)


def dec_oid(data: bytes, pos: int, end: int) -> tuple[OID, int]:
    """Read an OBJECT IDENTIFIER TLV; return ``(oid, next_pos)``."""
    start, stop = expect(data, pos, end, Tag.OBJECT_IDENTIFIER)
    return dec_oid_body(data, start, stop), stop


def dec_value(data: bytes, pos: int, end: int) -> tuple[Tag, Any, int]:
    """Read any varbind value TLV; return ``(tag, value, next_pos)``."""
    raw, start, stop = read_tlv(data, pos, end)
    tag = _TAG_BY_BYTE.get(raw)
    if tag is None:
        raise SnmpWireError(f"unknown value tag 0x{raw:02x}")
    value: Any
    if tag is Tag.INTEGER:
        value = dec_int_body(data, start, stop)
    elif tag is Tag.OCTET_STRING or tag is Tag.IP_ADDRESS or tag is Tag.OPAQUE:
        value = data[start:stop]
    elif tag in _UNSIGNED32_TAGS:
        value = dec_uint_body(data, start, stop)
        if value > MAX_UINT32:  # 5 content octets are only valid with a leading zero
            raise SnmpWireError("unsigned 32-bit value out of range")
    elif tag is Tag.COUNTER64:
        value = dec_uint_body(data, start, stop, 9)
        if value > MAX_UINT64:
            raise SnmpWireError("Counter64 value out of range")
    elif tag is Tag.OBJECT_IDENTIFIER:
        value = dec_oid_body(data, start, stop)
    else:  # NULL and the exception values carry no content
        if stop != start:
            raise SnmpWireError("NULL / exception value with content")
        value = None
    return tag, value, stop


def decode_value(data: bytes) -> tuple[Tag, Any]:
    """Decode exactly one value TLV occupying all of ``data``."""
    tag, value, stop = dec_value(data, 0, len(data))
    if stop != len(data):
        raise SnmpWireError("trailing bytes after value")
    return tag, value


def decode_oid(data: bytes) -> OID:
    """Decode exactly one OBJECT IDENTIFIER TLV occupying all of ``data``."""
    oid, stop = dec_oid(data, 0, len(data))
    if stop != len(data):
        raise SnmpWireError("trailing bytes after OID")
    return oid
