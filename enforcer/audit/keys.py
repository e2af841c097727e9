"""Loading the audit keys named by the settings, and announcing them in the chain."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from enforcer.audit.signing import fingerprint, load_signing_key, public_text, raw_public
from enforcer.config import Settings
from enforcer.store import Store
from enforcer.store.auditkey import AuditKeyring, load_keyring
from enforcer.store.schema import AuditEntry

log = logging.getLogger(__name__)
ACTION = "audit.keys"


def open_keys(settings: Settings, *, create: bool = True) -> tuple[AuditKeyring, str]:
    """The chain's HMAC keyring and the evidence key's fingerprint (both made on first
    use when ``create``). Paths are logged, never keys."""
    keyring = load_keyring(settings.audit_key_dir(), create=create)
    signing = load_signing_key(settings.evidence_key_path(), create=create)
    fpr = fingerprint(raw_public(signing))
    log.info("audit keys: HMAC %s in %s; evidence signing key %s (fingerprint %s)",
             keyring.current, settings.audit_key_dir(), settings.evidence_key_path(), fpr)
    return keyring, fpr


def announce_keys(store: Store, key_id: str, evidence_fpr: str,
                  evidence_public: str | None = None) -> bool:
    """Append an ``audit.keys`` entry naming the current HMAC key id and the evidence
    key (fingerprint and public key) unless the newest such entry already does; True
    when one was written."""
    with store.read_session() as session:
        row = session.execute(select(AuditEntry.payload).where(AuditEntry.action == ACTION)
                              .order_by(AuditEntry.seq.desc()).limit(1)).first()
    last = json.loads(row[0]) if row else {}
    if last.get("hmac_key_id") == key_id and last.get("evidence_key_fingerprint") == \
            evidence_fpr:
        return False
    store.record_event("engine", ACTION, None, {
        "hmac_key_id": key_id, "evidence_key_fingerprint": evidence_fpr,
        "evidence_public_key": evidence_public})
    return True


def evidence_public_key(settings: Settings) -> str:
    return public_text(load_signing_key(settings.evidence_key_path()))
