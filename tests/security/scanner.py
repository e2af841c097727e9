"""The secret scanner: looks for configured secrets (device credentials, webhook
secrets, API tokens) in text the enforcer produced: daemon logs, audit entries and
transcripts, metrics, API answers, CLI output. Used by tests/security and, for every
daemon the test suite started, by the session-end hook in tests/conftest.py."""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MIN_LEN = 6  # shorter values would match by accident (and are not real secrets)


@dataclass(frozen=True)
class Finding:
    where: str
    secret_hint: str  # the first 3 characters only: the report must not leak it again
    excerpt: str


def variants(secret: str) -> set[str]:
    """The forms a secret could leak in: as is, URL-encoded, JSON-escaped, and for a
    ``whsec_`` webhook secret its base64 key alone."""
    out = {secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}
    if secret.startswith("whsec_"):
        b64 = secret.removeprefix("whsec_")
        out.add(b64)
        with contextlib.suppress(ValueError):
            out.add(base64.b64decode(b64).hex())
    return {v for v in out if len(v) >= MIN_LEN}


def scan_text(where: str, text: str, secrets: Iterable[str]) -> list[Finding]:
    found = []
    for secret in {s for s in secrets if len(s) >= MIN_LEN}:
        for v in variants(secret):
            i = text.find(v)
            if i >= 0:
                excerpt = text[max(0, i - 40):i].replace("\n", " ") + "<SECRET>"
                found.append(Finding(where, secret[:3] + "...", excerpt))
                break
    return found


def scan_files(paths: Iterable[Path], secrets: Iterable[str]) -> tuple[int, list[Finding]]:
    """(files scanned, findings)."""
    secrets = list(secrets)
    n, found = 0, []
    for p in paths:
        try:
            text = p.read_text(errors="replace")
        except OSError:
            continue
        n += 1
        found += scan_text(str(p), text, secrets)
    return n, found


def daemon_logs(log_path: Path) -> list[Path]:
    """A daemon's log and the logs of its restarts (tests/reliability)."""
    return sorted(log_path.parent.glob("enforcer*.log"))
