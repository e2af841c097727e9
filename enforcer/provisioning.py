"""The provisioning feed: account <-> device links from the operator's provisioning
system, by signed events (``POST /v1/hooks/provisioning``) and by a periodic pull of a
full export that repairs whatever the events missed.

An account-level order (``all_devices``) holds every device linked to its account: a
device linked later is added to each such active order by an amendment from the system
(actor ``provisioning``), audited and pushed and verified like a new order's devices.
Unlinking a device never unbans it: only a lift does.

Export format, CSV with a header (``account,mac,kind,ecm_mac``; ``ecm_mac`` optional and
only for set-tops) or JSON (a list of ``{"account", "mac", "kind", "ecm_mac"?}``, or
``{"links": [...]}``). An export with any bad row changes nothing (each bad row is
named by its line or index).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from enforcer.amend import AmendWorkflow, Changes
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Role
from enforcer.errors import InputError, MacError
from enforcer.lifts import LiftError
from enforcer.store import Store, UserRecord
from enforcer.store.links import LINKED, UNLINKED, LinkChange

log = logging.getLogger(__name__)
ACTOR = "provisioning"
MAX_EXPORT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LinkRow:
    account: str
    mac: Mac
    kind: DeviceKind
    ecm_mac: Mac | None = None


def _row(raw: dict[str, Any], where: str) -> LinkRow:
    try:
        account = str(raw["account"]).strip()
        if not account or len(account) > 200 or not account.isprintable():
            raise ValueError("account must be 1-200 printable characters")
        kind = DeviceKind(str(raw["kind"]).strip())
        ecm_text = str(raw.get("ecm_mac") or "").strip()
        ecm = Mac(ecm_text) if ecm_text else None
        if ecm is not None and kind is not DeviceKind.SET_TOP:
            raise ValueError("ecm_mac is only for kind set_top")
        return LinkRow(account, Mac(str(raw["mac"]).strip()), kind, ecm)
    except KeyError as e:
        raise InputError(f"{where}: missing {e.args[0]}") from None
    except (ValueError, MacError) as e:
        raise InputError(f"{where}: {e}") from None


def parse_export(data: bytes, name: str = "export") -> list[LinkRow]:
    """Every row of an export, validated; :class:`InputError` naming every bad row."""
    text = data.decode("utf-8-sig")
    rows: list[LinkRow] = []
    errors: list[str] = []
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise InputError(f"{name}: not valid JSON: {e}") from None
        items = doc.get("links") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise InputError(f"{name}: expected a list of links")
        for i, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise InputError(f"{name}[{i}]: not an object")
                rows.append(_row(item, f"{name}[{i}]"))
            except InputError as e:
                errors.append(str(e))
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"account", "mac", "kind"} <= set(reader.fieldnames):
            raise InputError(f"{name}: the CSV header must name account, mac and kind")
        for line in reader:
            try:
                rows.append(_row(dict(line), f"{name} line {reader.line_num}"))
            except InputError as e:
                errors.append(str(e))
    seen: dict[Mac, LinkRow] = {}
    for r in rows:
        if r.mac in seen and seen[r.mac].account != r.account:
            errors.append(f"{name}: {r.mac} is linked to two accounts")
        seen[r.mac] = r
    if errors:
        raise InputError(f"{len(errors)} bad row(s): " + "; ".join(errors[:20]))
    return rows


def read_export(source: str, timeout_s: float = 30.0) -> bytes:
    """The export's bytes from a file path or an https URL."""
    if source.startswith("https://"):
        import httpx

        with httpx.stream("GET", source, timeout=timeout_s) as r:
            r.raise_for_status()
            chunks, size = [], 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > MAX_EXPORT_BYTES:
                    raise InputError(f"{source}: export larger than {MAX_EXPORT_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    if "://" in source:
        raise InputError(f"{source}: the export is a file path or an https:// URL")
    path = Path(source)
    if path.stat().st_size > MAX_EXPORT_BYTES:
        raise InputError(f"{source}: export larger than {MAX_EXPORT_BYTES} bytes")
    return path.read_bytes()


SYSTEM = UserRecord(id=0, name=ACTOR, role=Role.ESCALATION_SYSTEM, token_prefix="",
                    created_at=datetime.min, disabled=False, expires_at=None)


@dataclass
class Feed:
    store: Store
    amend: AmendWorkflow
    wake: Callable[[str], None]
    max_per_account: int = 32
    clock: Callable[[], datetime] | None = None

    def _now(self) -> datetime:
        return self.clock() if self.clock else self.store.clock()

    def event(self, event: str, row: LinkRow, *, at: datetime, source: str = "event",
              idempotency: tuple[str, str] | None = None) -> tuple[LinkChange, list[str]]:
        """Apply one event; returns what changed and the account orders extended."""
        change = self.store.record_link_event(
            event, account=row.account, mac=row.mac, kind=row.kind, ecm_mac=row.ecm_mac,
            at=at, source=source, idempotency=idempotency,
            max_per_account=self.max_per_account)
        extended = self.extend(row) if event == LINKED and change.outcome in (
            "applied", "unchanged") else []
        return change, extended

    def extend(self, row: LinkRow) -> list[str]:
        """Add ``row``'s device to every active account order of its account that lacks
        it (an audited upgrade amendment by the system); the ids extended."""
        done: list[str] = []
        for oid in self.store.account_orders_missing(row.account, [row.mac]):
            for _attempt in range(3):
                try:
                    self.amend.amend(oid, SYSTEM, Changes(
                        add_devices=((row.mac, row.kind, row.ecm_mac),),
                        note=f"{row.kind.value} {row.mac} linked to account {row.account} "
                        "by the provisioning feed"), may_downgrade=False)
                    done.append(oid)
                    self.wake(oid)
                    break
                except LiftError as e:
                    if e.code != "conflict":
                        log.error("account order %s: cannot add %s: %s", oid, row.mac,
                                  e.message)
                        break
        return done

    def sync(self, rows: list[LinkRow]) -> dict[str, int]:
        """Make the links what a full export says: link what is missing or changed,
        unlink what is gone (never unbanning), and add every linked device to its
        account's orders where an event was missed."""
        now = self._now()
        current = {link.mac: link for link in self.store.all_links()}
        wanted = {r.mac: r for r in rows}
        counts = {"linked": 0, "unlinked": 0, "orders_extended": 0, "rows": len(rows)}
        for mac, r in wanted.items():
            have = current.get(mac)
            if have is None or (have.account, have.kind, have.ecm_mac) != (
                    r.account, r.kind, r.ecm_mac):
                change, _ = self.event(LINKED, r, at=now, source="export")
                counts["linked"] += change.outcome == "applied"
        for mac, have in current.items():
            if mac not in wanted:
                change, _ = self.event(UNLINKED, LinkRow(have.account, mac, have.kind,
                                                         have.ecm_mac),
                                       at=now, source="export")
                counts["unlinked"] += change.outcome == "applied"
        accounts = self.store.account_orders()
        for r in wanted.values():
            orders = accounts.get(r.account, {})
            if any(str(r.mac) not in macs for macs in orders.values()):
                counts["orders_extended"] += len(self.extend(r))
        return counts

    def pull(self, source: str) -> dict[str, int]:
        """Read and apply the export at ``source`` (a bad export changes nothing)."""
        rows = parse_export(read_export(source), Path(source).name or source)
        counts = self.sync(rows)
        self.store.record_event(ACTOR, "links.export_applied", None,
                                {"source": source, **counts})
        return counts
