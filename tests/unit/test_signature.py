"""The webhook signature check, unit by unit: every refusal's code and message, the
limits on the headers (id length and printability, timestamp form and width, the skew
window), the out-of-the-box "no secret configured" branch, and how the signature header
is read (several entries, versions, key rotation)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest

from enforcer.api.signature import MAX_ID_LENGTH, SignatureError, sign, verify

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))
KEY, OTHER = b"k" * 32, b"o" * 32


def check(**over: Any) -> None:
    args: dict[str, Any] = {"keys": [KEY], "webhook_id": "msg_1", "timestamp": TS,
                            "body": b'{"a":1}', "now": NOW, "tolerance_s": 300}
    args.update(over)
    if "signature" not in args:
        args["signature"] = sign(args["keys"][0] if args["keys"] else KEY,
                                 args["webhook_id"] or "", args["timestamp"] or "",
                                 args["body"])
    verify(**args)


def refused(**over: Any) -> SignatureError:
    with pytest.raises(SignatureError) as e:
        check(**over)
    return e.value


def test_sign_is_standard_webhooks_v1() -> None:
    mac = hmac.new(KEY, b"msg_1.1700000000.{}", hashlib.sha256).digest()
    assert sign(KEY, "msg_1", 1700000000, b"{}") == "v1," + base64.b64encode(mac).decode()
    assert sign(KEY, "msg_1", "1700000000", b"{}") == sign(KEY, "msg_1", 1700000000, b"{}")


def test_a_correct_signature_is_accepted() -> None:
    check()


@pytest.mark.parametrize("missing", ["webhook_id", "timestamp", "signature"])
@pytest.mark.parametrize("value", [None, ""])
def test_each_missing_header_is_refused(missing: str, value: str | None) -> None:
    e = refused(**{missing: value})
    assert e.code == "missing_signature"
    assert str(e) == "webhook-id, webhook-timestamp and webhook-signature are required"


def test_webhook_id_at_the_length_limit_is_accepted_one_more_is_refused() -> None:
    assert MAX_ID_LENGTH == 200
    check(webhook_id="m" * 200)
    e = refused(webhook_id="m" * 201)
    assert (e.code, str(e)) == ("bad_webhook_id", "webhook-id is too long or not printable")


@pytest.mark.parametrize("wid", ["msg\n1", "msg\x001", "msg\x7f", "\u200bmsg", "msg\t"])
def test_a_non_printable_webhook_id_is_refused(wid: str) -> None:
    assert refused(webhook_id=wid).code == "bad_webhook_id"


@pytest.mark.parametrize("ts", ["²", "¹²³", "١٢٣", "-1", "+1700000000", " 1700000000",
                                "1700000000 ", "1.5", "1e9", "0x10", "1234567890123"])
def test_a_timestamp_that_is_not_ascii_unix_seconds_is_a_401_not_a_crash(ts: str) -> None:
    e = refused(timestamp=ts)
    assert (e.code, str(e)) == ("bad_timestamp", "webhook-timestamp must be unix seconds")


def test_timestamp_width_boundary_twelve_digits_is_read_thirteen_is_not() -> None:
    assert refused(timestamp="9" * 12).code == "stale_timestamp"  # read, then too far
    assert refused(timestamp="9" * 13).code == "bad_timestamp"
    assert refused(timestamp="0").code == "stale_timestamp"
    check(timestamp="0", now=datetime(1970, 1, 1, 0, 4, tzinfo=UTC))


def test_the_skew_window_is_inclusive_and_named() -> None:
    for skew in (-300, 300):
        check(timestamp=str(int(TS) + skew))
    for skew in (-301, 301):
        e = refused(timestamp=str(int(TS) + skew))
        assert (e.code, str(e)) == ("stale_timestamp",
                                    "webhook-timestamp is more than 300 s from our clock")
    check(timestamp=str(int(TS) + 5), tolerance_s=5)
    assert refused(timestamp=str(int(TS) + 6), tolerance_s=5).code == "stale_timestamp"


def test_no_secret_configured_refuses_every_request() -> None:
    """The out-of-the-box path: no key, so nothing can be authentic (after the header
    checks, so a malformed request still gets its own answer)."""
    e = refused(keys=[], signature=sign(KEY, "msg_1", TS, b'{"a":1}'))
    assert (e.code, str(e)) == ("no_webhook_secret", "no webhook secret is configured")
    assert refused(keys=[], timestamp="x").code == "bad_timestamp"


def test_any_configured_key_may_match_and_the_order_of_entries_does_not_matter() -> None:
    good = sign(OTHER, "msg_1", TS, b'{"a":1}')
    decoy = sign(b"z" * 32, "msg_1", TS, b'{"a":1}')
    check(keys=[KEY, OTHER], signature=good)
    check(keys=[OTHER, KEY], signature=good)
    check(keys=[KEY, OTHER], signature=f"{good} {decoy}")  # a match is kept
    check(keys=[KEY, OTHER], signature=f"{decoy}\t {good}")
    e = refused(keys=[KEY], signature=f"{good} {decoy}")
    assert (e.code, str(e)) == ("bad_signature", "webhook-signature does not match")


@pytest.mark.parametrize("entry", ["v1,", "v1", "v2,{b64}", "V1,{b64}", ",{b64}", "{b64}",
                                   "v1,{b64}x", "v1;{b64}"])
def test_only_non_empty_v1_entries_are_candidates(entry: str) -> None:
    b64 = sign(KEY, "msg_1", TS, b'{"a":1}').removeprefix("v1,")
    assert refused(signature=entry.format(b64=b64)).code == "bad_signature"


def test_the_signature_covers_id_timestamp_and_body() -> None:
    sig = sign(KEY, "msg_1", TS, b'{"a":1}')
    assert refused(signature=sig, webhook_id="msg_2").code == "bad_signature"
    assert refused(signature=sig, timestamp=str(int(TS) + 1)).code == "bad_signature"
    assert refused(signature=sig, body=b'{"a":2}').code == "bad_signature"
    assert refused(signature=sig, keys=[OTHER]).code == "bad_signature"


def test_signature_error_carries_its_code() -> None:
    e = SignatureError("some_code", "some message")
    assert isinstance(e, Exception)
    assert (e.code, str(e), e.args) == ("some_code", "some message", ("some message",))
