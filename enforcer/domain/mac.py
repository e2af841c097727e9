"""MAC address value type.

Accepts every common notation (``00:11:22:33:44:55``, ``00-11-22-33-44-55``,
``0011.2233.4455``, ``001122334455``, any case) and refuses addresses that cannot be
a device's own: broadcast, multicast (group bit set) and all-zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import total_ordering
from typing import Any

from enforcer.errors import MacError

_HEX = re.compile(r"^[0-9a-f]{12}$")
_COLONS = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$")
_SEPARATED = re.compile(r"^[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(\1[0-9a-f]{1,2}){4}$")
_DOTTED = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")


@total_ordering
class Mac:
    """An immutable, validated unicast MAC address. ``str(mac)`` is the canonical form
    ``00:11:22:33:44:55`` (lower case, colons)."""

    __slots__ = ("_b",)
    _b: bytes

    def __init__(self, value: str | bytes | Mac, *, allow_group: bool = False) -> None:
        if isinstance(value, Mac):
            raw = value._b
        elif isinstance(value, bytes | bytearray):
            if len(value) != 6:
                raise MacError(f"a MAC address has 6 octets, got {len(value)}")
            raw = bytes(value)
        elif isinstance(value, str):
            raw = _parse(value)
        else:
            raise MacError(f"not a MAC address: {type(value).__name__}")
        if not allow_group:
            _check_unicast(raw, value)
        self._b = raw

    @classmethod
    def from_oid_index(cls, index: tuple[int, ...]) -> Mac:
        """A MAC used as a table index: six decimal sub-identifiers, no length prefix."""
        if len(index) != 6 or any(not 0 <= x <= 255 for x in index):
            raise MacError(f"not a MAC index: {'.'.join(map(str, index))}")
        return cls(bytes(index), allow_group=True)

    @property
    def packed(self) -> bytes:
        return self._b

    @property
    def oid_index(self) -> tuple[int, ...]:
        return tuple(self._b)

    @property
    def oid_suffix(self) -> str:
        return ".".join(str(b) for b in self._b)

    def dotted(self) -> str:
        """Cisco / ARRIS / Casa CLI form ``xxxx.xxxx.xxxx``."""
        h = self._b.hex()
        return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"

    def bare(self, upper: bool = False) -> str:
        h = self._b.hex()
        return h.upper() if upper else h

    def colon(self, upper: bool = False) -> str:
        s = ":".join(f"{b:02x}" for b in self._b)
        return s.upper() if upper else s

    def dashed(self, upper: bool = False) -> str:
        return self.colon(upper).replace(":", "-")

    def format(self, style: str) -> str:
        """Format by profile name: colon, colon_upper, dash, dash_upper, dotted, bare,
        bare_upper."""
        styles: dict[str, Callable[[], str]] = {
            "colon": self.colon,
            "colon_upper": lambda: self.colon(True),
            "dash": self.dashed,
            "dash_upper": lambda: self.dashed(True),
            "dotted": self.dotted,
            "bare": self.bare,
            "bare_upper": lambda: self.bare(True),
        }
        try:
            return styles[style]()
        except KeyError:
            raise MacError(f"unknown MAC format {style!r}; one of {', '.join(styles)}") from None

    def __str__(self) -> str:
        return self.colon()

    def __repr__(self) -> str:
        return f"Mac('{self.colon()}')"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mac):
            return self._b == other._b
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Mac):
            return self._b < other._b
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._b)

    # pydantic v2 integration: validate from str, serialise to canonical str.
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        def validate(v: Any) -> Mac:
            if isinstance(v, Mac):
                return v
            if not isinstance(v, str):
                raise ValueError("a MAC address must be a string")
            try:
                return cls(v)
            except MacError as e:
                raise ValueError(str(e)) from None

        return core_schema.no_info_plain_validator_function(
            validate,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {
            "type": "string",
            "description": "MAC address in any common notation (colon, dash, dotted, bare)",
            "examples": ["00:11:22:33:44:55"],
        }


def _parse(text: str) -> bytes:
    s = text.strip().lower()
    if _COLONS.match(s):  # the canonical form (stored, and most input): one match
        return bytes.fromhex(s.replace(":", ""))
    if _HEX.match(s):
        return bytes.fromhex(s)
    if _DOTTED.match(s):
        return bytes.fromhex(s.replace(".", ""))
    if _SEPARATED.match(s):
        return bytes(int(p, 16) for p in re.split(r"[:-]", s))
    shown = text if len(text) <= 40 else text[:40] + "..."
    raise MacError(
        f"not a MAC address: {shown!r} (expected e.g. 00:11:22:33:44:55, "
        "00-11-22-33-44-55, 0011.2233.4455 or 001122334455)"
    )


def _check_unicast(raw: bytes, original: object) -> None:
    if not raw[0] & 0x01 and raw != b"\x00" * 6:
        return  # the common case, checked first: every stored MAC passes here
    shown = ":".join(f"{b:02x}" for b in raw)
    if raw == b"\xff" * 6:
        raise MacError(f"{shown} is the broadcast address, not a device")
    if raw == b"\x00" * 6:
        raise MacError(f"{shown} is the all-zero address, not a device")
    if raw[0] & 0x01:
        raise MacError(f"{shown} is a multicast (group) address, not a device")


def parse_mac(value: str) -> Mac:
    return Mac(value)
