"""Profile templates -> SET varbinds, CLI lines and regexes; transcript lines.

Placeholders (enforcer.inventory.profiles): ``{mac}`` in the profile's mac_format,
``{mac_hex}``, ``{mac_index}`` (six decimal sub-ids, docs/docsis.md section 1),
``{ifindex}``, and fetched values (bytes, rendered as hex for ``type: hex``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from enforcer.domain.mac import Mac
from enforcer.errors import DriverError
from enforcer.inventory.profiles import Varbind, fill, placeholders
from enforcer.transport.base import Missing, SetVarbind, SnmpValue, oid_str, parse_oid

_LONG = 48  # octet strings longer than this are summarised in transcripts


class Context:
    """Placeholder values for one MAC on one device."""

    def __init__(self, mac: Mac, mac_format: str, extra: dict[str, str] | None = None) -> None:
        self.values = {"mac": mac.format(mac_format), "mac_hex": mac.bare(),
                       "mac_index": mac.oid_suffix, **(extra or {})}

    def needs(self, templates: Iterable[str]) -> set[str]:
        """Placeholders the templates use that have no value yet."""
        out: set[str] = set()
        for t in templates:
            out |= placeholders(t) - set(self.values)
        return out

    def text(self, template: str) -> str:
        try:
            return fill(template, self.values)
        except KeyError as e:
            raise DriverError(f"no value for placeholder {{{e.args[0]}}}") from None

    def regex(self, template: str) -> re.Pattern[str]:
        """A regex template with placeholder values escaped."""
        escaped = {k: re.escape(v) for k, v in self.values.items()}
        return re.compile(fill(template, escaped))

    def varbinds(self, pdu: Sequence[Varbind]) -> list[SetVarbind]:
        out: list[SetVarbind] = []
        for vb in pdu:
            oid = parse_oid(self.text(vb.oid))
            raw = self.text(vb.value)
            value: int | bytes
            if vb.type in ("integer", "unsigned32", "gauge32"):
                value = int(raw)
                out.append(SetVarbind(oid, vb.type, value))
            elif vb.type == "hex":
                out.append(SetVarbind(oid, "octets", bytes.fromhex(raw)))
            elif vb.type == "ipaddress":
                out.append(SetVarbind(oid, "ipaddress", bytes(int(p) for p in raw.split("."))))
            else:
                out.append(SetVarbind(oid, "octets", raw.encode()))
        return out


def show_value(v: SnmpValue | int | bytes) -> str:
    if isinstance(v, Missing):
        return v.value
    if isinstance(v, bytes):
        if len(v) > _LONG:
            return f"<{len(v)} octets 0x{v[:8].hex()}...>"
        return "0x" + v.hex()
    if isinstance(v, tuple):
        return oid_str(v)
    return str(v)


def set_line(pdu: Sequence[SetVarbind], outcome: str) -> str:
    """``SET oid = value, oid = value -> noError``."""
    body = ", ".join(f"{oid_str(v.oid)} = {show_value(v.value)}" for v in pdu)
    return f"SET {body} -> {outcome}"


def get_line(oid: tuple[int, ...], value: SnmpValue) -> str:
    return f"GET {oid_str(oid)} -> {show_value(value)}"


class Scrubber:
    """Removes known secrets (passwords, community, enable secret) from text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "<secret>")
        return text
