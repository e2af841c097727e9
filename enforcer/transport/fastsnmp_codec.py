"""Hot-path codec of :mod:`enforcer.transport.fastsnmp`: GETBULK requests and column decoding.

Builds on :mod:`enforcer.transport.snmpwire` (same BER rules, same :class:`SnmpWireError`)
but decodes a GETBULK response's VarBindList straight into ``(index, Tag, value)`` rows per
requested column, without building full OIDs: a varbind belongs to column ``c`` when its
encoded OID starts with the column's encoded OID (BER sub-identifier encoding is
prefix-free once past the first two arcs), so only the index suffix is decoded.

Repeater varbinds of a GETBULK response come row by row, column by column (RFC 3416
section 4.2.3): varbind ``i`` answers repeater ``i % k``. An agent may truncate the list at
any varbind boundary to fit the message size, so a walk continues each column from the last
OID it received for that column.
"""

from __future__ import annotations

from typing import Any, Final

from enforcer.transport.snmpwire.ber import (
    MAX_SUBID,
    MAX_UINT32,
    MAX_UINT64,
    OID,
    SnmpWireError,
    Tag,
    dec_oid_body,
    enc_int,
    enc_oid,
    enc_oid_body,
    enc_varbind,
    read_tlv,
    tlv,
)
from enforcer.transport.snmpwire.message import PduType

Row = tuple[OID, Tag, Any]

_TAG_BY_BYTE: Final[dict[int, Tag]] = {int(t): t for t in Tag if t is not Tag.SEQUENCE}
_END_TAGS: Final = frozenset({0x80, 0x81, 0x82})  # noSuchObject/Instance, endOfMibView
_OCTET_TAGS: Final = frozenset({0x04, 0x40, 0x44})
_U32_TAGS: Final = frozenset({0x41, 0x42, 0x43})
_NULL_VALUE: Final = b"\x05\x00"


def column_prefix(column: OID) -> bytes:
    """Encoded content octets of a column OID: the byte prefix of every OID under it."""
    if len(column) < 3:
        raise SnmpWireError("a column OID needs at least 3 sub-identifiers")
    return enc_oid_body(column)


def request_varbind(oid_tlv: bytes) -> bytes:
    """VarBind ``{ name, NULL }`` from an already encoded OID TLV (RFC 3416 section 3)."""
    return tlv(0x30, oid_tlv + _NULL_VALUE)


def varbind_list(oids: list[OID]) -> bytes:
    """VarBindList of NULL-valued varbinds, as GET and GETBULK requests carry."""
    return tlv(0x30, b"".join(request_varbind(enc_oid(o)) for o in oids))


def bulk_pdu(request_id: int, max_repetitions: int, oid_tlvs: list[bytes]) -> bytes:
    """GetBulkRequest-PDU with non-repeaters 0 (RFC 3416 section 4.2.3)."""
    vbl = tlv(0x30, b"".join(request_varbind(o) for o in oid_tlvs))
    body = enc_int(request_id) + enc_int(0) + enc_int(max_repetitions) + vbl
    return tlv(PduType.GETBULK, body)


def get_pdu(request_id: int, oids: list[OID]) -> bytes:
    """GetRequest-PDU (RFC 3416 section 4.2.1)."""
    body = enc_int(request_id) + enc_int(0) + enc_int(0) + varbind_list(oids)
    return tlv(PduType.GET, body)


def varbinds_tlv(varbinds: list[tuple[OID, int, Any]]) -> bytes:
    """VarBindList of ``(oid, tag, value)`` varbinds, as a SET carries."""
    return tlv(0x30, b"".join(enc_varbind(o, t, v) for o, t, v in varbinds))


def set_pdu(request_id: int, vbl: bytes) -> bytes:
    """SetRequest-PDU around an encoded VarBindList (RFC 3416 section 4.2.5)."""
    return tlv(PduType.SET, enc_int(request_id) + enc_int(0) + enc_int(0) + vbl)


def _int_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    tag, start, stop = read_tlv(data, pos, end)
    if tag != 0x02 or stop <= start or stop - start > 9:
        raise SnmpWireError("expected an INTEGER")
    return int.from_bytes(data[start:stop], "big", signed=True), stop


def parse_pdu(data: bytes, pos: int, end: int) -> tuple[int, int, int, int, int, int]:
    """Header of a PDU TLV at ``pos`` that must fill ``end``.

    Returns ``(pdu_tag, request_id, error_status, error_index, vbl_start, vbl_stop)`` where
    ``vbl_start:vbl_stop`` is the content of the VarBindList.
    """
    pdu_tag, start, stop = read_tlv(data, pos, end)
    if stop != end:
        raise SnmpWireError("trailing bytes after PDU")
    request_id, p = _int_at(data, start, stop)
    error_status, p = _int_at(data, p, stop)
    error_index, p = _int_at(data, p, stop)
    tag, vstart, vstop = read_tlv(data, p, stop)
    if tag != 0x30 or vstop != stop:
        raise SnmpWireError("malformed VarBindList")
    return pdu_tag, request_id, error_status, error_index, vstart, vstop


def parse_community(data: bytes) -> tuple[int, bytes, int]:
    """A v1/v2c message: ``(version, community, pdu_pos)``; the PDU runs to the end."""
    tag, start, stop = read_tlv(data, 0, len(data))
    if tag != 0x30 or stop != len(data):
        raise SnmpWireError("message is not one SEQUENCE")
    version, p = _int_at(data, start, stop)
    tag, cstart, cstop = read_tlv(data, p, stop)
    if tag != 0x04:
        raise SnmpWireError("expected community OCTET STRING")
    return version, data[cstart:cstop], cstop


def _length(data: bytes, pos: int, first: int, end: int) -> tuple[int, int]:
    """Long-form definite length whose first octet ``first`` sits at ``pos - 1``."""
    count = first & 0x7F
    if count == 0 or count > 4 or pos + count > end:
        raise SnmpWireError("bad length octets")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def _index(sub: bytes) -> OID:
    """Base-128 sub-identifiers of an OID suffix (X.690 section 8.19.2)."""
    out: list[int] = []
    v = 0
    for b in sub:
        if b & 0x80:
            if v == 0 and b == 0x80:
                raise SnmpWireError("non-minimal sub-identifier")
            v = (v | (b & 0x7F)) << 7
            if v > MAX_SUBID:
                raise SnmpWireError("sub-identifier too large")
        else:
            out.append(v | b)
            v = 0
    if v or sub[-1] & 0x80:
        raise SnmpWireError("truncated sub-identifier")
    return tuple(out)


def _value(t: int, data: bytes, start: int, stop: int) -> Any:
    """A varbind value other than OCTET STRING / INTEGER (the hot ones are inlined)."""
    n = stop - start
    if t in _OCTET_TAGS:
        return data[start:stop]
    if t in _U32_TAGS or t == 0x46:
        if n == 0 or n > (5 if t != 0x46 else 9):
            raise SnmpWireError("bad unsigned value length")
        v = int.from_bytes(data[start:stop], "big")
        if v > (MAX_UINT32 if t != 0x46 else MAX_UINT64):
            raise SnmpWireError("unsigned value out of range")
        return v
    if t == 0x06:
        return dec_oid_body(data, start, stop)
    if t == 0x05:
        if n:
            raise SnmpWireError("NULL with content")
        return None
    raise SnmpWireError(f"unknown value tag 0x{t:02x}")


def decode_columns(
    data: bytes,
    start: int,
    stop: int,
    prefixes: list[bytes],
    sinks: list[list[Row]],
    lasts: list[bytes],
    last_index: list[OID],
    ended: list[bool],
) -> int:
    """Decode the VarBindList content ``data[start:stop]`` of a GETBULK response.

    ``prefixes[c]`` is the encoded column OID of repeater ``c``; rows under it go to
    ``sinks[c]`` as ``(index, Tag, value)``. ``lasts[c]`` receives the OID TLV of the last
    row (the next request's start), ``last_index[c]`` its index, which must increase
    (else the agent loops). A varbind outside its column, endOfMibView or a noSuch* value
    sets ``ended[c]``; later varbinds of an ended column are skipped. Returns the number of
    varbinds in the list. Raises :class:`SnmpWireError` on malformed input.
    """
    k = len(prefixes)
    if k == 0:
        raise SnmpWireError("no columns")
    col = 0
    pos = start
    n = 0
    tag_of = _TAG_BY_BYTE
    from_bytes = int.from_bytes
    while pos < stop:
        if pos + 2 > stop or data[pos] != 0x30:
            raise SnmpWireError("expected a VarBind SEQUENCE")
        ln = data[pos + 1]
        p = pos + 2
        if ln & 0x80:
            ln, p = _length(data, p, ln, stop)
        vb_end = p + ln
        if vb_end > stop or p + 2 > vb_end or data[p] != 0x06:
            raise SnmpWireError("malformed VarBind name")
        ol = data[p + 1]
        o_start = p + 2
        if ol & 0x80:
            ol, o_start = _length(data, o_start, ol, vb_end)
        o_end = o_start + ol
        if ol == 0 or o_end + 2 > vb_end:
            raise SnmpWireError("malformed VarBind")
        t = data[o_end]
        vl = data[o_end + 1]
        v_start = o_end + 2
        if vl & 0x80:
            vl, v_start = _length(data, v_start, vl, vb_end)
        if v_start + vl != vb_end:
            raise SnmpWireError("VarBind value does not fill its SEQUENCE")
        c = col
        col = col + 1 if col + 1 < k else 0
        pos = vb_end
        n += 1
        if ended[c]:
            continue
        prefix = prefixes[c]
        plen = len(prefix)
        if t in _END_TAGS or ol <= plen or not data.startswith(prefix, o_start):
            if t not in _END_TAGS:
                dec_oid_body(data, o_start, o_end)  # still reject a malformed name
            ended[c] = True
            continue
        a = o_start + plen
        if o_end - a == 1 and data[a] < 0x80:
            index: OID = (data[a],)
        elif o_end - a == 2 and data[a] > 0x80 and data[a + 1] < 0x80:
            # one sub-identifier of two octets (128..16383, e.g. a modem's row id);
            # 0x80 first would be non-minimal: _index refuses it
            index = (((data[a] & 0x7F) << 7) | data[a + 1],)
        else:
            index = _index(data[a:o_end])
        if index <= last_index[c]:
            raise SnmpWireError("agent returned a non-increasing OID")
        if t == 0x04:
            value: Any = data[v_start:vb_end]
        elif t == 0x02:
            if vl == 0 or vl > 9:
                raise SnmpWireError("bad INTEGER length")
            value = from_bytes(data[v_start:vb_end], "big", signed=True)
        else:
            value = _value(t, data, v_start, vb_end)
        sinks[c].append((index, tag_of[t], value))
        lasts[c] = data[p:o_end]
        last_index[c] = index
    if pos != stop:
        raise SnmpWireError("VarBindList overruns")
    return n
