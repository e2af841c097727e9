"""Strict JSON for request bodies: a duplicated key, nesting deeper than
:data:`MAX_DEPTH` or a non-finite number is refused (422) rather than silently resolved
(``json.loads`` keeps the last of two equal keys, so a signed body could carry two
readings of one field) or turned into a 500 (30,000 nested brackets exhaust Python's
recursion limit)."""

from __future__ import annotations

import json
import re
from typing import Any

from enforcer.api.errors import ApiError

MAX_DEPTH = 32
#: The bytes that matter to nesting: brackets, quotes and backslashes (escapes).
_SPECIAL = re.compile(rb'[\[\]{}"\\]')


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k[:80]!r}")
        out[k] = v
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth_ok(doc: Any) -> bool:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return True


def _too_deep(raw: bytes) -> bool:
    """Whether brackets outside strings nest deeper than :data:`MAX_DEPTH`, found
    before parsing: ``json.loads`` recurses once per level, and how deep it may go
    depends on how deep the caller's own stack already is (a body nested ~990 levels
    parsed in the daemon's request thread raised ``RecursionError`` where a test's
    shallower stack did not)."""
    depth, in_string, skip_to = 0, False, -1
    for m in _SPECIAL.finditer(raw):  # linear: each special byte is looked at once
        i = m.start()
        if i < skip_to:
            continue  # the byte after a backslash in a string
        c = raw[i]
        if in_string:
            if c == 0x5C:  # backslash
                skip_to = i + 2
            elif c == 0x22:  # closing quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif c in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def loads(raw: bytes) -> Any:
    """The parsed body; :class:`ApiError` 422 ``invalid_json`` for anything else."""
    if _too_deep(raw):
        raise ApiError(422, "invalid_json", "the body is not valid JSON",
                       fields={"body": f"nested deeper than {MAX_DEPTH} levels"})
    try:
        # UTF-8 only (RFC 8259 section 8.1): ``json.loads`` would also guess UTF-16/32.
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs,
                         parse_constant=_constant)
    except RecursionError:
        doc, why = None, f"nested deeper than {MAX_DEPTH} levels"
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(422, "invalid_json", "the body is not valid JSON",
                       fields={"body": str(e)[:200]}) from None
    else:
        why = "" if _depth_ok(doc) else f"nested deeper than {MAX_DEPTH} levels"
    if why:
        raise ApiError(422, "invalid_json", "the body is not valid JSON",
                       fields={"body": why})
    return doc
