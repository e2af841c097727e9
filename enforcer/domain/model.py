"""Order and target vocabulary shared by every layer (contract: docs/architecture.md, "States")."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    THREAT_OF_VIOLENCE = "threat_of_violence"
    HARASSMENT = "harassment"
    FRAUD = "fraud"
    THEFT_OF_SERVICE = "theft_of_service"
    NON_PAYMENT = "non_payment"
    OTHER = "other"


class Scope(StrEnum):
    NODE = "node"  # the CMTS interfaces serving the subscriber's fiber node
    CMTS = "cmts"  # every interface of the CMTS(es) serving that node
    FOOTPRINT = "footprint"  # every CMTS in inventory


class DeviceKind(StrEnum):
    CABLE_MODEM = "cable_modem"
    SET_TOP = "set_top"  # eCM MAC on the CMTS side + entitlement on the headend
    MTA = "mta"
    ROUTER = "router"


class OrderState(StrEnum):
    ACCEPTED = "accepted"
    ENFORCING = "enforcing"
    ENFORCED = "enforced"  # every target applied
    VERIFIED = "verified"  # registration state confirms it everywhere in scope
    LIFT_PENDING = "lift_pending"  # waiting for approvals
    LIFTING = "lifting"
    LIFTED = "lifted"


ACTIVE_ORDER_STATES = frozenset(
    {OrderState.ACCEPTED, OrderState.ENFORCING, OrderState.ENFORCED, OrderState.VERIFIED,
     OrderState.LIFT_PENDING}
)


class TargetState(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    VERIFIED = "verified"
    RETRYING = "retrying"  # with last error and next attempt
    REMOVED = "removed"


class Role(StrEnum):
    ESCALATION_SYSTEM = "escalation-system"
    ENGINEER = "engineer"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Verdict(StrEnum):
    """What a device's registration state says about one MAC."""

    BLOCKED = "blocked"  # registered but cannot forward, or refused / denied
    FORWARDING = "forwarding"  # registered and passing traffic
    ABSENT = "absent"  # the device does not know the MAC (or lists it offline)
    UNKNOWN = "unknown"  # the state could not be read or mapped
