"""Standard Webhooks signature verification (https://www.standardwebhooks.com/).

The signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}``; the
``webhook-signature`` header holds space-separated ``v1,<base64 HMAC-SHA256>`` entries.
Any configured key may match (rotation). Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime

MAX_ID_LENGTH = 200
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    """The request is not proven to come from the escalation system (-> 401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sign(key: bytes, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """``v1,<base64>`` for one key (used by tests and by senders)."""
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(*, keys: Sequence[bytes], webhook_id: str | None, timestamp: str | None,
           signature: str | None, body: bytes, now: datetime, tolerance_s: int) -> None:
    """Raise :class:`SignatureError` unless the headers prove the body authentic."""
    if not webhook_id or not timestamp or not signature:
        raise SignatureError("missing_signature",
                             "webhook-id, webhook-timestamp and webhook-signature are required")
    if len(webhook_id) > MAX_ID_LENGTH or not webhook_id.isprintable():
        raise SignatureError("bad_webhook_id", "webhook-id is too long or not printable")
    # ASCII digits only: str.isdigit() also accepts "¹²³", which int() then refuses.
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise SignatureError("bad_timestamp", "webhook-timestamp must be unix seconds")
    if abs(now.timestamp() - int(timestamp)) > tolerance_s:
        raise SignatureError("stale_timestamp",
                             f"webhook-timestamp is more than {tolerance_s} s from our clock")
    if not keys:
        raise SignatureError("no_webhook_secret", "no webhook secret is configured")
    given = []
    for part in signature.split():
        version, _, value = part.partition(",")
        if version == "v1" and value:
            given.append(value.encode())
    matched = False
    for key in keys:
        expected = sign(key, webhook_id, timestamp, body).removeprefix("v1,").encode()
        for g in given:
            matched |= hmac.compare_digest(expected, g)
    if not matched:
        raise SignatureError("bad_signature", "webhook-signature does not match")
