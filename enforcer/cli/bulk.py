"""``enforcer ban --from-csv FILE``: bring over the ban list an operator already keeps.

Columns (header required; order free): ``account``, ``ticket``, ``reason``, ``mac``,
``kind`` (default ``cable_modem``), ``ecm_mac`` (set-tops), ``scope``, ``node``,
``note``, ``all_devices`` (``true``/``false``). One row per device; rows of one account
form one order (its ticket, reason, scope, node and note must agree). Every row is
validated first, with its line number in the errors; nothing is filed unless every row
is valid. Each order is filed with an idempotency key made from the file's content and
the account, so running the same file again after an interruption files nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from enforcer.api.errors import fields_from
from enforcer.api.models import OrderRequest

REQUIRED = ("account", "ticket", "reason")
KNOWN = {*REQUIRED, "mac", "kind", "ecm_mac", "scope", "node", "note", "all_devices"}
SHARED = ("ticket", "reason", "scope", "node", "note", "all_devices")
MAX_ROWS = 100_000


class CsvError(Exception):
    """Every problem found, one per line of the message."""


def _truthy(text: str, where: str) -> bool:
    t = text.strip().lower()
    if t in ("", "false", "no", "0"):
        return False
    if t in ("true", "yes", "1"):
        return True
    raise CsvError(f"{where}: all_devices must be true or false, not {text!r}")


def read_orders(path: Path) -> tuple[list[tuple[list[int], dict[str, Any]]], str]:
    """The orders the file asks for, each with the line numbers it came from, and a
    digest of the file. Raises :class:`CsvError` listing every bad row."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CsvError(f"{path}: not UTF-8 text ({e})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in KNOWN]
    if missing or unknown:
        raise CsvError("\n".join(
            ([f"line 1: missing column(s): {', '.join(missing)}"] if missing else []) +
            ([f"line 1: unknown column(s): {', '.join(unknown)}"] if unknown else [])))
    errors: list[str] = []
    groups: dict[str, tuple[list[int], dict[str, Any]]] = {}
    for n, row in enumerate(reader):
        line = reader.line_num
        if n >= MAX_ROWS:
            raise CsvError(f"line {line}: more than {MAX_ROWS} rows")
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"line {line}"
        if None in row or any(v is None for v in row.values()):
            errors.append(f"{where}: wrong number of fields")
            continue
        try:
            account = row["account"]
            if not account:
                raise CsvError(f"{where}: account is empty")
            shared = {k: row.get(k, "") for k in SHARED}
            shared["all_devices"] = _truthy(shared["all_devices"] or "", where)
            device: dict[str, Any] | None = None
            if row.get("mac"):
                device = {"mac": row["mac"], "kind": row.get("kind") or "cable_modem"}
                if row.get("ecm_mac"):
                    device["ecm_mac"] = row["ecm_mac"]
            elif not shared["all_devices"]:
                raise CsvError(f"{where}: mac is empty (or set all_devices to true)")
            lines, body = groups.setdefault(account, ([], {"account": account, **{
                k: v for k, v in shared.items() if v not in ("", False)}, "devices": []}))
            for k in SHARED:
                first = body.get(k, "" if k != "all_devices" else False)
                mine = shared[k] if shared[k] not in ("", False) else (
                    "" if k != "all_devices" else False)
                if mine != first:
                    raise CsvError(f"{where}: {k} {mine!r} differs from line {lines[0]}'s "
                                   f"{first!r} for account {account} (one order per account)")
            lines.append(line)
            if device is not None:
                body["devices"].append(device)
            _check(body, where)
        except CsvError as e:
            errors.append(str(e))
    if not groups and not errors:
        errors.append(f"{path}: no rows")
    if errors:
        raise CsvError("\n".join(errors[:50]) + (
            f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""))
    return list(groups.values()), digest


def _check(body: dict[str, Any], where: str) -> None:
    """Validate the order so far exactly as the daemon will (same model)."""
    try:
        OrderRequest.model_validate(body)
    except ValidationError as e:
        fields = fields_from(list(e.errors()))
        raise CsvError(f"{where}: " + "; ".join(f"{k}: {v}" for k, v in fields.items())) \
            from None
