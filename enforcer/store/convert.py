"""ORM row -> frozen record conversions (called inside a session)."""

from __future__ import annotations

from typing import Any

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Role, Scope, TargetState
from enforcer.store import schema as s
from enforcer.store.records import (
    ApprovalRecord,
    DeviceStateRecord,
    Evidence,
    LiftRequestRecord,
    OrderDeviceRecord,
    OrderRecord,
    TargetRecord,
    UserRecord,
)


def evidence_from_json(items: list[Any]) -> tuple[Evidence, ...]:
    return tuple(
        Evidence(kind=str(i["kind"]), ref=str(i["ref"]), offset=i.get("offset"),
                 note=i.get("note"))
        for i in items
    )


#: An ORM object or a plain result row with the same column names (the hot paths read
#: rows with plain statements; see ``schema.ORDERS``).
Row = Any


def order(row: s.Order | Row, devices: list[s.OrderDevice] | list[Row], *,
          sorted_: bool = False) -> OrderRecord:
    """``sorted_``: ``devices`` are already in id order."""
    return OrderRecord(
        id=row.id, ticket=row.ticket, account=row.account, reason=Reason(row.reason),
        scope=Scope(row.scope), node=row.node, requested_by=row.requested_by, note=row.note,
        evidence=evidence_from_json(row.evidence), state=OrderState(row.state),
        state_detail=row.state_detail, source=row.source, created_by=row.created_by,
        created_at=row.created_at, updated_at=row.updated_at, enforced_at=row.enforced_at,
        verified_at=row.verified_at, lifted_at=row.lifted_at,
        devices=tuple(
            OrderDeviceRecord(Mac(d.mac), DeviceKind(d.kind),
                              Mac(d.ecm_mac) if d.ecm_mac else None)
            for d in (devices if sorted_ else sorted(devices, key=lambda d: d.id))
        ),
        layers=tuple(str(x) for x in row.layers) if row.layers is not None else None,
        all_devices=bool(row.all_devices),
    )


def target(row: s.Target | Row) -> TargetRecord:
    return TargetRecord(
        id=row.id, order_id=row.order_id, device=row.device, mac=Mac(row.mac),
        device_kind=DeviceKind(row.device_kind), mechanism=row.mechanism,
        state=TargetState(row.state), attempts=row.attempts, last_error=row.last_error,
        next_attempt_at=row.next_attempt_at, applied_at=row.applied_at,
        verified_at=row.verified_at, removed_at=row.removed_at, transcript=row.transcript,
        transcript_sha256=row.transcript_sha256, verdict=row.verdict, updated_at=row.updated_at,
    )


def user(row: s.User | Row, groups: tuple[str, ...] = ()) -> UserRecord:
    return UserRecord(id=row.id, name=row.name, role=Role(row.role),
                      token_prefix=row.token_prefix, created_at=row.created_at,
                      disabled=row.disabled, expires_at=row.expires_at,
                      groups=tuple(sorted(groups)))


def device_state(row: s.DeviceState) -> DeviceStateRecord:
    return DeviceStateRecord(name=row.name, host_key_fingerprint=row.host_key_fingerprint,
                             reachable=row.reachable, last_seen=row.last_seen,
                             last_error=row.last_error, updated_at=row.updated_at,
                             host_key=row.host_key)


def approval(row: s.Approval) -> ApprovalRecord:
    return ApprovalRecord(lift_request_id=row.lift_request_id, approver=row.approver,
                          decision=row.decision, note=row.note, created_at=row.created_at)


def lift_request(row: s.LiftRequest, approvals: list[s.Approval]) -> LiftRequestRecord:
    return LiftRequestRecord(
        id=row.id, order_id=row.order_id, requested_by=row.requested_by, reason=row.reason,
        state=row.state, created_at=row.created_at, expires_at=row.expires_at,
        approvals=tuple(approval(a) for a in sorted(approvals, key=lambda a: a.id)),
        on_behalf_of=row.on_behalf_of, group=row.policy_group, rule=row.rule,
        needed=row.needed,
        electorate=tuple(str(x) for x in row.electorate) if row.electorate is not None else None,
        order_state_before=row.order_state_before, decided_at=row.decided_at,
        amendment=row.amendment,
    )
