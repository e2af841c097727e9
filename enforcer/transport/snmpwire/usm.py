"""User-based Security Model crypto (RFC 3414, RFC 3826, RFC 7860).

* password-to-key and key localization (RFC 3414 A.2, with the SHA-2 hashes of RFC 7860);
* HMAC-SHA-96 (RFC 3414 section 7) and HMAC-SHA-2 with truncated MACs (RFC 7860 4.2);
* AES-128-CFB privacy (RFC 3826 section 3) and AES-192/256-CFB with the Blumenthal key
  extension (draft-blumenthal-aes-usm-04 section 3.1.2.1, net-snmp "AES-192"/"AES-256");
* the timeliness check of an authoritative engine (RFC 3414 section 3.2 step 7a);
* the usmStats counter OIDs that report PDUs carry (RFC 3414 section 5).

Localized keys are cached: password-to-key hashes one megabyte per call.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # cryptography >= 43 moved CFB to the "decrepit" namespace
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[assignment,unused-ignore]

from enforcer.transport.snmpwire.ber import OID, SnmpWireError


class UsmError(enum.Enum):
    """USM failure kinds and the usmStats counter each one reports (RFC 3414 section 5)."""

    UNSUPPORTED_SEC_LEVEL = (1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0)
    NOT_IN_TIME_WINDOW = (1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0)
    UNKNOWN_USER_NAME = (1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0)
    UNKNOWN_ENGINE_ID = (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0)
    WRONG_DIGEST = (1, 3, 6, 1, 6, 3, 15, 1, 1, 5, 0)
    DECRYPTION_ERROR = (1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0)

    @property
    def oid(self) -> OID:
        value: OID = self.value
        return value


@dataclass(frozen=True, slots=True)
class AuthProtocol:
    """An HMAC authentication protocol: hash name and truncated MAC length in octets."""

    name: str
    hash_name: str
    mac_len: int


AUTH_PROTOCOLS: Final[dict[str, AuthProtocol]] = {
    "SHA": AuthProtocol("SHA", "sha1", 12),  # HMAC-SHA-96, RFC 3414 section 7
    "SHA-224": AuthProtocol("SHA-224", "sha224", 16),  # RFC 7860 section 4.2.1
    "SHA-256": AuthProtocol("SHA-256", "sha256", 24),
    "SHA-384": AuthProtocol("SHA-384", "sha384", 32),
    "SHA-512": AuthProtocol("SHA-512", "sha512", 48),
}

PRIV_KEY_LENGTHS: Final[dict[str, int]] = {"AES": 16, "AES-192": 24, "AES-256": 32}

MAX_ENGINE_BOOTS: Final = 2147483647
TIME_WINDOW_S: Final = 150  # RFC 3414 section 2.2.3

_ONE_MB: Final = 1_048_576


@functools.lru_cache(maxsize=256)
def password_to_key(password: bytes, hash_name: str) -> bytes:
    """Ku: hash of the password repeated to 1 MB (RFC 3414 A.2.2, RFC 7860 section 9.3)."""
    if not password:
        raise ValueError("empty USM password")
    reps = _ONE_MB // len(password) + 1
    return hashlib.new(hash_name, (password * reps)[:_ONE_MB]).digest()


def localize_key(key: bytes, engine_id: bytes, hash_name: str) -> bytes:
    """Kul = H(Ku || snmpEngineID || Ku) (RFC 3414 section 2.6)."""
    return hashlib.new(hash_name, key + engine_id + key).digest()


@functools.lru_cache(maxsize=4096)
def localized_key(password: bytes, engine_id: bytes, hash_name: str) -> bytes:
    """Password-to-key then localization, cached per (password, engineID, hash)."""
    return localize_key(password_to_key(password, hash_name), engine_id, hash_name)


def extend_key_blumenthal(key: bytes, length: int, hash_name: str) -> bytes:
    """Append H(key-so-far) until ``length`` octets (draft-blumenthal-aes-usm-04 3.1.2.1)."""
    out = key
    while len(out) < length:
        out += hashlib.new(hash_name, out).digest()
    return out[:length]


def in_time_window(local_boots: int, local_time: int, msg_boots: int, msg_time: int) -> bool:
    """Timeliness check of the authoritative engine (RFC 3414 section 3.2 step 7a)."""
    if local_boots >= MAX_ENGINE_BOOTS or msg_boots != local_boots:
        return False
    return abs(msg_time - local_time) <= TIME_WINDOW_S


def aes_iv(boots: int, engine_time: int, salt: bytes) -> bytes:
    """AES-CFB IV: engineBoots(4) || engineTime(4) || salt(8) (RFC 3826 section 3.1.2.1)."""
    if len(salt) != 8:
        raise SnmpWireError("AES privacy parameters must be 8 octets")
    return (
        (boots & 0xFFFFFFFF).to_bytes(4, "big")
        + (engine_time & 0xFFFFFFFF).to_bytes(4, "big")
        + salt
    )


class UserKeys:
    """Localized keys of one user at one engine, ready to sign, verify and (de)crypt."""

    __slots__ = ("_mac", "_priv_key", "auth", "priv_proto")

    def __init__(
        self,
        engine_id: bytes,
        auth_proto: str | None,
        auth_password: bytes | None,
        priv_proto: str | None = None,
        priv_password: bytes | None = None,
    ) -> None:
        self.auth: AuthProtocol | None = None
        self.priv_proto: str | None = None
        self._mac: hmac.HMAC | None = None
        self._priv_key = b""
        if auth_proto is None or auth_password is None:
            if priv_proto is not None and priv_password is not None:
                raise ValueError("privacy requires authentication")
            return
        auth = AUTH_PROTOCOLS.get(auth_proto)
        if auth is None:
            raise ValueError(f"unsupported auth protocol {auth_proto!r}")
        self.auth = auth
        self._mac = hmac.new(
            localized_key(auth_password, engine_id, auth.hash_name), None, auth.hash_name
        )
        if priv_proto is None or priv_password is None:
            return
        key_len = PRIV_KEY_LENGTHS.get(priv_proto)
        if key_len is None:
            raise ValueError(f"unsupported privacy protocol {priv_proto!r}")
        self.priv_proto = priv_proto
        kul = localized_key(priv_password, engine_id, auth.hash_name)
        self._priv_key = extend_key_blumenthal(kul, key_len, auth.hash_name)

    @property
    def mac_len(self) -> int:
        return self.auth.mac_len if self.auth else 0

    def mac(self, message: bytes) -> bytes:
        """Truncated HMAC of a whole message whose auth-params content is zeroed."""
        if self._mac is None:
            raise SnmpWireError("user has no authentication key")
        h = self._mac.copy()
        h.update(message)
        return h.digest()[: self.mac_len]

    def sign(self, message: bytes, auth_offset: int) -> bytes:
        """Fill the zeroed auth-params (at ``auth_offset``) with the MAC (RFC 3414 6.3.1)."""
        n = self.mac_len
        return message[:auth_offset] + self.mac(message) + message[auth_offset + n :]

    def verify(self, message: bytes, auth_offset: int, received: bytes) -> bool:
        """Check a received MAC (RFC 3414 section 6.3.2)."""
        n = self.mac_len
        if n == 0 or len(received) != n or auth_offset < 0:
            return False
        zeroed = message[:auth_offset] + bytes(n) + message[auth_offset + n :]
        return hmac.compare_digest(self.mac(zeroed), received)

    def _cipher(self, boots: int, engine_time: int, salt: bytes) -> Cipher[CFB]:
        if not self._priv_key:
            raise SnmpWireError("user has no privacy key")
        iv = aes_iv(boots, engine_time, salt)
        return Cipher(algorithms.AES(self._priv_key), CFB(iv))

    def encrypt(self, plaintext: bytes, boots: int, engine_time: int, salt: bytes) -> bytes:
        """AES-CFB128 encrypt a scopedPDU (RFC 3826 section 3.1.3)."""
        enc = self._cipher(boots, engine_time, salt).encryptor()
        return enc.update(plaintext) + enc.finalize()

    def decrypt(self, ciphertext: bytes, boots: int, engine_time: int, salt: bytes) -> bytes:
        """AES-CFB128 decrypt an encryptedPDU (RFC 3826 section 3.1.4)."""
        dec = self._cipher(boots, engine_time, salt).decryptor()
        return dec.update(ciphertext) + dec.finalize()
