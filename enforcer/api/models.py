"""Request bodies (validated with pydantic, unknown fields refused) and their mapping to
the store's ``OrderSpec``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Role, Scope
from enforcer.store.records import DeviceSpec, Evidence, OrderSpec

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(max_length=4000)]


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
    kind: Annotated[str, Field(min_length=1, max_length=60)]
    ref: Annotated[str, Field(min_length=1, max_length=2000)]
    offset: Annotated[str, Field(max_length=60)] | None = None
    note: LongText | None = None


class OrderRequest(BaseModel):
    """A ban request (webhook body and ``POST /v1/orders``)."""

    model_config = _STRICT
    ticket: Text200
    account: Text200
    reason: Reason
    devices: Annotated[list[DeviceIn], Field(min_length=1, max_length=32)]
    scope: Scope | None = Field(None, description="default from policy for the reason")
    node: Text200 | None = None
    requested_by: Text200 | None = None
    note: LongText | None = None
    evidence: Annotated[list[EvidenceIn | Annotated[str, Field(max_length=2000)]],
                        Field(max_length=50)] = Field(default_factory=list)

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
        )


class LiftIn(BaseModel):
    model_config = _STRICT
    reason: Annotated[str, Field(min_length=1, max_length=4000)]
    ttl_hours: Annotated[float, Field(gt=0, le=24 * 90)] | None = Field(
        None, description="default and maximum: the policy's time limit for the reason")
    on_behalf_of: Text200 | None = Field(
        None, description="the person who asked for the lift (may not approve it unless "
        "the policy allows the requester to)")


class ApprovalIn(BaseModel):
    model_config = _STRICT
    decision: Literal["approve", "refuse"] = "approve"
    lift_request_id: Annotated[str, Field(max_length=40)] | None = None
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


BODY_MODELS: tuple[type[BaseModel], ...] = (OrderRequest, LiftIn, ApprovalIn, UserIn, TrustIn)
