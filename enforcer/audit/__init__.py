"""Audit trail tools beyond the hash chain itself (``enforcer.store.audit``): anchoring
the chain head to external sinks, verification against those anchors, and evidence
bundles (export and offline verification)."""

from enforcer.audit.anchor import (
    Anchor,
    AnchorSink,
    FileAnchorSink,
    SyslogAnchorSink,
    anchor_audit,
    build_sinks,
    read_anchor_file,
)
from enforcer.audit.verify import Verdict, verify_store

__all__ = [
    "Anchor", "AnchorSink", "FileAnchorSink", "SyslogAnchorSink", "Verdict", "anchor_audit",
    "build_sinks", "read_anchor_file", "verify_store",
]
