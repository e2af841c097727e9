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
    key_id: str | None = None  # the HMAC key the chain head was made with
    evidence_key: str | None = None  # fingerprint of the evidence signing key

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"seq": self.seq, "hash": self.hash, "at": self.at}
        if self.key_id is not None:
            d["key_id"] = self.key_id
        if self.evidence_key is not None:
            d["evidence_key"] = self.evidence_key
        return d

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
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    """The anchor file (``audit.anchor.file``, default ``state_dir/anchors/
    anchors.jsonl``: anchors are always on) and syslog when configured."""
    cfg = settings.audit.anchor
    sinks: list[AnchorSink] = [FileAnchorSink(Path(settings.anchor_file()))]
    if cfg.syslog is not None:
        sinks.append(SyslogAnchorSink(cfg.syslog))
    return sinks


def head(store: Store, evidence_key: str | None = None) -> Anchor | None:
    """The newest chain entry as an anchor (None for an empty chain)."""
    with store.read_session() as session:
        row = session.execute(select(AuditEntry.seq, AuditEntry.hash, AuditEntry.at,
                                     AuditEntry.key_id)
                              .order_by(AuditEntry.seq.desc()).limit(1)).first()
    return Anchor(row[0], row[1], iso_utc(row[2]), row[3], evidence_key) if row else None


def anchor_now(store: Store, sinks: Sequence[AnchorSink],
               evidence_key: str | None = None, current: Anchor | None = None) -> None:
    """Write the chain head (or ``current``) to every sink (skipped for a sink that
    already holds it). A failing sink is logged and does not stop the others."""
    current = current or head(store, evidence_key)
    if current is None:
        return
    for sink in sinks:
        if sink.last_seq == current.seq:
            continue
        try:
            sink.write(current)
            sink.last_seq = current.seq
        except OSError as e:
            log.error("audit anchor to %s failed: %s", sink.name, e)


async def anchor_audit(store: Store, sinks: Sequence[AnchorSink],
                       evidence_key: str | None = None) -> None:
    await asyncio.to_thread(anchor_now, store, sinks, evidence_key)


def _parse(line: str) -> Anchor:
    d = json.loads(line)
    return Anchor(int(d["seq"]), str(d["hash"]), str(d["at"]),
                  str(d["key_id"]) if d.get("key_id") is not None else None,
                  str(d["evidence_key"]) if d.get("evidence_key") is not None else None)


def read_anchor_file(path: Path) -> list[Anchor]:
    """Anchors from a file sink; a malformed line raises ValueError naming it."""
    out: list[Anchor] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(_parse(line))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not an anchor line ({e})") from None
    return out


def newest_anchor(path: Path) -> Anchor | None:
    """The last anchor of a file sink, read from its tail (constant time however long
    the file); None when there is no file or no anchor. ValueError for a bad line."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            tail = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    if not lines:
        return None
    try:
        return _parse(lines[-1])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: the last line is not an anchor ({e})") from None


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

