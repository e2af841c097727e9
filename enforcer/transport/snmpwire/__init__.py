"""Lean SNMP wire codec: BER, v2c/v3 messages and USM crypto, with no pyasn1 on the hot path.

Decode errors raise :class:`SnmpWireError` (a ``ValueError``); the transport boundary maps
them to :class:`enforcer.errors.SnmpError`.
"""

from enforcer.transport.snmpwire.ber import OID, SnmpWireError, Tag
from enforcer.transport.snmpwire.message import (
    CommunityMessage,
    Pdu,
    PduType,
    ScopedPdu,
    UsmSecurityParameters,
    V3Message,
    VarBind,
    decode_message,
    decode_scoped_pdu,
    encode_community,
    encode_pdu,
    encode_scoped_pdu,
    encode_v3,
    encode_varbind_list,
)
from enforcer.transport.snmpwire.usm import (
    AUTH_PROTOCOLS,
    PRIV_KEY_LENGTHS,
    UserKeys,
    UsmError,
    in_time_window,
    localize_key,
    localized_key,
    password_to_key,
)

__all__ = [
    "AUTH_PROTOCOLS",
    "OID",
    "PRIV_KEY_LENGTHS",
    "CommunityMessage",
    "Pdu",
    "PduType",
    "ScopedPdu",
    "SnmpWireError",
    "Tag",
    "UserKeys",
    "UsmError",
    "UsmSecurityParameters",
    "V3Message",
    "VarBind",
    "decode_message",
    "decode_scoped_pdu",
    "encode_community",
    "encode_pdu",
    "encode_scoped_pdu",
    "encode_v3",
    "encode_varbind_list",
    "in_time_window",
    "localize_key",
    "localized_key",
    "password_to_key",
]
