"""Anchoring the audit chain head outside the database.

The hash chain shows a modified, deleted, inserted or reordered entry, but not the
newest entries being cut off: a shorter chain is still a valid chain. Writing the head
``{seq, hash, at}`` periodically to a sink the database's users cannot rewrite (a file
on another host or a WORM mount, a remote syslog) closes that gap: ``verify`` checks
every anchor against the chain, and an anchor past the end of the chain is truncation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from enforcer.store import Store
from enforcer.store.audit import iso_utc
from enforcer.store.schema import AuditEntry

log = logging.getLogger(__name__)
SYSLOG_TAG = "enforcer-audit-anchor"


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    at: str  # ISO 8601 UTC of the anchored entry

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "at": self.at}

    def line(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))


class AnchorSink(Protocol):
    name: str
    last_seq: int | None  # the newest seq written by this process (skip repeats)

    def write(self, anchor: Anchor) -> None: ...

    def close(self) -> None: ...


class FileAnchorSink:
    """Appends one JSON line ``{"at","hash","seq"}`` per anchor, flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"
        self.last_seq: int | None = None

    def write(self, anchor: Anchor) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (anchor.line() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        return None


class SyslogAnchorSink:
    """Sends ``enforcer-audit-anchor: {json}`` to a syslog receiver (facility auth)."""

    def __init__(self, address: str) -> None:
        self.name = f"syslog:{address}"
        self.last_seq: int | None = None
        self._handler = logging.handlers.SysLogHandler(
            **_syslog_target(address), facility=logging.handlers.SysLogHandler.LOG_AUTH)
        self._handler.setFormatter(logging.Formatter(f"{SYSLOG_TAG}: %(message)s"))

    def write(self, anchor: Anchor) -> None:
        record = logging.LogRecord("enforcer.audit.anchor", logging.WARNING, __file__, 0,
                                   anchor.line(), None, None)
        self._handler.handle(record)

    def close(self) -> None:
        self._handler.close()


def _syslog_target(address: str) -> dict[str, Any]:
    if address.startswith("/"):
        return {"address": address}
    sock = socket.SOCK_STREAM if address.startswith("tcp://") else socket.SOCK_DGRAM
    host, _, port = address.removeprefix("udp://").removeprefix("tcp://").rpartition(":")
    return {"address": (host.strip("[]"), int(port)), "socktype": sock}


def build_sinks(settings: Any) -> list[AnchorSink]:
    """The sinks configured under ``audit.anchor`` (none by default)."""
    cfg = settings.audit.anchor
    sinks: list[AnchorSink] = []
    if cfg.file is not None:
        sinks.append(FileAnchorSink(Path(cfg.file)))
    if cfg.syslog is not None:
        sinks.append(SyslogAnchorSink(cfg.syslog))
    return sinks


def head(store: Store) -> Anchor | None:
    """The newest chain entry as an anchor (None for an empty chain)."""
    with store.read_session() as session:
        row = session.execute(select(AuditEntry.seq, AuditEntry.hash, AuditEntry.at)
                              .order_by(AuditEntry.seq.desc()).limit(1)).first()
    return Anchor(row[0], row[1], iso_utc(row[2])) if row else None


async def anchor_audit(store: Store, sinks: Sequence[AnchorSink]) -> None:
    """Write the current chain head to every sink (skipped for a sink that already holds
    this head). A failing sink is logged and does not stop the others."""
    current = await asyncio.to_thread(head, store)
    if current is None:
        return
    for sink in sinks:
        if sink.last_seq == current.seq:
            continue
        try:
            await asyncio.to_thread(sink.write, current)
            sink.last_seq = current.seq
        except OSError as e:
            log.error("audit anchor to %s failed: %s", sink.name, e)


def read_anchor_file(path: Path) -> list[Anchor]:
    """Anchors from a file sink; a malformed line raises ValueError naming it."""
    out: list[Anchor] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(Anchor(int(d["seq"]), str(d["hash"]), str(d["at"])))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not an anchor line ({e})") from None
    return out


def check_anchors(chain: dict[int, str], last_seq: int,
                  anchors: Iterable[Anchor]) -> tuple[int, str] | None:
    """(first bad seq, why) if an anchor disagrees with the chain (``chain`` maps at
    least every anchored seq present to its hash; ``last_seq`` is the newest), else
    None."""
    for a in sorted(anchors, key=lambda a: a.seq):
        if a.seq > last_seq:
            return last_seq + 1, (f"truncated: an anchor of {a.at} records seq {a.seq} "
                                  f"but the chain ends at seq {last_seq}")
        if chain.get(a.seq) != a.hash:
            return a.seq, f"entry {a.seq} does not match the anchor of {a.at}"
    return None

