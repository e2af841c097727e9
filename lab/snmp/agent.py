"""A lean SNMPv2c / SNMPv3 (USM) responder for one simulated device.

Many agents share one asyncio loop; each owns a UDP socket. Requests are decoded with the
enforcer's BER codec, answered from a :class:`~lab.snmp.mibtree.MibTree`, and responses are
built by concatenating pre-encoded bytes. Protocol references: RFC 3416 (PDU semantics),
RFC 3412 section 7 (v3 message processing), RFC 3414 section 3.2 (USM incoming checks).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, cast

from enforcer.transport.snmpwire.ber import (
    END_OF_MIB_VIEW_TLV,
    NO_SUCH_INSTANCE_TLV,
    NO_SUCH_OBJECT_TLV,
    SnmpWireError,
    Tag,
    enc_octets,
    enc_oid_body,
    enc_unsigned,
    tlv,
)
from enforcer.transport.snmpwire.message import (
    FLAG_AUTH,
    FLAG_PRIV,
    FLAG_REPORTABLE,
    VERSION_2C,
    CommunityMessage,
    Pdu,
    PduType,
    ScopedPdu,
    UsmSecurityParameters,
    V3Message,
    decode_message,
    decode_scoped_pdu,
    encode_community,
    encode_pdu,
    encode_scoped_pdu,
    encode_v3,
)
from enforcer.transport.snmpwire.usm import UserKeys, UsmError, in_time_window
from lab.snmp.mibtree import ENCODERS, ErrorStatus, MibTree, Missing, varbind_tlv

log = logging.getLogger(__name__)

Access = Literal["ro", "rw"]

MAX_UDP_PAYLOAD: Final = 65507
MIN_VARBIND_BYTES: Final = 7  # SEQUENCE hdr 2 + OID TLV >= 3 + value TLV >= 2
EMPTY_VBL: Final = b"\x30\x00"
_REQUESTS: Final = frozenset({PduType.GET, PduType.GETNEXT, PduType.GETBULK, PduType.SET})


@dataclass
class UsmUser:
    """A USM user. ``auth_proto``: "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512" or
    None; ``priv_proto``: "AES" (128), "AES-192", "AES-256" (Blumenthal) or None. A user
    without passwords for a protocol does not use it: the security level is derived."""

    name: str
    auth_proto: str | None = "SHA"
    auth_password: str | None = None
    priv_proto: str | None = "AES"
    priv_password: str | None = None
    access: Access = "ro"


@dataclass
class AgentFaults:
    """Fault knobs, read on every request (mutate them at run time).

    ``too_big_bytes`` and ``max_response_bytes`` both bound the response message size:
    a GET / GETNEXT / SET response over the bound answers tooBig; GETBULK truncates its
    varbinds to fit (RFC 3416 section 4.2.3) and answers tooBig only if none fits.
    """

    unreachable: bool = False
    delay_s: float = 0.0
    gen_err: bool = False
    too_big_bytes: int | None = None
    max_response_bytes: int = 1472


@dataclass
class AgentStats:
    """Plain counters for the lab's control API."""

    requests: int = 0  # requests answered with a Response-PDU
    varbinds: int = 0  # varbinds in those responses
    dropped: int = 0  # datagrams not answered (malformed, unknown community, unreachable, ...)
    errors: int = 0  # responses with a non-zero error-status
    malformed: int = 0  # datagrams that failed to decode (also counted in dropped)
    reports: int = 0  # v3 report PDUs sent
    auth_failures: int = 0  # unknown community / user, wrong digest, time window, decryption

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _User:
    name: bytes
    keys: UserKeys
    level: int  # msgFlags auth/priv bits this user requires
    rw: bool


@dataclass(slots=True)
class _Outcome:
    status: int
    index: int
    vbl: bytes
    count: int


class SnmpAgent(asyncio.DatagramProtocol):
    """SNMP responder of one simulated device (v2c and v3/USM; v1 is dropped)."""

    def __init__(
        self,
        tree: MibTree,
        *,
        communities: dict[str, Access] | None,
        users: list[UsmUser],
        engine_id: bytes,
        faults: AgentFaults | None = None,
        name: str = "",
    ) -> None:
        if not 5 <= len(engine_id) <= 32:
            raise ValueError("snmpEngineID must be 5..32 octets (RFC 3411)")
        self.tree = tree
        self.engine_id = bytes(engine_id)
        self.faults = faults if faults is not None else AgentFaults()
        self.name = name
        self.stats = AgentStats()
        # Optional record of who asked when (lab.clients.ClientLog), set by the lab runner.
        self.clients: Any = None
        self.usm_stats: dict[UsmError, int] = {e: 0 for e in UsmError}
        self._communities: dict[bytes, bool] = {}
        self._users: dict[bytes, _User] = {}
        self.set_communities(communities)
        self.set_users(users)
        self._boots = 1
        self._time_base = time.monotonic()
        self._salt = int.from_bytes(os.urandom(8), "big")
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.TimerHandle] = set()
        self._host = ""
        self._port = 0

    # ------------------------------------------------------------------------------------------
    # configuration and lifecycle
    # ------------------------------------------------------------------------------------------

    def set_communities(self, communities: dict[str, Access] | None) -> None:
        """Replace the v2c communities (None or empty: v2c disabled)."""
        self._communities = {c.encode(): a == "rw" for c, a in (communities or {}).items()}

    def set_users(self, users: list[UsmUser]) -> None:
        """Replace the USM users; keys are localized to this engine (cached)."""
        table: dict[bytes, _User] = {}
        for u in users:
            auth_pw = u.auth_password.encode() if u.auth_password else None
            priv_pw = u.priv_password.encode() if u.priv_password else None
            auth = u.auth_proto if auth_pw else None
            priv = u.priv_proto if (priv_pw and auth) else None
            keys = UserKeys(self.engine_id, auth, auth_pw, priv, priv_pw if priv else None)
            level = (FLAG_AUTH if keys.auth else 0) | (FLAG_PRIV if keys.priv_proto else 0)
            table[u.name.encode()] = _User(u.name.encode(), keys, level, u.access == "rw")
        self._users = table

    @property
    def engine_boots(self) -> int:
        return self._boots

    @property
    def engine_time(self) -> int:
        return min(int(time.monotonic() - self._time_base), 2147483647)

    def reboot(self) -> None:
        """snmpEngineBoots += 1 and snmpEngineTime restarts at 0 (RFC 3414 section 2.2.2)."""
        self._boots += 1
        self._time_base = time.monotonic()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    async def start(self, host: str, port: int) -> None:
        """Bind the UDP socket; ``port`` 0 picks a free port (see :attr:`port`)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        assert self._transport is not None
        sockname = self._transport.get_extra_info("sockname")
        self._host, self._port = str(sockname[0]), int(sockname[1])

    async def stop(self) -> None:
        """Close the socket and cancel delayed answers."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        log.debug("agent %s: socket error %s", self.name, exc)

    # ------------------------------------------------------------------------------------------
    # datagram path
    # ------------------------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Any) -> None:
        stats = self.stats
        faults = self.faults
        if self.clients is not None:
            self.clients.note(str(addr[0]))
        if faults.unreachable:
            stats.dropped += 1
            return
        try:
            response = self.process(data)
        except SnmpWireError:
            stats.dropped += 1
            stats.malformed += 1
            return
        except Exception:  # never let a request take the loop down
            log.exception("agent %s: internal error on a request", self.name)
            stats.dropped += 1
            return
        if response is None:
            stats.dropped += 1
            return
        transport = self._transport
        if transport is None:
            return
        if faults.delay_s > 0 and self._loop is not None:
            handle: asyncio.TimerHandle | None = None

            def send_late() -> None:
                if handle is not None:
                    self._pending.discard(handle)
                if self._transport is not None:
                    self._transport.sendto(response, addr)

            handle = self._loop.call_later(faults.delay_s, send_late)
            self._pending.add(handle)
            return
        transport.sendto(response, addr)

    def process(self, data: bytes) -> bytes | None:
        """Answer one datagram: the response bytes, or None to stay silent.

        Raises :class:`SnmpWireError` for datagrams that do not decode.
        """
        msg = decode_message(data)
        if isinstance(msg, CommunityMessage):
            return self._process_community(msg)
        return self._process_v3(msg)

    def _size_limit(self, peer_max: int = MAX_UDP_PAYLOAD) -> int:
        faults = self.faults
        limit = min(faults.max_response_bytes, peer_max, MAX_UDP_PAYLOAD)
        if faults.too_big_bytes is not None:
            limit = min(limit, faults.too_big_bytes)
        return limit

    def _process_community(self, msg: CommunityMessage) -> bytes | None:
        if msg.version != VERSION_2C:
            return None
        rw = self._communities.get(msg.community)
        if rw is None:
            self.stats.auth_failures += 1
            return None
        pdu = msg.pdu
        if pdu.type not in _REQUESTS:
            return None
        # community message overhead: SEQUENCE, version, community, PDU header, 3 INTEGERs
        overhead = len(msg.community) + 38
        out = self._execute(pdu, rw, self._size_limit() - overhead)
        body = encode_pdu(PduType.RESPONSE, pdu.request_id, out.status, out.index, out.vbl)
        self._count(out)
        return encode_community(VERSION_2C, msg.community, body)

    def _count(self, out: _Outcome) -> None:
        self.stats.requests += 1
        self.stats.varbinds += out.count
        if out.status:
            self.stats.errors += 1

    # ------------------------------------------------------------------------------------------
    # PDU semantics (RFC 3416 section 4.2)
    # ------------------------------------------------------------------------------------------

    def _execute(self, pdu: Pdu, rw: bool, budget: int) -> _Outcome:
        """Run one request PDU; ``budget`` bounds the encoded VarBindList size."""
        nvb = len(pdu.varbinds)
        try:
            if self.faults.gen_err:
                return _Outcome(ErrorStatus.genErr, 1 if nvb else 0, pdu.raw_varbinds, nvb)
            if pdu.type is PduType.GETBULK:
                return self._getbulk(pdu, budget)
            if pdu.type is PduType.SET:
                if not rw:
                    return _Outcome(ErrorStatus.noAccess, 1 if nvb else 0, pdu.raw_varbinds, nvb)
                status, index = self.tree.set(pdu.varbinds)
                out = _Outcome(status, index, pdu.raw_varbinds, nvb)
            elif pdu.type is PduType.GET:
                out = self._get(pdu)
            else:
                out = self._getnext(pdu)
        except _VarbindFailure as exc:
            return _Outcome(ErrorStatus.genErr, exc.index, pdu.raw_varbinds, nvb)
        if len(out.vbl) > budget:
            return _Outcome(ErrorStatus.tooBig, 0, EMPTY_VBL, 0)
        return out

    def _get(self, pdu: Pdu) -> _Outcome:
        tree = self.tree
        parts: list[bytes] = []
        for i, (oid, _tag, _value) in enumerate(pdu.varbinds, 1):
            try:
                kind, value = tree.get(oid)
                if kind is Missing.NO_SUCH_OBJECT:
                    vt = NO_SUCH_OBJECT_TLV
                elif kind is Missing.NO_SUCH_INSTANCE:
                    vt = NO_SUCH_INSTANCE_TLV
                else:
                    vt = ENCODERS[kind](value)
            except Exception as exc:
                raise _VarbindFailure(i) from exc
            parts.append(varbind_tlv(enc_oid_body(oid), vt))
        return _Outcome(0, 0, tlv(Tag.SEQUENCE, b"".join(parts)), len(parts))

    def _getnext(self, pdu: Pdu) -> _Outcome:
        tree = self.tree
        parts: list[bytes] = []
        for i, (oid, _tag, _value) in enumerate(pdu.varbinds, 1):
            try:
                got, _last = tree.walk_encoded(oid, 1, parts)
            except Exception as exc:
                raise _VarbindFailure(i) from exc
            if not got:
                parts.append(varbind_tlv(enc_oid_body(oid), END_OF_MIB_VIEW_TLV))
        return _Outcome(0, 0, tlv(Tag.SEQUENCE, b"".join(parts)), len(parts))

    def _getbulk(self, pdu: Pdu, budget: int) -> _Outcome:
        """GETBULK (RFC 3416 section 4.2.3): non-repeaters, then max-repetitions rows.

        Stops after the first row in which every repeater is at endOfMibView, and truncates
        at a varbind boundary to fit ``budget``; tooBig only if not one varbind fits.
        """
        tree = self.tree
        vbs = pdu.varbinds
        n_non = min(max(pdu.non_repeaters, 0), len(vbs))
        max_rep = max(pdu.max_repetitions, 0)
        budget -= 4  # VarBindList header
        parts: list[bytes] = []
        size = 0
        full = False
        for i in range(n_non):
            oid = vbs[i][0]
            one: list[bytes] = []
            try:
                got, _last = tree.walk_encoded(oid, 1, one)
            except Exception as exc:
                raise _VarbindFailure(i + 1) from exc
            vb = one[0] if got else varbind_tlv(enc_oid_body(oid), END_OF_MIB_VIEW_TLV)
            if size + len(vb) > budget:
                full = True
                break
            parts.append(vb)
            size += len(vb)
        repeaters = vbs[n_non:]
        if repeaters and max_rep and not full:
            reps = min(max_rep, max(budget, 0) // (MIN_VARBIND_BYTES * len(repeaters)) + 1)
            columns: list[tuple[list[bytes], int, bytes]] = []
            for j, (oid, _tag, _value) in enumerate(repeaters):
                walked: list[bytes] = []
                try:
                    got, last = tree.walk_encoded(oid, reps, walked)
                except Exception as exc:
                    raise _VarbindFailure(n_non + j + 1) from exc
                end_vb = varbind_tlv(enc_oid_body(last), END_OF_MIB_VIEW_TLV)
                columns.append((walked, got, end_vb))
            for r in range(reps):
                all_ended = True
                for walked, got, end_vb in columns:
                    if r < got:
                        vb = walked[r]
                        all_ended = False
                    else:
                        vb = end_vb
                    if size + len(vb) > budget:
                        full = True
                        break
                    parts.append(vb)
                    size += len(vb)
                if full or all_ended:
                    break
        if not parts and vbs and full:
            return _Outcome(ErrorStatus.tooBig, 0, EMPTY_VBL, 0)
        return _Outcome(0, 0, tlv(Tag.SEQUENCE, b"".join(parts)), len(parts))

    # ------------------------------------------------------------------------------------------
    # SNMPv3 / USM (RFC 3412 section 7.2, RFC 3414 section 3.2)
    # ------------------------------------------------------------------------------------------

    def _process_v3(self, msg: V3Message) -> bytes | None:
        usm = msg.usm
        level = msg.flags & (FLAG_AUTH | FLAG_PRIV)
        if usm.engine_id != self.engine_id:
            return self._report(msg, UsmError.UNKNOWN_ENGINE_ID)
        user = self._users.get(usm.user_name)
        if user is None:
            self.stats.auth_failures += 1
            return self._report(msg, UsmError.UNKNOWN_USER_NAME)
        if level != user.level:
            # higher than the user supports (RFC 3414 3.2 step 5) or lower than the level the
            # user is configured for (the lab's access policy): both unsupportedSecLevel
            self.stats.auth_failures += 1
            return self._report(msg, UsmError.UNSUPPORTED_SEC_LEVEL)
        keys = user.keys
        if level & FLAG_AUTH:
            if not keys.verify(msg.whole, msg.auth_offset, usm.auth_params):
                self.stats.auth_failures += 1
                return self._report(msg, UsmError.WRONG_DIGEST)
            if not in_time_window(self._boots, self.engine_time, usm.engine_boots, usm.engine_time):
                self.stats.auth_failures += 1
                return self._report(msg, UsmError.NOT_IN_TIME_WINDOW, keys)
        scoped = msg.scoped_pdu
        if level & FLAG_PRIV:
            if msg.encrypted_pdu is None:
                return None
            try:
                plain = keys.decrypt(
                    msg.encrypted_pdu, usm.engine_boots, usm.engine_time, usm.priv_params
                )
                scoped = decode_scoped_pdu(plain)
            except SnmpWireError:
                self.stats.auth_failures += 1
                return self._report(msg, UsmError.DECRYPTION_ERROR)
        if scoped is None:
            return None
        pdu = scoped.pdu
        if pdu.type not in _REQUESTS:
            return None
        overhead = self._v3_overhead(usm, keys, scoped)
        out = self._execute(pdu, user.rw, self._size_limit(msg.max_size) - overhead)
        self._count(out)
        body = encode_pdu(PduType.RESPONSE, pdu.request_id, out.status, out.index, out.vbl)
        return self._encode_v3(
            msg, level, keys, scoped.context_engine_id or self.engine_id, scoped.context_name, body
        )

    @staticmethod
    def _v3_overhead(usm: UsmSecurityParameters, keys: UserKeys, scoped: ScopedPdu) -> int:
        """Upper bound of a v3 response's size minus its VarBindList (RFC 3412 section 6)."""
        fixed = 100  # headers, msgGlobalData, boots/time, PDU integers, length octets
        return (
            fixed
            + len(usm.user_name)
            + 32
            + keys.mac_len
            + 8
            + len(scoped.context_engine_id)
            + len(scoped.context_name)
        )

    def _encode_v3(
        self,
        msg: V3Message,
        level: int,
        keys: UserKeys | None,
        context_engine_id: bytes,
        context_name: bytes,
        pdu_tlv: bytes,
    ) -> bytes:
        boots, etime = self._boots, self.engine_time
        scoped = encode_scoped_pdu(context_engine_id, context_name, pdu_tlv)
        priv_params = b""
        if level & FLAG_PRIV and keys is not None:
            self._salt = (self._salt + 1) & 0xFFFFFFFFFFFFFFFF
            priv_params = self._salt.to_bytes(8, "big")
            scoped = enc_octets(keys.encrypt(scoped, boots, etime, priv_params))
        mac_len = keys.mac_len if (keys is not None and level & FLAG_AUTH) else 0
        params = UsmSecurityParameters(
            self.engine_id, boots, etime, msg.usm.user_name, bytes(mac_len), priv_params
        )
        out, auth_off = encode_v3(msg.msg_id, MAX_UDP_PAYLOAD, level, params, scoped)
        if mac_len and keys is not None:
            out = keys.sign(out, auth_off)
        return out

    def _report(
        self, msg: V3Message, error: UsmError, keys: UserKeys | None = None
    ) -> bytes | None:
        """Report-PDU carrying the incremented usmStats counter (RFC 3412 7.1 step 3).

        Sent unauthenticated, except notInTimeWindow which is authenticated so the manager
        can trust the engine boots/time it carries (RFC 3414 section 3.2 step 7b, 4).
        """
        self.usm_stats[error] += 1
        if not msg.flags & FLAG_REPORTABLE:
            return None
        self.stats.reports += 1
        scoped = msg.scoped_pdu
        request_id = scoped.pdu.request_id if scoped is not None else 0
        context_name = scoped.context_name if scoped is not None else b""
        count = self.usm_stats[error] & 0xFFFFFFFF
        vb = varbind_tlv(enc_oid_body(error.oid), enc_unsigned(Tag.COUNTER32, count))
        body = encode_pdu(PduType.REPORT, request_id, 0, 0, tlv(Tag.SEQUENCE, vb))
        level = FLAG_AUTH if keys is not None else 0
        return self._encode_v3(msg, level, keys, self.engine_id, context_name, body)


class _VarbindFailure(Exception):
    """A MIB callback failed while answering varbind ``index`` (answered with genErr)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index
