"""Strict JSON for request bodies: a duplicated key, nesting deeper than
:data:`MAX_DEPTH` or a non-finite number is refused (422) rather than silently resolved
(``json.loads`` keeps the last of two equal keys, so a signed body could carry two
readings of one field) or turned into a 500 (30,000 nested brackets exhaust Python's
recursion limit)."""

from __future__ import annotations

import json
from typing import Any

from enforcer.api.errors import ApiError

MAX_DEPTH = 32


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


def loads(raw: bytes) -> Any:
    """The parsed body; :class:`ApiError` 422 ``invalid_json`` for anything else."""
    try:
        doc = json.loads(raw, object_pairs_hook=_pairs, parse_constant=_constant)
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
