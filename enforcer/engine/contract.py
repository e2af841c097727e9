"""The seam between the HTTP API and the engine: one Protocol, :class:`EngineAPI`, and
the typed results it returns. The engine (``enforcer.engine.core.Engine``), the bridge
that runs it on its own loop (``enforcer.engine.bridge.EngineBridge``) and the API's
test double (``enforcer.api.testing.RecordingEngine``) are all checked against it by
mypy (the functions at the end of this module). The field names are those of the
HTTP answers that carry these results (docs/api.md).

Errors: ``check_device``, ``plan`` and ``trust_device`` raise ``LookupError`` for an
unknown device or order (-> 404); ``enforcer.errors.TransportError`` for a device that
failed (-> 502); ``enforcer.errors.InputError`` for a bad argument (-> 422);
``trust_device`` ``enforcer.errors.HostKeyError`` for a key it refuses (-> 409).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Required, TypedDict

from enforcer.domain.mac import Mac
from enforcer.drivers.base import CheckFacts
from enforcer.store.records import OrderRecord


class Sighting(TypedDict):
    """What one device says of a MAC now (``/v1/where``): its verdict (blocked,
    forwarding, absent, unknown), the raw state that decided it, or why it could not
    be asked (``state`` ``not queried``: another instance owns the device)."""

    device: str
    mac: str
    verdict: str
    state: str
    error: str | None


class PlanRow(TypedDict):
    """One line of a dry run of stored orders (``/v1/plan``)."""

    order_id: str | None
    device: str
    mac: str | None
    kind: str | None
    mechanism: str | None
    current_state: str
    action: str


class PreviewRow(TypedDict):
    """One line of a dry run of an order not stored (``dry_run`` intake): per device
    in scope and MAC, what it was seen as and the block that would be pushed or shared
    (``reset``: the modem would be reset)."""

    device: str
    layer: str
    mac: str | None
    kind: str | None
    seen: str
    state: str
    error: str | None
    mechanism: str | None
    action: str
    reset: bool


class DeviceRow(TypedDict):
    """An inventory device and its last known state (``/v1/devices``). A port is None
    when the device's profile does not use that transport; ``owner``: the instance
    holding its lease."""

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


class Checked(CheckFacts, total=False):
    """``/v1/devices/{name}/check`` of a device this instance owns: whether it
    answered now (``error``: why not), with what its driver read
    (:class:`enforcer.drivers.base.CheckFacts`)."""

    name: Required[str]
    reachable: Required[bool]
    error: Required[str | None]


class NotChecked(TypedDict):
    """``/v1/devices/{name}/check`` of a device another instance owns: not contacted
    (``state`` ``not queried``; ``error`` names the owner)."""

    name: str
    reachable: None
    error: str
    device: str
    verdict: str
    state: str


CheckResult = Checked | NotChecked


class TrustResult(TypedDict):
    """``/v1/devices/{name}/trust``: the key pinned (or confirmed) and where."""

    name: str
    fingerprint: str
    host_key: str
    pinned_in: str
    previous_fingerprint: str | None
    changed: bool


class ReconcileSummary(TypedDict):
    """``/v1/reconcile``: one full reconcile cycle over this instance's devices."""

    elapsed_s: float
    devices: int
    checked: int
    repairs: int
    unreachable: list[str]
    unowned_blocks: int


class InstanceStatus(TypedDict):
    id: str
    url: str | None
    heartbeat_age_s: float
    live: bool
    devices: int


class LeaseStatus(TypedDict):
    device: str
    owner: str
    epoch: int
    age_s: float
    expires_in_s: float


class ClusterStatus(TypedDict):
    """``/v1/cluster``: instances (live or not), each device's owner, lease epoch and
    age; ``self`` is this instance's id."""

    self: str
    instances: list[InstanceStatus]
    leases: list[LeaseStatus]
    failovers_here: int


class EngineAPI(Protocol):
    """What the HTTP API asks of the engine."""

    def order_accepted(self, order_id: str) -> None:
        """Wake the device loops for a new or changed order; must not block."""

    def ready(self) -> tuple[bool, str]:
        """(ready, why) for /readyz."""

    def node_names(self) -> set[str]:
        """Names of the inventory's nodes, to validate an order's ``node``."""

    def layer_of(self, device: str) -> str:
        """The enforcement layer (dhcp, cmts, headend) of an inventory device;
        KeyError for a device not in the inventory."""

    def devices(self) -> list[DeviceRow]:
        """Inventory devices with their last known state."""

    async def where(self, mac: Mac) -> list[Sighting]:
        """Where ``mac`` is registered right now, across devices."""

    async def plan(self, order_id: str | None) -> list[PlanRow]:
        """Dry run: the targets the engine would push (for one order, or all active)."""

    async def preview(self, order: OrderRecord) -> list[PreviewRow]:
        """Dry run of an order that is not stored: per device in scope and MAC, the
        block that would be pushed or shared and whether the modem would be reset."""

    async def check_device(self, name: str) -> CheckResult:
        """Contact a device now and report what was found."""

    async def trust_device(self, name: str, actor: str,
                           expect: str | None = None) -> TrustResult:
        """Pin the SSH host key the device presents now (``enforcer devices trust``) if
        its fingerprint is ``expect``; ``enforcer.errors.HostKeyError`` when it is not,
        or when the inventory pins a different key."""

    async def reconcile_all(self) -> ReconcileSummary:
        """One full reconcile cycle over every device this instance owns, now."""

    async def cluster_status(self) -> ClusterStatus:
        """Instances, device leases and their ages."""


if TYPE_CHECKING:  # mypy checks every implementation against the one Protocol
    from enforcer.api.testing import RecordingEngine
    from enforcer.engine.bridge import EngineBridge
    from enforcer.engine.core import Engine

    def _engine(e: Engine) -> EngineAPI:
        return e

    def _bridge(b: EngineBridge) -> EngineAPI:
        return b

    def _double(d: RecordingEngine) -> EngineAPI:
        return d
