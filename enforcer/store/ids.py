"""Readable, sortable, unique identifiers: ``ord_01J9Z3...`` (a ULID: 48-bit millisecond
time + 80 random bits, Crockford base32, 26 characters)."""

from __future__ import annotations

import secrets
from datetime import datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(at: datetime) -> str:
    value = (int(at.timestamp() * 1000) & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_order_id(at: datetime) -> str:
    return f"ord_{ulid(at)}"


def new_lift_id(at: datetime) -> str:
    return f"lift_{ulid(at)}"
