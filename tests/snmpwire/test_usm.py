"""USM crypto: RFC 3414 A.3 vectors, SHA-2 (RFC 7860) and AES (RFC 3826), checked against
pysnmp's independent implementation where no published vector exists."""

from __future__ import annotations

import hashlib

import pysnmp.hlapi.v3arch.asyncio  # noqa: F401 - loads pysnmp's secmods in a working order
import pytest
from pyasn1.type import univ  # type: ignore[import-untyped,unused-ignore]
from pysnmp.proto.secmod.eso.priv.aes256 import AesBlumenthal256
from pysnmp.proto.secmod.rfc3414 import localkey
from pysnmp.proto.secmod.rfc3414.auth import hmacsha
from pysnmp.proto.secmod.rfc3826.priv import aes
from pysnmp.proto.secmod.rfc7860.auth import hmacsha2

from enforcer.transport.snmpwire.ber import SnmpWireError
from enforcer.transport.snmpwire.usm import (
    AUTH_PROTOCOLS,
    UserKeys,
    UsmError,
    aes_iv,
    extend_key_blumenthal,
    in_time_window,
    localize_key,
    localized_key,
    password_to_key,
)

ENGINE = bytes.fromhex("000000000000000000000002")


def test_rfc3414_a32_sha_password_to_key() -> None:
    assert password_to_key(b"maplesyrup", "sha1").hex() == (
        "9fb5cc0381497b3793528939ff788d5d79145211"
    )


def test_rfc3414_a32_sha_localized_key() -> None:
    assert localized_key(b"maplesyrup", ENGINE, "sha1").hex() == (
        "6695febc9288e36282235fc7151f128497b38f3f"
    )
    ku = password_to_key(b"maplesyrup", "sha1")
    assert localize_key(ku, ENGINE, "sha1").hex() == "6695febc9288e36282235fc7151f128497b38f3f"


@pytest.mark.parametrize("name", ["sha224", "sha256", "sha384", "sha512"])
def test_sha2_keys_match_pysnmp(name: str) -> None:
    hash_func = getattr(hashlib, name)
    ku = localkey.hash_passphrase(univ.OctetString(b"maplesyrup"), hash_func)
    kul = localkey.localize_key(ku, univ.OctetString(ENGINE), hash_func)
    assert password_to_key(b"maplesyrup", name) == bytes(ku)
    assert localized_key(b"maplesyrup", ENGINE, name) == bytes(kul)


SHA2_IDS = {
    "SHA-224": hmacsha2.HmacSha2.SHA224_SERVICE_ID,
    "SHA-256": hmacsha2.HmacSha2.SHA256_SERVICE_ID,
    "SHA-384": hmacsha2.HmacSha2.SAH384_SERVICE_ID,
    "SHA-512": hmacsha2.HmacSha2.SHA512_SERVICE_ID,
}


@pytest.mark.parametrize("proto", sorted(SHA2_IDS))
def test_sha2_mac_matches_pysnmp(proto: str) -> None:
    service = hmacsha2.HmacSha2(SHA2_IDS[proto])
    mac_len = AUTH_PROTOCOLS[proto].mac_len
    assert mac_len == service.digest_length
    keys = UserKeys(ENGINE, proto, b"authpassword")
    kul = localized_key(b"authpassword", ENGINE, AUTH_PROTOCOLS[proto].hash_name)
    message = b"\x30\x40" + b"head" + bytes(mac_len) + b"tail" * 5
    theirs = service.authenticate_outgoing_message(univ.OctetString(kul), message)
    assert keys.sign(message, 6) == bytes(theirs)


def test_sha1_mac_matches_pysnmp() -> None:
    keys = UserKeys(ENGINE, "SHA", b"authpassword")
    kul = localized_key(b"authpassword", ENGINE, "sha1")
    message = b"\x30\x20" + b"head" + bytes(12) + b"tail" * 3
    theirs = hmacsha.HmacSha().authenticate_outgoing_message(univ.OctetString(kul), message)
    assert keys.sign(message, 6) == bytes(theirs)


def test_blumenthal_extension_matches_pysnmp() -> None:
    theirs = AesBlumenthal256().localize_key(
        hmacsha.HmacSha.SERVICE_ID,
        univ.OctetString(password_to_key(b"maplesyrup", "sha1")),
        univ.OctetString(ENGINE),
    )
    kul = localized_key(b"maplesyrup", ENGINE, "sha1")
    assert extend_key_blumenthal(kul, 32, "sha1") == bytes(theirs)[:32]


def test_sign_verify_and_tamper() -> None:
    keys = UserKeys(ENGINE, "SHA-256", b"authpassword", "AES", b"privpassword")
    msg = b"\x30\x10" + bytes(24) + b"payload"
    signed = keys.sign(msg, 2)
    assert keys.verify(signed, 2, signed[2:26])
    tampered = signed[:-1] + b"X"
    assert not keys.verify(tampered, 2, tampered[2:26])
    assert not keys.verify(signed, 2, signed[2:20])  # wrong MAC length


def test_aes_round_trip_and_known_iv() -> None:
    keys = UserKeys(ENGINE, "SHA", b"authpassword", "AES", b"privpassword")
    salt = bytes(range(8))
    assert aes_iv(1, 2, salt) == b"\x00\x00\x00\x01\x00\x00\x00\x02" + salt
    plain = b"\x30\x05\x04\x00\x04\x01x" * 3
    cipher = keys.encrypt(plain, 1, 2, salt)
    assert len(cipher) == len(plain) and cipher != plain
    assert keys.decrypt(cipher, 1, 2, salt) == plain
    assert keys.decrypt(cipher, 1, 3, salt) != plain
    with pytest.raises(SnmpWireError):
        keys.decrypt(cipher, 1, 2, b"short")


def test_aes_matches_pysnmp_aes128() -> None:
    kul = localized_key(b"privpassword", ENGINE, "sha1")
    keys = UserKeys(ENGINE, "SHA", b"authpassword", "AES", b"privpassword")
    salt = b"\x00\x00\x00\x00\x00\x00\x00\x09"
    plain = b"scoped pdu bytes of some length"
    ours = keys.encrypt(plain, 5, 600, salt)
    theirs = aes.Aes().decrypt_data(
        univ.OctetString(kul), (5, 600, univ.OctetString(salt)), univ.OctetString(ours)
    )
    assert bytes(theirs) == plain


def test_time_window() -> None:
    assert in_time_window(5, 1000, 5, 1000)
    assert in_time_window(5, 1000, 5, 1150)
    assert not in_time_window(5, 1000, 5, 1151)
    assert not in_time_window(5, 1000, 4, 1000)
    assert not in_time_window(2147483647, 0, 2147483647, 0)


def test_report_oids() -> None:
    assert UsmError.UNKNOWN_ENGINE_ID.oid == (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0)
    assert UsmError.NOT_IN_TIME_WINDOW.oid[-2] == 2
    assert UsmError.DECRYPTION_ERROR.oid[-2] == 6


def test_bad_protocol_names() -> None:
    with pytest.raises(ValueError):
        UserKeys(ENGINE, "MD5", b"password1")
    with pytest.raises(ValueError):
        UserKeys(ENGINE, "SHA", b"password1", "DES", b"password2")
    with pytest.raises(ValueError):
        password_to_key(b"", "sha1")
