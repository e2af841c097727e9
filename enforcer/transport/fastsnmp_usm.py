"""SNMPv3 / USM side of :mod:`enforcer.transport.fastsnmp`: the non-authoritative engine.

* discovery (RFC 3414 section 4): an unauthenticated, reportable request with an empty
  engine ID and user name draws a Report carrying the agent's snmpEngineID, boots and time;
* outgoing authPriv requests (RFC 3414 sections 3.1, 6.3.1; RFC 3826 section 3.1.3);
* incoming checks (RFC 3414 section 3.2): the HMAC is verified before anything is trusted;
  the engine ID and clock taken from the (unauthenticated) discovery Report are
  provisional until the first authenticated message, which sets the clock; from then on
  the clock moves forward only, from authenticated messages (step 7b.1), and an
  authenticated message with older boots, or the same boots and a time more than 150 s
  behind our estimate, is discarded as notInTimeWindow (step 7b.2); an unauthenticated
  notInTimeWindow Report after discovery is discarded (that Report is always
  authenticated, section 4); the scopedPDU is decrypted with the sender's boots/time
  and salt;
* Reports are turned into :class:`UsmReport` so the client can resync or fail by name.

Secrets are held only inside :class:`~enforcer.transport.snmpwire.usm.UserKeys`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Final

from enforcer.transport.fastsnmp_codec import parse_pdu
from enforcer.transport.snmpwire.ber import OID, SnmpWireError, Tag, enc_octets, read_tlv
from enforcer.transport.snmpwire.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    FLAG_REPORTABLE,
    PduType,
    UsmSecurityParameters,
    V3Message,
    decode_varbind_list,
    encode_pdu,
    encode_scoped_pdu,
    encode_v3,
)
from enforcer.transport.snmpwire.usm import UserKeys, UsmError

MAX_MSG_SIZE: Final = 65507  # msgMaxSize we accept (RFC 3412 section 6.3)
TIME_WINDOW_S: Final = 150  # RFC 3414 section 2.2.3
MAX_BOOTS: Final = 2147483647
_REPORT_BY_OID: Final[dict[OID, UsmError]] = {e.oid: e for e in UsmError}
_EMPTY_VBL: Final = b"\x30\x00"

#: What V3Engine.snapshot returns: engine ID, keys, boots, latest time, base, confirmed.
EngineState = tuple[bytes, "UserKeys | None", int, int, float, bool]

# (pdu_tag, request_id, error_status, error_index, buffer, vbl_start, vbl_stop)
Response = tuple[int, int, int, int, bytes, int, int]

USM_REPORT_TEXT: Final[dict[UsmError, str]] = {
    UsmError.UNSUPPORTED_SEC_LEVEL: "unsupported security level",
    UsmError.NOT_IN_TIME_WINDOW: "not in time window",
    UsmError.UNKNOWN_USER_NAME: "unknown user name",
    UsmError.UNKNOWN_ENGINE_ID: "unknown engine id",
    UsmError.WRONG_DIGEST: "wrong digest (auth password or protocol does not match)",
    UsmError.DECRYPTION_ERROR: "decryption error (priv password or protocol does not match)",
}


@dataclass(frozen=True, slots=True)
class UsmReport:
    """A Report-PDU answer: which usmStats counter (or other OID) and the engine's clock."""

    error: UsmError | None
    oid: OID
    engine_id: bytes
    boots: int
    engine_time: int
    authenticated: bool = False


@dataclass(frozen=True, slots=True)
class V3User:
    """Who we are: user name and protocol names; passwords stay in bytes, never logged."""

    name: bytes
    auth_proto: str
    auth_password: bytes
    priv_proto: str
    priv_password: bytes

    def __repr__(self) -> str:
        return f"V3User({self.name!r}, {self.auth_proto}/{self.priv_proto})"


class V3Engine:
    """Our view of one authoritative engine: ID, keys and clock estimate."""

    __slots__ = ("_base", "_boots", "_confirmed", "_latest", "_salt", "engine_id", "keys",
                 "stale_dropped", "user")

    def __init__(self, user: V3User) -> None:
        self.user = user
        self.engine_id = b""
        self.keys: UserKeys | None = None
        self._boots = 0
        self._latest = 0  # latestReceivedEngineTime (RFC 3414 section 2.3)
        self._base = 0.0  # monotonic time at which the engine's clock read _latest
        self._confirmed = False  # an authenticated message has come since discovery
        self._salt = int.from_bytes(os.urandom(8), "big")
        self.stale_dropped = 0  # authenticated messages outside the time window

    @property
    def discovered(self) -> bool:
        return self.keys is not None

    @property
    def confirmed(self) -> bool:
        """True once an authenticated message has proven the engine ID and clock."""
        return self._confirmed

    def forget(self) -> None:
        """Back to undiscovered (e.g. after an unknownEngineID report)."""
        self.engine_id, self.keys, self._confirmed = b"", None, False

    def snapshot(self) -> EngineState:
        """Everything :meth:`restore` needs to undo a rediscovery that was not proven."""
        return (self.engine_id, self.keys, self._boots, self._latest, self._base,
                self._confirmed)

    def restore(self, state: EngineState) -> None:
        (self.engine_id, self.keys, self._boots, self._latest, self._base,
         self._confirmed) = state

    def learn(self, report: UsmReport) -> None:
        """Take engine ID and clock from a discovery Report; localize the keys."""
        if not 5 <= len(report.engine_id) <= 32:
            raise SnmpWireError("discovery report without a valid snmpEngineID")
        u = self.user
        if report.engine_id != self.engine_id or self.keys is None:
            self.keys = UserKeys(
                report.engine_id, u.auth_proto, u.auth_password, u.priv_proto, u.priv_password
            )
            self.engine_id = report.engine_id
        self.set_clock(report.boots, report.engine_time)
        self._confirmed = False  # provisional until an authenticated message

    def set_clock(self, boots: int, engine_time: int) -> None:
        self._boots, self._latest, self._base = boots, engine_time, time.monotonic()

    def clock(self) -> tuple[int, int]:
        """Estimated (snmpEngineBoots, snmpEngineTime) of the agent now."""
        return self._boots, min(self._latest + int(time.monotonic() - self._base), 2147483647)

    @staticmethod
    def discovery(msg_id: int, request_id: int) -> bytes:
        """The discovery probe (RFC 3414 section 4): noAuthNoPriv, reportable, empty IDs."""
        pdu = encode_pdu(PduType.GET, request_id, 0, 0, _EMPTY_VBL)
        params = UsmSecurityParameters(b"", 0, 0, b"")
        msg, _ = encode_v3(msg_id, MAX_MSG_SIZE, FLAG_REPORTABLE, params,
                           encode_scoped_pdu(b"", b"", pdu))
        return msg

    def request(self, msg_id: int, pdu_tlv: bytes) -> bytes:
        """An authPriv request around an encoded PDU (RFC 3414 3.1, RFC 3826 3.1.3)."""
        keys = self.keys
        if keys is None:
            raise SnmpWireError("engine not discovered")
        boots, etime = self.clock()
        self._salt = (self._salt + 1) & 0xFFFFFFFFFFFFFFFF
        salt = self._salt.to_bytes(8, "big")
        scoped = encode_scoped_pdu(self.engine_id, b"", pdu_tlv)
        data = enc_octets(keys.encrypt(scoped, boots, etime, salt))
        params = UsmSecurityParameters(
            self.engine_id, boots, etime, self.user.name, bytes(keys.mac_len), salt
        )
        flags = FLAG_AUTH | FLAG_PRIV | FLAG_REPORTABLE
        msg, auth_off = encode_v3(msg_id, MAX_MSG_SIZE, flags, params, data)
        return keys.sign(msg, auth_off)

    def incoming(self, msg: V3Message) -> Response | UsmReport | None:
        """Check and open an answer to one of our requests.

        Returns the response, a Report, or None when the message must be dropped (failed
        authentication: it may be forged). Raises :class:`SnmpWireError` if it cannot be
        decrypted or decoded.
        """
        usm = msg.usm
        keys = self.keys
        authed = False
        if msg.flags & FLAG_AUTH:
            if keys is None or usm.engine_id != self.engine_id:
                return None
            if not keys.verify(msg.whole, msg.auth_offset, usm.auth_params):
                return None
            authed = True
            if not self._timely(usm.engine_boots, usm.engine_time):
                self.stale_dropped += 1
                return None
        if msg.scoped_pdu is not None:
            pdu = msg.scoped_pdu.pdu
            if pdu.type is PduType.REPORT:
                oid = pdu.varbinds[0][0] if pdu.varbinds else ()
                error = _REPORT_BY_OID.get(oid)
                if not authed and error is UsmError.NOT_IN_TIME_WINDOW and self.discovered:
                    return None  # sent authenticated by a real agent (RFC 3414 section 4)
                return UsmReport(error, oid, usm.engine_id, usm.engine_boots,
                                 usm.engine_time, authed)
            raise SnmpWireError("response was not encrypted")
        if not (authed and msg.flags & FLAG_PRIV) or keys is None or msg.encrypted_pdu is None:
            raise SnmpWireError("encrypted PDU without authentication")
        plain = keys.decrypt(msg.encrypted_pdu, usm.engine_boots, usm.engine_time,
                             usm.priv_params)
        tag, start, stop = read_tlv(plain, 0, len(plain))  # CFB adds no padding; be lenient
        if tag != Tag.SEQUENCE:
            raise SnmpWireError("decrypted scopedPDU is not a SEQUENCE")
        for _ in range(2):  # contextEngineID, contextName
            tag, _s, start = read_tlv(plain, start, stop)
            if tag != Tag.OCTET_STRING:
                raise SnmpWireError("malformed scopedPDU")
        pdu_tag, rid, es, ei, vstart, vstop = parse_pdu(plain, start, stop)
        if pdu_tag == PduType.REPORT:
            return _report_of(plain, vstart, vstop, usm)
        return pdu_tag, rid, es, ei, plain, vstart, vstop

    def _timely(self, boots: int, engine_time: int) -> bool:
        """RFC 3414 section 3.2 step 7b for an authenticated message: update our notion
        of the engine's clock (the first authenticated message after discovery sets it;
        later ones only move it forward), then False if the message is outside the
        time window (older boots, or the same boots and more than 150 s behind)."""
        if not self._confirmed:
            self.set_clock(boots, engine_time)
            self._confirmed = True
            return True
        local_boots, local_time = self.clock()
        if boots > local_boots or (boots == local_boots and engine_time > self._latest):
            self.set_clock(boots, engine_time)
            local_boots, local_time = boots, engine_time
        return not (local_boots >= MAX_BOOTS or boots < local_boots or (
            boots == local_boots and engine_time < local_time - TIME_WINDOW_S))


def _report_of(buf: bytes, start: int, stop: int, usm: UsmSecurityParameters) -> UsmReport:
    vbs = decode_varbind_list(buf, start, stop)
    oid = vbs[0][0] if vbs else ()
    return UsmReport(_REPORT_BY_OID.get(oid), oid, usm.engine_id, usm.engine_boots,
                     usm.engine_time, True)
