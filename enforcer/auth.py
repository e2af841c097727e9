"""Who may do what. One table maps each permission to the roles holding it; the HTTP
layer asks :func:`allowed`. Webhook intake is not here: the escalation system proves
itself with the webhook signature, not a bearer token."""

from __future__ import annotations

from enum import StrEnum

from enforcer.domain.model import Role


class Permission(StrEnum):
    ORDER_CREATE = "order.create"  # POST /v1/orders
    ORDER_READ = "order.read"  # GET /v1/orders, /v1/orders/{id}, /v1/lifts/{id}
    LIFT_REQUEST = "lift.request"  # POST /v1/orders/{id}/lift
    LIFT_APPROVE = "lift.approve"  # POST /v1/orders/{id}/approvals
    DEVICE_READ = "device.read"  # GET /v1/devices, /v1/where, /v1/plan
    DEVICE_CHECK = "device.check"  # POST /v1/devices/{name}/check, /v1/reconcile (touch devices)
    DEVICE_TRUST = "device.trust"  # POST /v1/devices/{name}/trust (pins an SSH host key)
    USER_ADMIN = "user.admin"  # /v1/users
    EVIDENCE_EXPORT = "evidence.export"  # GET /ui/orders/{id}/evidence (bundle download)


_E, _EN, _AP, _AU, _AD = (Role.ESCALATION_SYSTEM, Role.ENGINEER, Role.APPROVER, Role.AUDITOR,
                          Role.ADMIN)

PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.ORDER_CREATE: frozenset({_EN, _AD, _E}),
    Permission.ORDER_READ: frozenset({_EN, _AU, _AD, _AP, _E}),
    Permission.LIFT_REQUEST: frozenset({_EN, _AD}),
    Permission.LIFT_APPROVE: frozenset({_AP}),
    Permission.DEVICE_READ: frozenset({_EN, _AD, _AU}),
    Permission.DEVICE_CHECK: frozenset({_EN, _AD}),
    Permission.DEVICE_TRUST: frozenset({_EN, _AD}),
    Permission.USER_ADMIN: frozenset({_AD}),
    Permission.EVIDENCE_EXPORT: frozenset({_AU, _AD}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return role in PERMISSIONS[permission]


def roles_for(permission: Permission) -> list[str]:
    return sorted(r.value for r in PERMISSIONS[permission])


def bearer_token(authorization: str | None) -> str | None:
    """The token from an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
