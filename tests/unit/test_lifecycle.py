"""The order lifecycle without a database: which devices an order waits for, and its
state derived from their answers and its blocks (enforcer.domain.lifecycle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from enforcer.domain import lifecycle as lc
from enforcer.domain.coverage import DefinedDevice, DefinedOrder, Topology
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Scope, TargetState

TOPO = Topology(cmtses=frozenset({"c1", "c2", "c3"}), headends=frozenset({"h1"}),
                dhcp=frozenset({"k1"}), nodes={"n1": ["c1"], "n2": ["c2", "c3"]})
CM = DefinedDevice(Mac("00:1d:cf:00:00:01"), DeviceKind.CABLE_MODEM, None)
BOX = DefinedDevice(Mac("00:1d:cf:00:00:02"), DeviceKind.SET_TOP, None)


def order(state: OrderState = OrderState.ACCEPTED, *, scope: Scope = Scope.NODE,
          node: str | None = "n1", devices: tuple[DefinedDevice, ...] = (CM,),
          layers: tuple[str, ...] | None = None) -> DefinedOrder:
    return DefinedOrder("o1", Reason.FRAUD, scope, node, devices, layers, state)


@dataclass
class Scan:
    device: str
    phase: str
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    state: str


def scans(*xs: Scan) -> dict[str, Scan]:
    return {x.device: x for x in xs}


# ---- which devices an order waits for ---------------------------------------------------


def test_a_node_order_waits_for_the_cmtses_of_its_node_and_the_layers_it_has() -> None:
    assert lc.relevant_devices(order(), [], TOPO, ["cmts"]) == ["c1"]
    assert lc.relevant_devices(order(node="n2"), [], TOPO, ["cmts"]) == ["c2", "c3"]
    assert lc.relevant_devices(order(), [], TOPO, ["dhcp", "cmts"]) == ["c1", "k1"]
    # a headend only for an order naming a set-top
    assert lc.relevant_devices(order(), [], TOPO, ["cmts", "headend"]) == ["c1"]
    assert lc.relevant_devices(order(devices=(CM, BOX)), [], TOPO, ["cmts", "headend"]) \
        == ["c1", "h1"]


def test_a_footprint_order_waits_for_every_cmts_and_the_order_s_own_layers_win() -> None:
    assert lc.relevant_devices(order(scope=Scope.FOOTPRINT, node=None), [], TOPO,
                               ["cmts"]) == ["c1", "c2", "c3"]
    # an amended order's own layers replace the reason's
    assert lc.relevant_devices(order(layers=("dhcp",)), [], TOPO, ["cmts"]) == ["k1"]


def test_devices_holding_a_live_block_count_and_removed_ones_do_not() -> None:
    held = [("c3", TargetState.APPLIED), ("c2", TargetState.REMOVED)]
    assert lc.relevant_devices(order(), held, TOPO, ["cmts"]) == ["c1", "c3"]


def test_a_lifting_order_waits_for_the_devices_that_held_its_blocks() -> None:
    held = [("c3", TargetState.APPLIED), ("c2", TargetState.REMOVED)]
    assert lc.relevant_devices(order(OrderState.LIFTING), held, TOPO, ["cmts"]) == ["c2", "c3"]


# ---- the order's state from the devices' answers ----------------------------------------


def test_verified_only_when_every_relevant_device_answered_ban_ok() -> None:
    new, why = lc.derive(OrderState.ENFORCING, ["c1", "c2"],
                         scans(Scan("c1", "ban", True), Scan("c2", "ban", True)), [])
    assert new is OrderState.VERIFIED and "all 2 device(s)" in why
    new, why = lc.derive(OrderState.ENFORCING, ["c1", "c2"], scans(Scan("c1", "ban", True)),
                         [])
    assert (new, why) == (OrderState.ENFORCING, "1 of 2 device(s) answered")


def test_a_lift_answer_does_not_count_for_a_ban() -> None:
    new, _ = lc.derive(OrderState.VERIFIED, ["c1"], scans(Scan("c1", "lift", True)), [])
    assert new is OrderState.ENFORCING


@pytest.mark.parametrize(("targets", "expected"), [
    (["applied", "verified", "removed"], OrderState.ENFORCED),
    (["applied", "retrying"], OrderState.ENFORCING),
    (["pending"], OrderState.ENFORCING),
])
def test_a_device_not_confirmed_leaves_it_enforced_or_enforcing_by_its_blocks(
        targets: list[str], expected: OrderState) -> None:
    new, why = lc.derive(OrderState.VERIFIED, ["c1", "c2"], scans(
        Scan("c1", "ban", True), Scan("c2", "ban", False, {"why": "still forwarding"})),
        [Target(t) for t in targets])
    assert new is expected
    assert why == "1 device(s) not confirmed yet; c2: still forwarding"


def test_lifted_when_every_holder_answered_lift_ok() -> None:
    new, _ = lc.derive(OrderState.LIFTING, ["c1"], scans(Scan("c1", "lift", True)), [])
    assert new is OrderState.LIFTED
    new, why = lc.derive(OrderState.LIFTING, ["c1", "c2"], scans(
        Scan("c1", "lift", True), Scan("c2", "lift", False, {"why": "still blocked"})), [])
    assert (new, why) == (OrderState.LIFTING, "c2: still blocked")
    new, why = lc.derive(OrderState.LIFTING, ["c1", "c2"], scans(Scan("c1", "lift", True)), [])
    assert (new, why) == (OrderState.LIFTING, "1 of 2 device(s) restored")


def test_a_lift_with_no_holder_needs_some_lift_answer_never_a_vacuous_lifted() -> None:
    assert lc.derive(OrderState.LIFTING, [], scans(Scan("c1", "ban", True)), [])[0] \
        is OrderState.LIFTING
    assert lc.derive(OrderState.LIFTING, [], scans(Scan("c1", "lift", True)), [])[0] \
        is OrderState.LIFTED


@pytest.mark.parametrize("state", [OrderState.LIFT_PENDING, OrderState.LIFTED])
def test_states_set_by_the_lift_workflow_are_not_derived(state: OrderState) -> None:
    assert lc.derive(state, ["c1"], scans(Scan("c1", "ban", True)), []) == (None, "")


def test_state_names_are_the_order_states() -> None:
    assert OrderState.VERIFIED in lc.BAN_STATES
    assert OrderState.LIFT_PENDING not in lc.BAN_STATES
    assert OrderState.LIFT_PENDING in lc.SCANNED_FOR_BAN
    assert not lc.is_live(Target("removed")) and lc.is_live(Target("applied"))
    with pytest.raises(ValueError):
        lc.derive("verfied", ["c1"], {}, [])
