"""The transport layer's own arguments: plain frozen values, no inventory models.

The transport (SNMP and SSH sessions) depends on nothing in ``enforcer.inventory``; the
inventory's credentials and a profile's SSH spec are converted into these at one place,
``enforcer/drivers/transport_args.py``. Secrets are :class:`Secret`, whose ``repr`` and
``str`` never show the value (secrets are never printed or logged).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["AuthProtocol", "PrivProtocol", "Secret", "SnmpAuth", "SshLogin", "SshTerminal",
           "refusal_line"]

AuthProtocol = Literal["SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PrivProtocol = Literal["AES", "AES-192", "AES-256"]
ConnArg = str | int | float | bool


class Secret:
    """A secret string that prints as ``**********``; :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class SnmpAuth:
    """SNMPv3 authPriv (user, SHA family, AES family), or v2c with its community.
    v2c is refused unless ``allow_v2c``; SETs over v2c need ``allow_v2c_writes`` too."""

    version: Literal["3", "2c"] = "3"
    user: str | None = None
    auth_protocol: AuthProtocol = "SHA"
    auth_password: Secret | None = None
    priv_protocol: PrivProtocol = "AES"
    priv_password: Secret | None = None
    community: Secret | None = None
    allow_v2c: bool = False
    allow_v2c_writes: bool = False


@dataclass(frozen=True, slots=True)
class SshLogin:
    """Who logs in over SSH: a password and/or a key file; ``enable_secret`` for
    privileged mode."""

    username: str
    password: Secret | None = None
    key_file: Path | None = None
    enable_secret: Secret | None = None


def refusal_line(patterns: Sequence[str], text: str) -> str | None:
    """The whole line of ``text`` that one of ``patterns`` matches (multiline), or None."""
    for pattern in patterns:
        m = re.compile(pattern, re.MULTILINE).search(text)
        if m:
            start = text.rfind("\n", 0, m.start()) + 1
            end = text.find("\n", m.end())
            return text[start:end if end >= 0 else len(text)].strip()
    return None


@dataclass(frozen=True, slots=True)
class SshTerminal:
    """What netmiko needs from a device profile: its ``device_type``, extra connection
    arguments (timeouts, prompt handling), whether to enter enable mode and save after
    config, and the patterns whose matching line is a refusal."""

    device_type: str
    conn_args: Mapping[str, ConnArg] = field(default_factory=dict, hash=False)
    enable: bool = True
    save_after_config: bool = False
    error_patterns: tuple[str, ...] = ()

    def refusal(self, text: str) -> str | None:
        """The whole line of ``text`` that an error pattern matches, or None."""
        return refusal_line(self.error_patterns, text)
