"""What every endpoint answers, as pydantic models: the contract ``/openapi.json``
publishes and integrators generate clients from. Field names are those the daemon has
always sent (the CLI, the web page and the tests read them); a field that can be absent
in a value is declared nullable, never left out.

Objects built from the store's records (orders, targets, lifts, users) are closed
(``additionalProperties: false``). Rows the engine reports about devices (sightings,
checks, plans, dry-run look-ups) are open: they name every field they always carry and
may carry more (a driver's own check details).

Timestamps are ISO 8601 strings with their UTC offset, as ``datetime.isoformat()``
writes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from enforcer.domain.model import DeviceKind, OrderState, Reason, Role, Scope, TargetState

_CLOSED = ConfigDict(extra="forbid")
_OPEN = ConfigDict(extra="allow")
Timestamp = Annotated[str, Field(description="ISO 8601 with UTC offset")]
Seconds = Annotated[float, Field(description="seconds")]


class Closed(BaseModel):
    model_config = _CLOSED


class Open(BaseModel):
    model_config = _OPEN


# ---- errors ---------------------------------------------------------------------------


class ErrorDetail(Closed):
    code: str = Field(description="machine-readable: unauthorized, forbidden, not_found, "
                      "invalid, invalid_json, conflict, rate_limited, ...")
    message: str
    fields: dict[str, str] | None = Field(
        None, description="422: each bad field (dotted path) and what is wrong with it")


class ErrorBody(Closed):
    """Every error the API answers, whatever its status: never a stack trace."""

    error: ErrorDetail


# ---- orders ---------------------------------------------------------------------------


class OrderDeviceView(Closed):
    mac: str
    kind: DeviceKind
    ecm_mac: str | None


class OrderSummary(Closed):
    id: str
    ticket: str
    account: str
    reason: Reason
    scope: Scope
    node: str | None
    state: OrderState
    state_detail: str | None
    source: str
    created_by: str
    requested_by: str | None
    created_at: Timestamp
    updated_at: Timestamp
    enforced_at: Timestamp | None
    verified_at: Timestamp | None
    lifted_at: Timestamp | None
    time_to_verified_s: Seconds | None
    devices: list[OrderDeviceView]
    all_devices: bool


class OrderList(Closed):
    orders: list[OrderSummary]
    limit: int
    offset: int


class EvidenceView(Closed):
    kind: str
    ref: str
    offset: str | None
    note: str | None


class TargetView(Closed):
    id: int
    device: str
    mac: str
    device_kind: DeviceKind
    mechanism: str
    state: TargetState
    attempts: int
    last_error: str | None
    next_attempt_at: Timestamp | None
    applied_at: Timestamp | None
    verified_at: Timestamp | None
    removed_at: Timestamp | None
    verdict: str | None
    transcript_sha256: str | None
    time_to_verified_s: Seconds | None


class ApprovalView(Closed):
    approver: str
    decision: str
    note: str | None
    created_at: Timestamp


class LiftView(Closed):
    id: str
    order_id: str
    requested_by: str
    reason: str
    state: str = Field(description="open, approved, refused, expired or superseded")
    created_at: Timestamp
    expires_at: Timestamp
    on_behalf_of: str | None
    group: str | None
    rule: str | None
    needed: int | None
    electorate: list[str] | None
    decided_at: Timestamp | None
    approvals: list[ApprovalView]


class LayerView(Closed):
    targets: int
    applied: int
    verified: int
    holds: bool
    verified_all: bool


class Consent(Closed):
    group: str | None
    rule: str
    n: int | None


class HoldingOrder(Closed):
    order_id: str
    reason: Reason
    state: OrderState
    ticket: str
    consent: Consent


class Governing(Closed):
    reason: Reason
    group: str | None
    rule: str
    n: int | None


class Coverage(Closed):
    mac: str
    orders: list[HoldingOrder]
    governing: Governing | None
    forwards_again_when: str


class BreachView(Closed):
    at: Timestamp | None
    device: Any = None
    mac: Any = None
    state: Any = None
    source: Any = None


class Breaches(Closed):
    count: int
    recent: list[BreachView]


class DeviceOrigin(Closed):
    source: Literal["order", "account link", "amendment", "provisioning feed"]
    by: str
    at: Timestamp | None
    note: str | None = None


class OrderDetailDevice(OrderDeviceView):
    origin: DeviceOrigin | None


class OrderDetail(OrderSummary):
    devices: list[OrderDetailDevice]  # type: ignore[assignment]
    note: str | None
    evidence: list[EvidenceView]
    targets: list[TargetView]
    lift_requests: list[LiftView]
    layers: dict[str, LayerView] | None = Field(
        None, description="by enforcement layer (dhcp, cmts, headend): targets held and "
        "verified")
    coverage: list[Coverage]
    linked_orders: list[str]
    breaches: Breaches
    order_layers: list[str] | None


class OrderAccepted(Closed):
    order_id: str
    state: OrderState
    created: bool = Field(description="false: a replay of a request already accepted")


class LiftRequested(Closed):
    order_id: str
    state: OrderState
    lift_request: LiftView
    note: str
    stays_blocked: list[Coverage]


class Decision(Closed):
    lift_request: LiftView
    outcome: Literal["approved", "refused", "recorded"]
    order_state: OrderState
    note: str
    stays_blocked: list[Coverage]


class Change(Closed):
    field: str
    before: Any
    after: Any


class AmendmentResult(Closed):
    order_id: str
    state: OrderState
    replayed: bool
    applied: list[Change]
    pending: LiftView | None
    superseded_lift_requests: list[str]
    note: str


# ---- accounts, provisioning, dry run --------------------------------------------------


class LinkEventResult(Closed):
    outcome: str = Field(description="applied, unchanged or stale")
    account: str
    mac: str
    orders_extended: list[str]


class TimelineEntry(Closed):
    at: Timestamp | None
    order_id: str
    action: str
    actor: str
    seq: int


class LinkView(Closed):
    mac: str
    kind: DeviceKind
    ecm_mac: str | None
    linked: bool
    source: str
    at: Timestamp | None


class LinkEventView(Closed):
    event: str
    mac: str
    kind: str
    ecm_mac: str | None
    at: Timestamp
    received_at: Timestamp
    source: str
    outcome: str


class AccountHistory(Closed):
    account: str
    orders: list[OrderSummary]
    timeline: list[TimelineEntry]
    links: list[LinkView]
    link_history: list[LinkEventView]


class PreviewOrder(OrderSummary):
    id: None  # type: ignore[assignment]
    state: None  # type: ignore[assignment]


class PreviewRow(Open):
    device: str
    layer: str
    mac: str | None
    kind: str | None
    seen: str
    state: str | None
    error: str | None
    mechanism: str | None
    action: str
    reset: bool


class PreviewConsent(Closed):
    group: str | None
    rule: str
    n: int | None
    needed: int
    electorate_now: list[str]
    time_limit_hours: float | None


class OrderPreview(Closed):
    order: PreviewOrder
    devices_from_links: list[str]
    layers: list[str]
    targets: list[PreviewRow]
    lookups: list[PreviewRow]
    resets: list[str]
    consent: PreviewConsent
    note: str


# ---- devices, where, plan, cluster ----------------------------------------------------


class DeviceView(Open):
    name: str
    kind: str
    profile: str
    host: str
    snmp_port: int | None
    ssh_port: int | None
    host_key_pinned: bool
    reachable: bool | None
    last_error: str | None
    owner: str | None


class DeviceList(Closed):
    devices: list[DeviceView]


class DeviceCheck(Open):
    """What contacting the device found; a driver may add details of its own."""

    name: str
    reachable: bool | None
    error: str | None = None


class TrustResult(Closed):
    name: str
    fingerprint: str
    host_key: str
    pinned_in: Literal["inventory", "store"]
    previous_fingerprint: str | None
    changed: bool


class Sighting(Open):
    device: str
    mac: str
    verdict: str
    state: str
    error: str | None


class WhereResult(Closed):
    mac: str
    sightings: list[Sighting]
    orders: list[HoldingOrder]


class PlanRow(Open):
    order_id: str | None
    device: str
    mac: str | None
    kind: str | None
    mechanism: str | None
    current_state: str
    action: str


class PlanResult(Closed):
    order_id: str | None
    targets: list[PlanRow]


class ReconcileResult(Open):
    elapsed_s: Seconds
    devices: int
    checked: int
    repairs: int
    unreachable: list[str]
    unowned_blocks: int


class InstanceView(Closed):
    id: str
    url: str
    heartbeat_age_s: Seconds
    live: bool
    devices: int


class LeaseView(Closed):
    device: str
    owner: str
    epoch: int
    age_s: Seconds
    expires_in_s: Seconds


class ClusterStatus(Closed):
    self_: str | None = Field(None, alias="self", description="this instance's id")
    instances: list[InstanceView]
    leases: list[LeaseView]
    failovers_here: int | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              serialize_by_alias=True)


# ---- users, health --------------------------------------------------------------------


class UserView(Closed):
    name: str
    role: Role
    token_prefix: str
    created_at: Timestamp
    disabled: bool
    expires_at: Timestamp | None
    groups: list[str]


class UserList(Closed):
    users: list[UserView]


class UserCreated(Closed):
    user: UserView
    token: str = Field(description="shown in this answer only; the store keeps its hash")


class Health(Closed):
    status: Literal["ok"]


class ReadyChecks(Closed):
    database: Literal["ok", "unreachable"]
    engine: str


class Ready(Closed):
    ready: bool
    checks: ReadyChecks


# ---- what each endpoint may answer ----------------------------------------------------

_WHY = {
    401: "no valid bearer token (or, for a webhook, no valid signature)",
    403: "the token's role lacks the permission",
    404: "no such order, lift request, device or account order",
    409: "conflict: idempotency key reused with another body, lift already pending, "
         "host key differs, ...",
    413: "body larger than api.max_body_bytes",
    422: "invalid body, parameter or path; `fields` names each bad one",
    429: "rate limited; Retry-After says when to retry",
    500: "unexpected; details only in the daemon's log",
    501: "this engine cannot do that",
    502: "a device failed while the engine answered",
    503: "not ready",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for FastAPI: each status answered with :class:`ErrorBody` (and
    500, which any endpoint may answer)."""
    return {c: {"model": ErrorBody, "description": _WHY[c]} for c in (*codes, 500)}


#: The statuses every endpoint with a bearer token can answer.
AUTH = (401, 403, 422)
#: ... and those with a JSON body.
BODY = (*AUTH, 413)
