"""MIB objects by name: the one place that turns a name into an OID (docs/profiles.md
"Object names").

The SMIv2 modules in ``mibs/`` (the DOCSIS and vendor objects the enforcer, its profiles
and its lab use) are compiled with pysmi into ``index.json`` beside this file by
``python -m enforcer.mib build``; a test rebuilds it and compares. At run time only the
JSON is read, once per process (:func:`index`).

Names: ``docsIf3CmtsCmRegStatusValue`` (the object) or ``name.suffix`` with a dotted
decimal instance suffix or template placeholders (``cdxCmCpeResetNow.{mac_index}``,
``docsIf3CmtsCmCtrlCmdCommit.0``). An unknown name raises :class:`MibError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from enforcer.errors import MibError

INDEX_PATH = Path(__file__).with_name("index.json")
OID = tuple[int, ...]
_NAME = re.compile(r"[a-z][A-Za-z0-9-]*")
_SUFFIX = re.compile(r"(\.(\d+|\{[A-Za-z_][A-Za-z0-9_]*\}))*")


@dataclass(frozen=True, slots=True)
class MibObject:
    """One compiled object: where it lives and what it may hold."""

    name: str
    module: str
    oid: OID
    nodetype: str  # scalar, column, row, table, node
    syntax: str = ""  # the base ASN.1 type after textual conventions (INTEGER, OCTET STRING...)
    access: str = ""
    enums: dict[str, int] = field(default_factory=dict)

    @property
    def dotted(self) -> str:
        return ".".join(map(str, self.oid))

    def value(self, label: str) -> int:
        """The number of enumeration label ``label`` (MibError if it has none)."""
        try:
            return self.enums[label]
        except KeyError:
            raise MibError(f"{self.module}::{self.name} has no value {label!r} "
                           f"(known: {', '.join(sorted(self.enums)) or 'none'})") from None

    def label(self, number: int) -> str | None:
        return next((k for k, v in self.enums.items() if v == number), None)


class MibIndex:
    """Name -> object and OID -> name over the compiled index."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.generated: str = data["generated"]
        self.modules: dict[str, Any] = data["modules"]
        self.objects: dict[str, MibObject] = {
            name: MibObject(name=name, module=o["module"],
                            oid=tuple(int(x) for x in o["oid"].split(".")),
                            nodetype=o["nodetype"], syntax=o.get("syntax", ""),
                            access=o.get("access", ""), enums=dict(o.get("enums", {})))
            for name, o in data["objects"].items()}
        self._by_oid = {o.oid: o for o in self.objects.values()}

    def __getitem__(self, name: str) -> MibObject:
        try:
            return self.objects[name]
        except KeyError:
            close = [n for n in self.objects if n.lower() == name.lower()]
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise MibError(f"unknown MIB object {name!r}{hint}: not in mibs/ "
                           "(python -m enforcer.mib build compiles it)") from None

    def __contains__(self, name: object) -> bool:
        return name in self.objects

    def oid(self, name: str) -> OID:
        return self[name].oid

    def resolve(self, text: str) -> str:
        """``name`` or ``name.suffix`` -> the dotted OID with the same suffix
        (placeholders kept); dotted decimal is returned unchanged."""
        head, dot, rest = text.partition(".")
        if head.isdigit():
            return text
        if not _NAME.fullmatch(head) or not _SUFFIX.fullmatch(dot + rest):
            raise MibError(f"not an object name: {text!r} (e.g. docsIf3CmtsCmRegStatusValue "
                           "or cdxCmCpeResetNow.{mac_index})")
        return self[head].dotted + dot + rest

    def name_of(self, oid: OID) -> tuple[MibObject, OID] | None:
        """The longest known prefix of ``oid`` and the instance suffix after it."""
        for n in range(len(oid), 0, -1):
            obj = self._by_oid.get(oid[:n])
            if obj is not None:
                return obj, oid[n:]
        return None

    def symbolic(self, oid: OID) -> str:
        """``name.suffix`` for display, or the dotted OID when no prefix is known."""
        hit = self.name_of(oid)
        if hit is None:
            return ".".join(map(str, oid))
        obj, rest = hit
        return obj.name + "".join(f".{x}" for x in rest)


@cache
def index() -> MibIndex:
    """The compiled index, read once."""
    try:
        data = json.loads(INDEX_PATH.read_text())
    except (OSError, ValueError) as e:
        raise MibError(f"{INDEX_PATH}: cannot read the compiled MIB index: {e}") from None
    return MibIndex(data)


def oid(name: str) -> OID:
    """The OID of object ``name`` (MibError if unknown)."""
    return index().oid(name)


def obj(name: str) -> MibObject:
    return index()[name]


def resolve(text: str) -> str:
    return index().resolve(text)


def dotted(name: str) -> str:
    """The dotted-decimal OID of object ``name`` (e.g. for net-snmp's command line)."""
    return index()[name].dotted
