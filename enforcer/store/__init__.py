"""Persistence: SQLAlchemy tables, migrations, the repository (``Store``) and the
hash-chained audit log. SQLite by default, PostgreSQL for several instances."""

from enforcer.store.audit import append_audit, canonical_json, utcnow
from enforcer.store.db import make_engine, upgrade
from enforcer.store.errors import Conflict, IdempotencyConflict, NotFound
from enforcer.store.records import (
    ApprovalRecord,
    AuditRecord,
    DeviceSpec,
    DeviceStateRecord,
    Evidence,
    LiftRequestRecord,
    OrderDeviceRecord,
    OrderRecord,
    OrderSpec,
    TargetRecord,
    TargetSpec,
    UserRecord,
)
from enforcer.store.repository import Store

__all__ = [
    "ApprovalRecord", "AuditRecord", "Conflict", "DeviceSpec", "DeviceStateRecord",
    "Evidence", "IdempotencyConflict", "LiftRequestRecord", "NotFound", "OrderDeviceRecord",
    "OrderRecord", "OrderSpec", "Store", "TargetRecord", "TargetSpec", "UserRecord",
    "append_audit", "canonical_json", "make_engine", "upgrade", "utcnow",
]
