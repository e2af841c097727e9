"""SNMP messages: v1/v2c community messages and v3 messages with a scopedPDU.

Layouts follow RFC 3416 section 3 (PDUs), RFC 1901 (community messages), RFC 3412 section 6
(SNMPv3 message) and RFC 3414 section 2.4 (UsmSecurityParameters). Decoding is strict about
structure and raises :class:`~enforcer.transport.snmpwire.ber.SnmpWireError` on any problem.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from enforcer.transport.snmpwire.ber import (
    OID,
    SnmpWireError,
    Tag,
    dec_int,
    dec_octets,
    dec_oid,
    dec_value,
    enc_int,
    enc_octets,
    enc_varbind,
    expect,
    read_tlv,
    tlv,
)

VarBind = tuple[OID, Tag, Any]

VERSION_1: Final = 0
VERSION_2C: Final = 1
VERSION_3: Final = 3
USM_SECURITY_MODEL: Final = 3

FLAG_AUTH: Final = 0x01
FLAG_PRIV: Final = 0x02
FLAG_REPORTABLE: Final = 0x04


class PduType(enum.IntEnum):
    """Context-specific constructed PDU tags (RFC 3416 section 3)."""

    GET = 0xA0
    GETNEXT = 0xA1
    RESPONSE = 0xA2
    SET = 0xA3
    TRAP_V1 = 0xA4
    GETBULK = 0xA5
    INFORM = 0xA6
    TRAP_V2 = 0xA7
    REPORT = 0xA8


_PDU_TYPES: Final[dict[int, PduType]] = {int(t): t for t in PduType if t is not PduType.TRAP_V1}


@dataclass(slots=True)
class Pdu:
    """A decoded PDU. For GETBULK, ``error_status`` / ``error_index`` hold non-repeaters /
    max-repetitions (see the properties). ``raw_varbinds`` is the VarBindList TLV exactly as
    received, so a responder can echo it (RFC 3416 section 4.2.5) without re-encoding."""

    type: PduType
    request_id: int
    error_status: int = 0
    error_index: int = 0
    varbinds: list[VarBind] = field(default_factory=list)
    raw_varbinds: bytes = b""

    @property
    def non_repeaters(self) -> int:
        return self.error_status

    @property
    def max_repetitions(self) -> int:
        return self.error_index


@dataclass(slots=True)
class CommunityMessage:
    """SNMPv1 / SNMPv2c message (RFC 1157, RFC 1901)."""

    version: int
    community: bytes
    pdu: Pdu


@dataclass(slots=True)
class UsmSecurityParameters:
    """UsmSecurityParameters (RFC 3414 section 2.4)."""

    engine_id: bytes
    engine_boots: int
    engine_time: int
    user_name: bytes
    auth_params: bytes = b""
    priv_params: bytes = b""


@dataclass(slots=True)
class ScopedPdu:
    """ScopedPDU (RFC 3412 section 6)."""

    context_engine_id: bytes
    context_name: bytes
    pdu: Pdu


@dataclass(slots=True)
class V3Message:
    """A decoded SNMPv3 message. Exactly one of ``scoped_pdu`` / ``encrypted_pdu`` is set.

    ``whole`` is the datagram and ``auth_offset`` the position of the
    msgAuthenticationParameters content in it, needed to verify the HMAC (RFC 3414 6.3.2).
    """

    msg_id: int
    max_size: int
    flags: int
    security_model: int
    usm: UsmSecurityParameters
    scoped_pdu: ScopedPdu | None
    encrypted_pdu: bytes | None
    whole: bytes = b""
    auth_offset: int = -1


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def encode_varbind_list(varbinds: Iterable[VarBind]) -> bytes:
    """VarBindList TLV from ``(oid, tag, value)`` triples."""
    return tlv(Tag.SEQUENCE, b"".join(enc_varbind(o, t, v) for o, t, v in varbinds))


def encode_pdu(
    pdu_type: int, request_id: int, error_status: int, error_index: int, varbind_list: bytes
) -> bytes:
    """PDU TLV; ``varbind_list`` is an encoded VarBindList TLV."""
    body = enc_int(request_id) + enc_int(error_status) + enc_int(error_index) + varbind_list
    return tlv(pdu_type, body)


def pdu_bytes(pdu: Pdu) -> bytes:
    """Encode a :class:`Pdu` object (uses ``varbinds``, ignores ``raw_varbinds``)."""
    return encode_pdu(
        pdu.type,
        pdu.request_id,
        pdu.error_status,
        pdu.error_index,
        encode_varbind_list(pdu.varbinds),
    )


def encode_community(version: int, community: bytes, pdu_tlv: bytes) -> bytes:
    """Community message TLV around an encoded PDU."""
    return tlv(Tag.SEQUENCE, enc_int(version) + enc_octets(community) + pdu_tlv)


def encode_usm_params(usm: UsmSecurityParameters) -> tuple[bytes, int]:
    """UsmSecurityParameters SEQUENCE; also the offset of the auth-params content in it."""
    head = (
        enc_octets(usm.engine_id)
        + enc_int(usm.engine_boots)
        + enc_int(usm.engine_time)
        + enc_octets(usm.user_name)
    )
    auth = enc_octets(usm.auth_params)
    body = head + auth + enc_octets(usm.priv_params)
    seq = tlv(Tag.SEQUENCE, body)
    auth_off = len(seq) - len(body) + len(head) + (len(auth) - len(usm.auth_params))
    return seq, auth_off


def encode_scoped_pdu(context_engine_id: bytes, context_name: bytes, pdu_tlv: bytes) -> bytes:
    """ScopedPDU SEQUENCE around an encoded PDU."""
    return tlv(Tag.SEQUENCE, enc_octets(context_engine_id) + enc_octets(context_name) + pdu_tlv)


def encode_v3(
    msg_id: int,
    max_size: int,
    flags: int,
    usm: UsmSecurityParameters,
    msg_data: bytes,
    security_model: int = USM_SECURITY_MODEL,
) -> tuple[bytes, int]:
    """SNMPv3 message; ``msg_data`` is a ScopedPDU TLV or an encrypted OCTET STRING TLV.

    Returns ``(message, auth_offset)`` where ``auth_offset`` locates the content of
    msgAuthenticationParameters, so the caller can compute and splice the HMAC.
    """
    global_data = tlv(
        Tag.SEQUENCE,
        enc_int(msg_id) + enc_int(max_size) + enc_octets(bytes((flags,))) + enc_int(security_model),
    )
    sec, auth_off = encode_usm_params(usm)
    sec_tlv = enc_octets(sec)
    inner_prefix = enc_int(VERSION_3) + global_data
    body = inner_prefix + sec_tlv + msg_data
    msg = tlv(Tag.SEQUENCE, body)
    offset = len(msg) - len(body) + len(inner_prefix) + (len(sec_tlv) - len(sec)) + auth_off
    return msg, offset


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode_varbind_list(data: bytes, start: int, stop: int) -> list[VarBind]:
    """Decode the content of a VarBindList."""
    out: list[VarBind] = []
    pos = start
    while pos < stop:
        vb_start, vb_stop = expect(data, pos, stop, Tag.SEQUENCE)
        oid, p = dec_oid(data, vb_start, vb_stop)
        tag, value, p = dec_value(data, p, vb_stop)
        if p != vb_stop:
            raise SnmpWireError("trailing bytes in VarBind")
        out.append((oid, tag, value))
        pos = vb_stop
    return out


def decode_pdu(data: bytes, pos: int, end: int) -> tuple[Pdu, int]:
    """Decode a PDU TLV at ``pos``; return ``(pdu, next_pos)``."""
    raw_tag, start, stop = read_tlv(data, pos, end)
    pdu_type = _PDU_TYPES.get(raw_tag)
    if pdu_type is None:
        raise SnmpWireError(f"unsupported PDU tag 0x{raw_tag:02x}")
    request_id, p = dec_int(data, start, stop)
    error_status, p = dec_int(data, p, stop)
    error_index, p = dec_int(data, p, stop)
    vbl_start, vbl_stop = expect(data, p, stop, Tag.SEQUENCE)
    if vbl_stop != stop:
        raise SnmpWireError("trailing bytes in PDU")
    varbinds = decode_varbind_list(data, vbl_start, vbl_stop)
    pdu = Pdu(pdu_type, request_id, error_status, error_index, varbinds, data[p:vbl_stop])
    return pdu, stop


def decode_scoped_pdu(data: bytes) -> ScopedPdu:
    """Decode a plaintext ScopedPDU; trailing bytes (cipher padding) are ignored."""
    start, stop = expect(data, 0, len(data), Tag.SEQUENCE)
    engine_id, p = dec_octets(data, start, stop)
    name, p = dec_octets(data, p, stop)
    pdu, p = decode_pdu(data, p, stop)
    if p != stop:
        raise SnmpWireError("trailing bytes in ScopedPDU")
    return ScopedPdu(engine_id, name, pdu)


def _decode_usm_params(data: bytes, base: int) -> tuple[UsmSecurityParameters, int]:
    """Decode UsmSecurityParameters from ``data``; the second value is the auth-params
    content offset relative to ``data``'s start plus ``base``."""
    start, stop = expect(data, 0, len(data), Tag.SEQUENCE)
    if stop != len(data):
        raise SnmpWireError("trailing bytes in security parameters")
    engine_id, p = dec_octets(data, start, stop)
    boots, p = dec_int(data, p, stop)
    etime, p = dec_int(data, p, stop)
    user, p = dec_octets(data, p, stop)
    auth_start, auth_stop = expect(data, p, stop, Tag.OCTET_STRING)
    priv, p = dec_octets(data, auth_stop, stop)
    if p != stop:
        raise SnmpWireError("trailing bytes in UsmSecurityParameters")
    if len(engine_id) > 32 or len(user) > 32:
        raise SnmpWireError("engine ID or user name too long")
    usm = UsmSecurityParameters(engine_id, boots, etime, user, data[auth_start:auth_stop], priv)
    return usm, base + auth_start


def _decode_v3(data: bytes, p: int, stop: int) -> V3Message:
    gstart, gstop = expect(data, p, stop, Tag.SEQUENCE)
    msg_id, q = dec_int(data, gstart, gstop)
    max_size, q = dec_int(data, q, gstop)
    flags_raw, q = dec_octets(data, q, gstop)
    model, q = dec_int(data, q, gstop)
    if q != gstop:
        raise SnmpWireError("trailing bytes in msgGlobalData")
    if len(flags_raw) != 1:
        raise SnmpWireError("msgFlags must be one octet")
    if msg_id < 0 or max_size < 484:
        raise SnmpWireError("msgID / msgMaxSize out of range")
    flags = flags_raw[0]
    if flags & FLAG_PRIV and not flags & FLAG_AUTH:
        raise SnmpWireError("privacy without authentication")  # RFC 3412 section 7.2 step 5
    sstart, sstop = expect(data, gstop, stop, Tag.OCTET_STRING)
    if model != USM_SECURITY_MODEL:
        raise SnmpWireError(f"unsupported security model {model}")
    usm, auth_offset = _decode_usm_params(data[sstart:sstop], sstart)
    raw_tag, dstart, dstop = read_tlv(data, sstop, stop)
    if dstop != stop:
        raise SnmpWireError("trailing bytes in message")
    scoped: ScopedPdu | None = None
    encrypted: bytes | None = None
    if raw_tag == Tag.OCTET_STRING:
        encrypted = data[dstart:dstop]
    elif raw_tag == Tag.SEQUENCE:
        scoped = decode_scoped_pdu(data[sstop:dstop])
    else:
        raise SnmpWireError("msgData is neither ScopedPDU nor encryptedPDU")
    return V3Message(msg_id, max_size, flags, model, usm, scoped, encrypted, data, auth_offset)


def decode_message(data: bytes) -> CommunityMessage | V3Message:
    """Decode one SNMP datagram (v1, v2c or v3)."""
    if not isinstance(data, bytes):
        data = bytes(data)
    start, stop = expect(data, 0, len(data), Tag.SEQUENCE)
    if stop != len(data):
        raise SnmpWireError("trailing bytes after message")
    version, p = dec_int(data, start, stop)
    if version in (VERSION_1, VERSION_2C):
        community, p = dec_octets(data, p, stop)
        pdu, p = decode_pdu(data, p, stop)
        if p != stop:
            raise SnmpWireError("trailing bytes in message")
        return CommunityMessage(version, community, pdu)
    if version == VERSION_3:
        return _decode_v3(data, p, stop)
    raise SnmpWireError(f"unsupported SNMP version {version}")
