"""Incremental verification of the audit chain, against a checkpoint and the newest
anchor, both kept outside the database.

The checkpoint (``checkpoint.json`` beside the anchor file, 0600) records the last
verified entry ``{seq, hash}`` and ``legacy_until`` (the last entry written before the
chain had keys). A check confirms the database still holds that entry unchanged, walks
only the entries after it (links and HMAC), confirms the newest anchor is in the chain
and not past its end, and moves the checkpoint forward. So start-up and the periodic
check cost what was appended since the last check, not the whole history; ``enforcer
audit verify --full`` still walks everything.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from enforcer.audit.anchor import Anchor, newest_anchor
from enforcer.store import Store
from enforcer.store.audit import GENESIS_HASH, walk_chain
from enforcer.store.schema import AuditEntry

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.json"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    legacy_until: int


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    ok: bool
    first_bad_seq: int | None
    reason: str
    checked: int  # entries walked by this check
    head_seq: int

    def as_tuple(self) -> tuple[bool, int | None, str]:
        return self.ok, self.first_bad_seq, self.reason


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint in ``path`` (None if there is none); ValueError if malformed."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a checkpoint ({e})") from None
    try:
        return Checkpoint(int(d["seq"]), str(d["hash"]), int(d["legacy_until"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a checkpoint ({e})") from None


def write_checkpoint(path: Path, cp: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Per process and thread: the daemon and `enforcer audit verify` may write at once.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps({"seq": cp.seq, "hash": cp.hash,
                                 "legacy_until": cp.legacy_until}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class ChainGuard:
    """Checks the chain incrementally; thread-safe (one check at a time)."""

    def __init__(self, store: Store, anchor_file: Path,
                 checkpoint: Path | None = None) -> None:
        self.store = store
        self.anchor_file = anchor_file
        self.checkpoint_path = checkpoint or anchor_file.parent / CHECKPOINT
        self._lock = threading.Lock()
        self.last: GuardVerdict | None = None

    @property
    def legacy_until(self) -> int:
        """Entries up to this seq may be legacy (unkeyed); 0 when none may be."""
        try:
            cp = read_checkpoint(self.checkpoint_path)
        except ValueError:
            return 0
        return cp.legacy_until if cp else 0

    def check(self) -> GuardVerdict:
        with self._lock:
            started = time.monotonic()
            v = self._check()
            self.last = v
            log.debug("audit chain check: %s (%d entries, %.3fs)", v.reason, v.checked,
                      time.monotonic() - started)
            return v

    def _check(self) -> GuardVerdict:
        try:
            cp = read_checkpoint(self.checkpoint_path)
            anchor = newest_anchor(self.anchor_file)
        except ValueError as e:
            return GuardVerdict(False, None, str(e), 0, 0)
        keys = self.store.audit_keys
        with self.store.read_session() as session:
            if cp is not None:
                row = session.execute(select(AuditEntry.hash).where(
                    AuditEntry.seq == cp.seq)).first() if cp.seq else (GENESIS_HASH,)
                if row is None or row[0] != cp.hash:
                    what = "is missing" if row is None else "was changed"
                    return GuardVerdict(False, cp.seq, f"entry {cp.seq}, verified before, "
                                        f"{what} (checkpoint {self.checkpoint_path})", 0, 0)
                c = walk_chain(session, keys, after_seq=cp.seq, after_hash=cp.hash,
                               legacy_until=cp.legacy_until)
                legacy_until = cp.legacy_until
            else:
                c = walk_chain(session, keys, adopt_legacy=True)
                legacy_until = c.legacy
            if not c.ok:
                return GuardVerdict(False, c.first_bad_seq, c.reason, c.count, c.last_seq)
            bad = _against_anchor(session, anchor, c.last_seq)
        if bad is not None:
            return GuardVerdict(False, bad[0], bad[1], c.count, c.last_seq)
        if cp is None or c.last_seq != cp.seq:
            try:
                write_checkpoint(self.checkpoint_path, Checkpoint(
                    c.last_seq, c.last_hash if c.last_seq else GENESIS_HASH, legacy_until))
            except OSError as e:  # the check passed; the next one starts further back
                log.error("cannot write the audit checkpoint %s: %s", self.checkpoint_path,
                          e.strerror)
        anchored = f"; newest anchor seq {anchor.seq} matches" if anchor else \
            "; no anchor yet"
        return GuardVerdict(True, None, f"chain intact to seq {c.last_seq} ({c.count} new "
                            f"entries checked){anchored}", c.count, c.last_seq)


def _against_anchor(session: Any, anchor: Anchor | None,
                    last_seq: int) -> tuple[int, str] | None:
    if anchor is None:
        return None
    if anchor.seq > last_seq:
        return last_seq + 1, (f"truncated: the anchor of {anchor.at} records seq "
                              f"{anchor.seq} but the chain ends at seq {last_seq}")
    row = session.execute(select(AuditEntry.hash).where(AuditEntry.seq == anchor.seq)).first()
    if row is None or row[0] != anchor.hash:
        return anchor.seq, f"entry {anchor.seq} does not match the anchor of {anchor.at}"
    return None
