"""Kea's built-in ``DROP`` client class as a set of bans, and back.

Kea drops, without answering, every packet that is classified into the class named
``DROP`` (docs/docsis.md section 6). The enforcer keeps one such class whose ``test``
is a disjunction of terms it can parse back exactly::

    pkt4.mac == 0x001dcf4a127e or relay4[2].hex == 0x001dcf4a127e

``pkt4.mac`` is the client hardware address; ``relay4[2].hex`` the option 82 remote-id
(sub-option 2). Terms are sorted, so the same bans always render the same text, and a
change is only sent when the rendered test differs from what the server runs
(idempotent). A ``DROP`` class the operator wrote before is kept: its test becomes the
``base``, rendered first in parentheses and remembered in the class's
``user-context.enforcer.base`` so lifting the last ban restores it unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from enforcer.domain.mac import Mac
from enforcer.errors import DriverError

CLASS = "DROP"
MARK = "enforcer"
_MAC_TERM = re.compile(r"pkt4\.mac == 0x([0-9a-f]{12})(?![0-9a-f])")
_RID_TERM = re.compile(r"relay4\[2\]\.hex == 0x((?:[0-9a-f]{2}){1,255})(?![0-9a-f])")


@dataclass(frozen=True)
class DropSet:
    """The bans a DROP class holds: MACs, option-82 remote-ids, and the operator's own
    test expression (``base``) kept from before the enforcer managed the class."""

    macs: frozenset[Mac] = frozenset()
    remote_ids: frozenset[bytes] = frozenset()
    base: str | None = None

    def with_(self, macs: set[Mac] | frozenset[Mac] = frozenset(),
              remote_ids: set[bytes] | frozenset[bytes] = frozenset()) -> DropSet:
        return replace(self, macs=self.macs | macs, remote_ids=self.remote_ids | remote_ids)

    def without(self, macs: set[Mac] | frozenset[Mac] = frozenset(),
                remote_ids: set[bytes] | frozenset[bytes] = frozenset()) -> DropSet:
        return replace(self, macs=self.macs - macs, remote_ids=self.remote_ids - remote_ids)

    def holds(self, macs: set[Mac] | frozenset[Mac] = frozenset(),
              remote_ids: set[bytes] | frozenset[bytes] = frozenset()) -> bool:
        return macs <= self.macs and remote_ids <= self.remote_ids

    def empty(self) -> bool:
        return not self.macs and not self.remote_ids


def render_test(drops: DropSet) -> str | None:
    """The class's test expression; None when the enforcer holds no ban and there is
    no base (the class is then removed)."""
    terms = [f"pkt4.mac == 0x{m.bare()}" for m in sorted(drops.macs)]
    terms += [f"relay4[2].hex == 0x{r.hex()}" for r in sorted(drops.remote_ids)]
    if drops.base is not None:
        if not terms:
            return drops.base
        terms.insert(0, f"({drops.base})")
    return " or ".join(terms) if terms else None


def render_class(drops: DropSet, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """The DROP class definition to send (other keys of ``previous`` kept); None to
    remove the class."""
    test = render_test(drops)
    if test is None:
        return None
    cls: dict[str, Any] = {k: v for k, v in (previous or {}).items()
                           if k not in ("name", "test", "user-context")}
    context = dict((previous or {}).get("user-context") or {})
    context.pop(MARK, None)
    if not drops.empty():
        context[MARK] = {"base": drops.base, "managed": True}
    cls.update(name=CLASS, test=test)
    if context:
        cls["user-context"] = context
    return cls


def parse_class(cls: dict[str, Any] | None) -> tuple[DropSet, bool]:
    """(the bans in a DROP class, whether its test is exactly what the enforcer would
    render for them). A class without the enforcer's mark is all base."""
    if cls is None:
        return DropSet(), True
    test = cls.get("test")
    if not isinstance(test, str):
        raise DriverError("the DROP class has no test expression the enforcer can extend")
    mark = (cls.get("user-context") or {}).get(MARK)
    if not isinstance(mark, dict):
        return DropSet(base=test), True
    base = mark.get("base")
    body = test
    if isinstance(base, str):
        prefix = f"({base})"
        body = test[len(prefix):] if test.startswith(prefix) else test
    drops = DropSet(macs=frozenset(Mac(bytes.fromhex(h)) for h in _MAC_TERM.findall(body)),
                    remote_ids=frozenset(bytes.fromhex(h) for h in _RID_TERM.findall(body)),
                    base=base if isinstance(base, str) else None)
    return drops, render_test(drops) == test


def find_class(dhcp4: dict[str, Any]) -> dict[str, Any] | None:
    for cls in dhcp4.get("client-classes") or []:
        if isinstance(cls, dict) and cls.get("name") == CLASS:
            return cls
    return None


def with_class(dhcp4: dict[str, Any], cls: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of the Dhcp4 map with the DROP class replaced (or removed when None),
    keeping every other class and its position."""
    out = dict(dhcp4)
    classes = [c for c in dhcp4.get("client-classes") or []]
    at = next((i for i, c in enumerate(classes)
               if isinstance(c, dict) and c.get("name") == CLASS), None)
    if at is not None:
        classes.pop(at)
    if cls is not None:
        classes.insert(at if at is not None else len(classes), cls)
    out["client-classes"] = classes
    return out
