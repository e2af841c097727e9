"""Request bodies (validated with pydantic, unknown fields refused) and their mapping to
the store's ``OrderSpec``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from enforcer.amend import Changes
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Role, Scope
from enforcer.store.records import DeviceSpec, Evidence, OrderSpec

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
#: No control character (C0, DEL, C1; NUL included) in an identifier or a one-line field.
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
#: Free text may hold tabs and line breaks, no other control character.
TEXT_ONLY = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
#: Patterns whose mismatch is reported as "control characters are not allowed".
CONTROL_PATTERNS = frozenset({NO_CONTROL, TEXT_ONLY})

Text200 = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROL)]
Short60 = Annotated[str, Field(min_length=1, max_length=60, pattern=NO_CONTROL)]
Offset60 = Annotated[str, Field(max_length=60, pattern=NO_CONTROL)]
Ref2000 = Annotated[str, Field(min_length=1, max_length=2000, pattern=NO_CONTROL)]
RefText = Annotated[str, Field(max_length=2000, pattern=NO_CONTROL)]
Id40 = Annotated[str, Field(min_length=1, max_length=40, pattern=NO_CONTROL)]
LongText = Annotated[str, Field(max_length=4000, pattern=TEXT_ONLY)]


class DeviceIn(BaseModel):
    model_config = _STRICT
    mac: Mac
    kind: DeviceKind
    ecm_mac: Mac | None = Field(
        None, description="set_top only: MAC of its embedded cable modem (seen by the CMTS)")

    @model_validator(mode="after")
    def _ecm_only_for_set_tops(self) -> DeviceIn:
        if self.ecm_mac is not None and self.kind is not DeviceKind.SET_TOP:
            raise ValueError("ecm_mac is only for kind set_top")
        return self


class EvidenceIn(BaseModel):
    """A reference, e.g. ``{"kind": "call_recording", "ref": "https://...", "offset":
    "00:03:12"}``. A plain string is shorthand for ``{"kind": "reference", "ref": ...}``."""

    model_config = _STRICT
    kind: Short60
    ref: Ref2000
    offset: Offset60 | None = None
    note: LongText | None = None


class OrderRequest(BaseModel):
    """A ban request (webhook body and ``POST /v1/orders``)."""

    model_config = _STRICT
    ticket: Text200
    account: Text200
    reason: Reason
    all_devices: StrictBool = Field(
        False, description="ban every device linked to the account (provisioning feed), "
        "now and later, besides those listed")
    devices: Annotated[list[DeviceIn], Field(max_length=32)] = Field(
        default_factory=list, validate_default=True,
        description="at least one, unless all_devices")
    scope: Scope | None = Field(None, description="default from policy for the reason")
    node: Text200 | None = None
    requested_by: Text200 | None = None
    note: LongText | None = None
    evidence: Annotated[list[EvidenceIn | RefText],
                        Field(max_length=50)] = Field(default_factory=list)

    @field_validator("devices")
    @classmethod
    def _some_device(cls, v: list[DeviceIn], info: ValidationInfo) -> list[DeviceIn]:
        if not v and not info.data.get("all_devices"):
            raise ValueError("at least 1 device (or all_devices: true)")
        return v

    @model_validator(mode="after")
    def _unique_macs(self) -> OrderRequest:
        seen: set[Mac] = set()
        for d in self.devices:
            for m in (d.mac, d.ecm_mac):
                if m is None:
                    continue
                if m in seen:
                    raise ValueError(f"MAC {m} appears more than once")
                seen.add(m)
        return self

    def to_spec(self, default_scope: Callable[[Reason], Scope]) -> OrderSpec:
        """The store's spec; the scope defaults per reason (the policy's)."""
        return OrderSpec(
            ticket=self.ticket, account=self.account, reason=self.reason,
            scope=self.scope or default_scope(self.reason),
            devices=tuple(DeviceSpec(d.mac, d.kind, d.ecm_mac) for d in self.devices),
            node=self.node, requested_by=self.requested_by, note=self.note,
            evidence=tuple(
                Evidence("reference", e) if isinstance(e, str)
                else Evidence(e.kind, e.ref, e.offset, e.note)
                for e in self.evidence),
            all_devices=self.all_devices,
        )


Layer = Literal["dhcp", "cmts", "headend"]


class AmendmentIn(BaseModel):
    """Change an order in place. Upgrades (a stricter reason, a wider scope, more
    devices, another layer) take effect at once; downgrades (the reverse) open a lift
    request for that part and need the consent of the policy that governs the order."""

    model_config = _STRICT
    reason: Reason | None = None
    scope: Scope | None = None
    node: Text200 | None = Field(
        None, description="the subscriber's node (with scope node or cmts)")
    add_devices: Annotated[list[DeviceIn], Field(max_length=32)] = Field(default_factory=list)
    remove_macs: Annotated[list[Mac], Field(max_length=32)] = Field(default_factory=list)
    add_layers: Annotated[list[Layer], Field(max_length=3)] = Field(default_factory=list)
    remove_layers: Annotated[list[Layer], Field(max_length=3)] = Field(default_factory=list)
    note: LongText | None = Field(None, description="why (kept in the audit trail)")
    ticket: Text200 | None = Field(None, description="the escalation ticket behind it")

    def to_changes(self) -> Changes:
        from enforcer.amend import _UNSET

        return Changes(
            reason=self.reason, scope=self.scope,
            node=self.node if "node" in self.model_fields_set else _UNSET,
            add_devices=tuple((d.mac, d.kind, d.ecm_mac) for d in self.add_devices),
            remove_macs=tuple(self.remove_macs), add_layers=tuple(self.add_layers),
            remove_layers=tuple(self.remove_layers), note=self.note, ticket=self.ticket)


class AmendmentHook(AmendmentIn):
    """An amendment from the escalation system: the order by id, or by its ticket (the
    one active order filed with that ticket)."""

    order_id: Id40 | None = None

    @model_validator(mode="after")
    def _names_an_order(self) -> AmendmentHook:
        if self.order_id is None and self.ticket is None:
            raise ValueError("name the order to amend: order_id or ticket")
        return self


class EscalationAmend(BaseModel):
    """Webhook body ``{"amend": {...}}``."""

    model_config = _STRICT
    amend: AmendmentHook


class LinkIn(BaseModel):
    model_config = _STRICT
    account: Text200
    mac: Mac
    kind: DeviceKind
    ecm_mac: Mac | None = None
    at: AwareDatetime = Field(description="when the provisioning system made the change")

    @model_validator(mode="after")
    def _ecm_only_for_set_tops(self) -> LinkIn:
        if self.ecm_mac is not None and self.kind is not DeviceKind.SET_TOP:
            raise ValueError("ecm_mac is only for kind set_top")
        return self


class ProvisioningEvent(BaseModel):
    """``POST /v1/hooks/provisioning`` (Standard Webhooks, the feed's own secrets)."""

    model_config = _STRICT
    type: Literal["device.linked", "device.unlinked"]
    data: LinkIn


class LiftIn(BaseModel):
    model_config = _STRICT
    reason: Annotated[str, Field(min_length=1, max_length=4000, pattern=TEXT_ONLY)]
    ttl_hours: Annotated[float, Field(gt=0, le=24 * 90)] | None = Field(
        None, description="default and maximum: the policy's time limit for the reason")
    on_behalf_of: Text200 | None = Field(
        None, description="the person who asked for the lift (may not approve it unless "
        "the policy allows the requester to)")


class ApprovalIn(BaseModel):
    model_config = _STRICT
    decision: Literal["approve", "refuse"] = "approve"
    lift_request_id: Id40 | None = None
    note: LongText | None = None


class UserIn(BaseModel):
    model_config = _STRICT
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")]
    role: Role
    # bounded: a token valid for more than ten years is a mistake (and an overflow)
    expires_in_days: Annotated[float, Field(gt=0, le=3650)] | None = None


class TrustIn(BaseModel):
    """``POST /v1/devices/{name}/trust``: the fingerprint the operator read from the
    device's console. The key the device presents is pinned only if it matches."""

    model_config = _STRICT
    expect: Annotated[str, Field(pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$",
                                 description="SHA256:<base64>, as ssh-keygen -l prints it")]


BODY_MODELS: tuple[type[BaseModel], ...] = (OrderRequest, LiftIn, ApprovalIn, UserIn, TrustIn,
                                            AmendmentIn, EscalationAmend, ProvisioningEvent)
