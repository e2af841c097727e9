"""SNMP sessions over pysnmp 7 (asyncio), SNMPv3 authPriv by default.

docs/docsis.md section 7: pysnmp 7 is asyncio-only (``get_cmd``, ``set_cmd``,
``bulk_walk_cmd``, ``await UdpTransportTarget.create``); ``UsmUserData`` silently
defaults to MD5/DES, so the protocols are always named here; the first request on a
new engine costs ~0.5 s, so one :class:`SnmpEngineHandle` is shared per daemon.
AES-192/256 use the Blumenthal key extension, which is what net-snmp's "AES-192" /
"AES-256" and the lab agent implement (enforcer/transport/snmpwire/usm.py).

Errors (enforcer/errors.py): no answer -> DeviceUnreachable; USM refusals ->
SnmpAuthError saying which; error-status -> SnmpStatusError (device, OID, status
name). noSuchObject / noSuchInstance / endOfMibView come back as ``Missing``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Sequence
from typing import Any

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as hl
from pysnmp.proto import errind, rfc1902, rfc1905

from enforcer.errors import (
    ConfigError,
    DeviceUnreachable,
    SnmpAuthError,
    SnmpError,
    SnmpStatusError,
)
from enforcer.transport.base import (
    Missing,
    NoMetrics,
    Oid,
    SetVarbind,
    SnmpValue,
    TransportMetrics,
    oid_str,
)
from enforcer.transport.params import SnmpAuth
from enforcer.transport.snmpwire.status import status_name

AUTH_PROTOCOLS: dict[str, Any] = {
    "SHA": hl.usmHMACSHAAuthProtocol,
    "SHA-224": hl.usmHMAC128SHA224AuthProtocol,
    "SHA-256": hl.usmHMAC192SHA256AuthProtocol,
    "SHA-384": hl.usmHMAC256SHA384AuthProtocol,
    "SHA-512": hl.usmHMAC384SHA512AuthProtocol,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "AES": hl.usmAesCfb128Protocol,
    "AES-192": hl.usmAesBlumenthalCfb192Protocol,
    "AES-256": hl.usmAesBlumenthalCfb256Protocol,
}
_AUTH_REFUSALS: dict[type[errind.ErrorIndication], str] = {
    errind.WrongDigest: "wrong digest (auth password or protocol does not match)",
    errind.UnknownUserName: "unknown user name",
    errind.UnknownEngineID: "unknown engine id",
    errind.NotInTimeWindow: "not in time window",
    errind.DecryptionError: "decryption failed (priv password or protocol does not match)",
    errind.AuthenticationFailure: "authentication failure",
    errind.AuthenticationError: "authentication error",
    errind.UnsupportedSecurityLevel: "unsupported security level",
    errind.UnknownCommunityName: "unknown community",
    errind.UnknownSecurityName: "unknown security name",
}
_MISSING = {
    rfc1905.NoSuchObject: Missing.NO_SUCH_OBJECT,
    rfc1905.NoSuchInstance: Missing.NO_SUCH_INSTANCE,
    rfc1905.EndOfMibView: Missing.END_OF_MIB_VIEW,
}


class _NoMibCompiler:
    """Stands in for pysnmp's on-demand MIB compiler. pysnmp attaches pysmi as one when
    pysmi is importable (it is, as the tool that compiles mibs/), and building pysmi's
    parser costs seconds on each engine's first request; this client speaks numeric
    OIDs only and never needs a MIB compiled, so a missing module stays missing (the
    same MibNotFoundError as without pysmi)."""

    def compile(self, *names: str, **options: Any) -> dict[str, str]:
        return dict.fromkeys(names, "missing")


def _without_mib_compiler(engine: Any) -> None:
    builder = engine.get_mib_builder()
    sources = builder.get_mib_sources()
    builder.set_mib_compiler(_NoMibCompiler(), sources[0].full_path())
    builder.set_mib_sources(*sources)  # set_mib_compiler added its directory again


class SnmpEngineHandle:
    """One pysnmp SnmpEngine per daemon, plus a guard: pysnmp's LCD keys USM users by
    name only, so two credentials with one user name but different secrets would
    overwrite each other on a shared engine. That is refused with a ConfigError."""

    def __init__(self) -> None:
        self.engine = hl.SnmpEngine()
        _without_mib_compiler(self.engine)
        self._users: dict[str, str] = {}

    def register(self, creds: SnmpAuth) -> None:
        if creds.version != "3" or creds.user is None:
            return
        assert creds.auth_password is not None and creds.priv_password is not None
        digest = hashlib.sha256("\0".join((
            creds.auth_protocol, creds.auth_password.reveal(),
            creds.priv_protocol, creds.priv_password.reveal())).encode()).hexdigest()
        seen = self._users.setdefault(creds.user, digest)
        if seen != digest:
            raise ConfigError(f"SNMPv3 user {creds.user!r} appears with different secrets in "
                              "two credential sets; give each a distinct user name")

    def close(self) -> None:
        self.engine.close_dispatcher()


def auth_data(creds: SnmpAuth) -> hl.UsmUserData | hl.CommunityData:
    """USM authPriv with explicit protocols, or v2c only when the credential allows it."""
    if creds.version == "3":
        assert creds.user and creds.auth_password and creds.priv_password  # validated
        return hl.UsmUserData(
            creds.user,
            authKey=creds.auth_password.reveal(),
            privKey=creds.priv_password.reveal(),
            authProtocol=AUTH_PROTOCOLS[creds.auth_protocol],
            privProtocol=PRIV_PROTOCOLS[creds.priv_protocol],
        )
    if not creds.allow_v2c or creds.community is None:
        raise ConfigError("SNMP v2c refused: the credential does not say allow_v2c")
    # v2c only on explicit allow_v2c (checked above); SETs need allow_v2c_writes too.
    return hl.CommunityData(creds.community.reveal(), mpModel=1)  # noqa: S508


def to_value(v: Any) -> SnmpValue:
    """A pysnmp value as a plain Python value; the RFC 3416 exceptions as Missing."""
    for cls, missing in _MISSING.items():
        if isinstance(v, cls):
            return missing
    if isinstance(v, rfc1902.ObjectIdentifier):
        return tuple(v)
    if isinstance(v, rfc1902.OctetString | rfc1902.IpAddress | rfc1902.Opaque):
        return bytes(v.asOctets())
    if isinstance(v, rfc1902.Integer | rfc1902.Integer32 | rfc1902.Unsigned32
                  | rfc1902.Counter32 | rfc1902.Counter64 | rfc1902.Gauge32
                  | rfc1902.TimeTicks):
        return int(v)
    raise SnmpError(f"unexpected SNMP value type {type(v).__name__}")


def _pysnmp_value(vb: SetVarbind) -> Any:
    if vb.type == "integer":
        return rfc1902.Integer32(int(vb.value))
    if vb.type == "unsigned32":
        return rfc1902.Unsigned32(int(vb.value))
    if vb.type == "gauge32":
        return rfc1902.Gauge32(int(vb.value))
    if vb.type == "ipaddress":
        return rfc1902.IpAddress(bytes(vb.value))
    return rfc1902.OctetString(bytes(vb.value))


class PysnmpSession:
    """An SnmpSession for one device. Create with :meth:`open`; cheap (UDP)."""

    def __init__(self, handle: SnmpEngineHandle, device: str, creds: SnmpAuth,
                 target: Any, *, max_repetitions: int, metrics: TransportMetrics) -> None:
        self._engine = handle.engine
        self.device = device
        self._creds = creds
        self._auth = auth_data(creds)
        self._target = target
        self._ctx = hl.ContextData()
        self._max_rep = max_repetitions
        self._metrics = metrics

    @classmethod
    async def open(cls, handle: SnmpEngineHandle, device: str, host: str, port: int,
                   creds: SnmpAuth, *, timeout_s: float, retries: int,
                   max_repetitions: int, metrics: TransportMetrics | None = None,
                   source_address: str | None = None) -> PysnmpSession:
        handle.register(creds)
        v6 = _is_v6(host)
        kind = hl.Udp6TransportTarget if v6 else hl.UdpTransportTarget
        try:
            target = await kind.create((host, port), timeout=timeout_s, retries=retries)
            if source_address:
                target.set_local_address((source_address, 0))
        except PySnmpError as e:
            raise DeviceUnreachable(f"bad SNMP address {host}:{port}", device=device) from e
        return cls(handle, device, creds, target, max_repetitions=max_repetitions,
                   metrics=metrics or NoMetrics())

    async def get(self, oids: Sequence[Oid]) -> list[tuple[Oid, SnmpValue]]:
        vbs = [hl.ObjectType(hl.ObjectIdentity(oid_str(o))) for o in oids]
        return await self._call("snmp.get", hl.get_cmd, vbs, oids)

    async def set(self, varbinds: Sequence[SetVarbind]) -> list[tuple[Oid, SnmpValue]]:
        if self._creds.version == "2c" and not self._creds.allow_v2c_writes:
            raise SnmpError("SET over SNMP v2c refused: the credential does not say "
                            "allow_v2c_writes", device=self.device)
        vbs = [hl.ObjectType(hl.ObjectIdentity(oid_str(v.oid)), _pysnmp_value(v))
               for v in varbinds]
        return await self._call("snmp.set", hl.set_cmd, vbs, [v.oid for v in varbinds])

    async def bulk_walk(self, oid: Oid) -> list[tuple[Oid, SnmpValue]]:
        """Every varbind under ``oid`` (GETBULK, stops at the end of the subtree)."""
        out: list[tuple[Oid, SnmpValue]] = []
        start = time.monotonic()
        gen = hl.bulk_walk_cmd(self._engine, self._auth, self._target, self._ctx, 0,
                               self._max_rep, hl.ObjectType(hl.ObjectIdentity(oid_str(oid))),
                               lookupMib=False, lexicographicMode=False)
        try:
            async for ind, status, index, vbs in gen:
                self._check("snmp.walk", ind, status, index, [oid], vbs)
                for name, val in vbs:
                    value = to_value(val)
                    if value is Missing.END_OF_MIB_VIEW:
                        return out
                    out.append((tuple(name), value))
        except PySnmpError as e:
            raise SnmpError(f"walk {oid_str(oid)} failed", device=self.device,
                            detail=type(e).__name__) from e
        finally:
            await gen.aclose()
            self._metrics.request(self.device, "snmp.walk", time.monotonic() - start)
        return out

    async def close(self) -> None:
        """Nothing to release per device: the engine and its socket are shared."""
        return None

    async def _call(self, op: str, fn: Any, vbs: list[Any],
                    oids: Sequence[Oid]) -> list[tuple[Oid, SnmpValue]]:
        start = time.monotonic()
        try:
            ind, status, index, got = await fn(self._engine, self._auth, self._target,
                                               self._ctx, *vbs, lookupMib=False)
        except PySnmpError as e:
            raise SnmpError(f"{op} failed", device=self.device,
                            detail=type(e).__name__) from e
        finally:
            self._metrics.request(self.device, op, time.monotonic() - start)
        self._check(op, ind, status, index, oids, got)
        return [(tuple(name), to_value(val)) for name, val in got]

    def _check(self, op: str, ind: Any, status: Any, index: Any, oids: Sequence[Oid],
               got: Any) -> None:
        if ind:
            if isinstance(ind, errind.RequestTimedOut):
                raise DeviceUnreachable(f"{op}: no SNMP answer within timeout and retries",
                                        device=self.device)
            for cls, what in _AUTH_REFUSALS.items():
                if isinstance(ind, cls):
                    raise SnmpAuthError(f"{op}: SNMP refused us: {what}", device=self.device)
            raise SnmpError(f"{op}: {ind}", device=self.device)
        if status and int(status):
            i = int(index or 0)
            oid = oid_str(oids[i - 1]) if 0 < i <= len(oids) else \
                ",".join(oid_str(o) for o in oids)
            raise SnmpStatusError(device=self.device, op=op, oid=oid,
                                  status=status_name(int(status)))


def _is_v6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False
