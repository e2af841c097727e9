"""Lab credentials: generated once per lab state directory, kept in a 0600 file, and
written into the inventory the enforcer loads. Never reused outside the lab."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabCredentials:
    snmp_user: str
    snmp_auth: str
    snmp_priv: str
    ro_user: str
    ro_auth: str
    ro_priv: str
    community_ro: str
    ssh_user: str
    ssh_password: str
    enable_secret: str


def load_or_create(state_dir: Path) -> LabCredentials:
    path = state_dir / "credentials.json"
    if path.exists():
        return LabCredentials(**json.loads(path.read_text()))
    creds = LabCredentials(
        snmp_user="enforcer",
        snmp_auth="a-" + secrets.token_urlsafe(12),
        snmp_priv="p-" + secrets.token_urlsafe(12),
        ro_user="monitor",
        ro_auth="ra-" + secrets.token_urlsafe(12),
        ro_priv="rp-" + secrets.token_urlsafe(12),
        community_ro="ro-" + secrets.token_urlsafe(8),
        ssh_user="enforcer",
        ssh_password="s-" + secrets.token_urlsafe(12),
        enable_secret="e-" + secrets.token_urlsafe(10),
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(creds), f, indent=2)
    return creds
