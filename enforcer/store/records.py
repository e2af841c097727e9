"""Plain, frozen values the store returns and accepts, so no caller holds an ORM object
outside a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Role, Scope, TargetState


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    mac: Mac
    kind: DeviceKind
    ecm_mac: Mac | None = None  # set-tops: the embedded cable modem seen by the CMTS


@dataclass(frozen=True, slots=True)
class Evidence:
    """A reference to why the order exists: a call recording and offset, a ticket link."""

    kind: str
    ref: str
    offset: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "offset": self.offset, "note": self.note}


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """A validated request for a ban (from the webhook or the API)."""

    ticket: str
    account: str
    reason: Reason
    scope: Scope
    devices: tuple[DeviceSpec, ...]
    node: str | None = None
    requested_by: str | None = None
    note: str | None = None
    evidence: tuple[Evidence, ...] = ()
    all_devices: bool = False


@dataclass(frozen=True, slots=True)
class OrderDeviceRecord:
    mac: Mac
    kind: DeviceKind
    ecm_mac: Mac | None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: str
    ticket: str
    account: str
    reason: Reason
    scope: Scope
    node: str | None
    requested_by: str | None
    note: str | None
    evidence: tuple[Evidence, ...]
    state: OrderState
    state_detail: str | None
    source: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    enforced_at: datetime | None
    verified_at: datetime | None
    lifted_at: datetime | None
    devices: tuple[OrderDeviceRecord, ...] = field(default=())
    layers: tuple[str, ...] | None = None  # set by an amendment; None = the reason's
    all_devices: bool = False  # an account order: devices linked later are added


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One thing to push: a mechanism on a device for a MAC."""

    device: str
    mac: Mac
    device_kind: DeviceKind
    mechanism: str


@dataclass(frozen=True, slots=True)
class TargetRecord:
    id: int
    order_id: str
    device: str
    mac: Mac
    device_kind: DeviceKind
    mechanism: str
    state: TargetState
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    applied_at: datetime | None
    verified_at: datetime | None
    removed_at: datetime | None
    transcript: str | None
    transcript_sha256: str | None
    verdict: str | None
    updated_at: datetime

    @property
    def spec(self) -> TargetSpec:
        return TargetSpec(self.device, self.mac, self.device_kind, self.mechanism)


@dataclass(frozen=True, slots=True)
class ActiveTarget:
    """A live target as the reconciler reads it: what it compares with the device and
    what it needs to mark the target for repair (no transcript, no timestamps: a
    reconcile of 100,000 bans holds one of these per ban on the devices in flight)."""

    id: int
    order_id: str
    device: str
    mac: Mac
    mechanism: str
    state: TargetState
    attempts: int


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    role: Role
    token_prefix: str
    created_at: datetime
    disabled: bool
    expires_at: datetime | None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceStateRecord:
    name: str
    host_key_fingerprint: str | None
    reachable: bool | None
    last_seen: datetime | None
    last_error: str | None
    updated_at: datetime
    host_key: str | None = None  # the OpenSSH key line pinned by `enforcer devices trust`


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    lift_request_id: str
    approver: str
    decision: str
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LiftRequestRecord:
    id: str
    order_id: str
    requested_by: str
    reason: str
    state: str  # open | approved | expired | refused
    created_at: datetime
    expires_at: datetime
    approvals: tuple[ApprovalRecord, ...] = ()
    # The policy frozen at request time (None on requests made before the policy).
    on_behalf_of: str | None = None
    group: str | None = None
    rule: str | None = None
    needed: int | None = None
    electorate: tuple[str, ...] | None = None
    order_state_before: str | None = None
    decided_at: datetime | None = None
    # A downgrade amendment this request would apply (None: lift the whole order).
    amendment: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: datetime
    actor: str
    action: str
    order_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    key_id: str | None = None
