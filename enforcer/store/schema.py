"""ORM tables. Times are stored as naive UTC and read back as aware UTC (``UtcDateTime``)
so SQLite and PostgreSQL behave the same; the alembic migrations mirror this module."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, microseconds preserved."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    ticket: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(20), index=True)
    node: Mapped[str | None] = mapped_column(String(200), index=True)
    requested_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), index=True)
    state_detail: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    enforced_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The order's own layer list, set by an amendment (0005); null = the reason's layers.
    layers: Mapped[list[Any] | None] = mapped_column(JSON)
    # An account-level order (0010): devices linked to the account later are added.
    all_devices: Mapped[bool] = mapped_column(Boolean, default=False)


class OrderDevice(Base):
    __tablename__ = "order_devices"
    __table_args__ = (UniqueConstraint("order_id", "mac", name="uq_order_devices_order_mac"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    mac: Mapped[str] = mapped_column(String(17), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    ecm_mac: Mapped[str | None] = mapped_column(String(17), index=True)


class Target(Base):
    __tablename__ = "targets"
    __table_args__ = (
        UniqueConstraint("order_id", "device", "mac", "mechanism", name="uq_targets_identity"),
        Index("ix_targets_due", "state", "next_attempt_at"),
        Index("ix_targets_device", "device", "state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    device: Mapped[str] = mapped_column(String(200))
    mac: Mapped[str] = mapped_column(String(17))
    device_kind: Mapped[str] = mapped_column(String(20))
    mechanism: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    transcript: Mapped[str | None] = mapped_column(Text)
    transcript_sha256: Mapped[str | None] = mapped_column(String(64))
    verdict: Mapped[str | None] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(40))
    token_prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class UserGroup(Base):
    """Named groups a user belongs to (e.g. an approver on the ``hs-board``)."""

    __tablename__ = "user_groups"
    __table_args__ = (UniqueConstraint("user_id", "group_name", name="uq_user_groups_user_group"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_name: Mapped[str] = mapped_column(String(100), index=True)


class UiSession(Base):
    """A signed-in web page session (``/ui/``): the cookie's SHA-256, never the cookie."""

    __tablename__ = "ui_sessions"
    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class WebhookReceipt(Base):
    __tablename__ = "webhook_receipts"
    webhook_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LiftRequest(Base):
    __tablename__ = "lift_requests"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Frozen at request time from the policy (0002); null on requests made before it.
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    policy_group: Mapped[str | None] = mapped_column(String(100))
    rule: Mapped[str | None] = mapped_column(String(20))
    needed: Mapped[int | None] = mapped_column(Integer)
    electorate: Mapped[list[Any] | None] = mapped_column(JSON)
    order_state_before: Mapped[str | None] = mapped_column(String(20))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A downgrade amendment waiting for consent (0005): approving applies it instead of
    # lifting the whole order. Null = a lift of the whole order.
    amendment: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("lift_request_id", "approver", name="uq_approvals_request_approver"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lift_request_id: Mapped[str] = mapped_column(
        ForeignKey("lift_requests.id", ondelete="CASCADE"), index=True
    )
    approver: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Hash-chained audit log. ``payload`` is canonical JSON text, hashed as stored."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60), index=True)
    order_id: Mapped[str | None] = mapped_column(String(40), index=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Which HMAC key made ``hash`` (``enforcer.store.auditkey``); null: legacy SHA-256.
    key_id: Mapped[str | None] = mapped_column(String(40))


class DeviceLink(Base):
    """Which account a device (by MAC) belongs to now, from the provisioning feed."""

    __tablename__ = "device_links"
    mac: Mapped[str] = mapped_column(String(17), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    ecm_mac: Mapped[str | None] = mapped_column(String(17))
    linked: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(10))  # "event" or "export"
    event_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LinkEvent(Base):
    """Every provisioning event received (the links' history), applied or not."""

    __tablename__ = "link_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    mac: Mapped[str] = mapped_column(String(17), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    ecm_mac: Mapped[str | None] = mapped_column(String(17))
    event: Mapped[str] = mapped_column(String(20))  # device.linked / device.unlinked
    event_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(20))  # applied / stale / unchanged
    webhook_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    body_sha256: Mapped[str | None] = mapped_column(String(64))


class DeviceState(Base):
    __tablename__ = "device_state"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(200))
    host_key: Mapped[str | None] = mapped_column(Text)  # pinned by `enforcer devices trust`
    reachable: Mapped[bool | None] = mapped_column(Boolean)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Instance(Base):
    """A running enforcer instance (several may share one PostgreSQL database)."""

    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str | None] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class DeviceLease(Base):
    """Which instance may talk to a device, until when. ``epoch`` is the fencing token:
    it grows every time the lease changes hands."""

    __tablename__ = "device_leases"
    device: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    epoch: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrderScan(Base):
    """One device's answer for one order: looked at, blocks pushed, and whether the
    device shows the order's MACs blocked (or restored, while lifting)."""

    __tablename__ = "order_scans"
    __table_args__ = (Index("ix_order_scans_device_phase", "device", "phase", "ok"),
                      Index("ix_order_scans_failed", "ok", "scanned_at"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"),
                                          primary_key=True)
    device: Mapped[str] = mapped_column(String(200), primary_key=True)
    phase: Mapped[str] = mapped_column(String(10))  # "ban" or "lift"
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    scanned_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxMessage(Base):
    """One outbound webhook message to one target, written in the same transaction as
    the event it announces. ``id`` is the message's ``webhook-id`` on every attempt
    (receivers deduplicate on it); ``body`` is fixed when the row is written. ``state``:
    ``pending`` -> ``delivered``, ``failed`` (the target refused it: 4xx) or ``dropped``
    (attempts used up, or the target left the policy)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_due", "state", "due_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))


def _table(model: type[Base]) -> Table:
    t = model.__table__
    assert isinstance(t, Table)
    return t


# Tables for the hot paths, which use plain SQL statements rather than the ORM's unit of
# work (a write per push, verification and order): same rows, a fraction of the CPU.
ORDERS = _table(Order)
ORDER_DEVICES = _table(OrderDevice)
TARGETS = _table(Target)
SCANS = _table(OrderScan)
RECEIPTS = _table(WebhookReceipt)
AUDIT = _table(AuditEntry)
LINKS = _table(DeviceLink)
