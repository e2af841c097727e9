"""``amend.apply_changes`` and ``amend.upgrades_only`` without a store: what an amendment
makes of an order's definition (reasons bringing their own layers), which amendments are
refused and with what message, and the upgrading part of a mixed amendment."""

from __future__ import annotations

from typing import Any

import pytest

from enforcer.amend import Changes, apply_changes, upgrades_only
from enforcer.domain import coverage as cv
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Scope
from enforcer.lifts import LiftError
from enforcer.policy import parse_policy

M1, M2, M3 = (Mac(x) for x in ("00:1d:cf:00:00:01", "00:1d:cf:00:00:02", "00:1d:cf:00:00:03"))
CM = DeviceKind.CABLE_MODEM

#: Each reason brings its own layers: non-payment only the DHCP refusal, fraud the CMTS
#: block, a threat the CMTS block and the set-tops.
LAYERS = {Reason.NON_PAYMENT: ["dhcp"], Reason.FRAUD: ["cmts"],
          Reason.THREAT_OF_VIOLENCE: ["cmts", "headend"]}


def _policy() -> Any:
    reasons: dict[str, Any] = {r.value: {"default_scope": "node", "lift": {
        "rule": "n_of_m", "n": 2}} for r in Reason}
    for r, layers in LAYERS.items():
        reasons[r.value]["layers"] = layers
    reasons["threat_of_violence"]["lift"] = {"group": "board", "rule": "unanimous"}
    reasons["non_payment"]["lift"] = {"group": "billing", "rule": "any"}
    return parse_policy({"reasons": reasons}, "test policy")


POLICY = _policy()


def _def(reason: Reason = Reason.FRAUD, layers: tuple[str, ...] = ("cmts",),
         devices: tuple[Mac, ...] = (M1,), scope: Scope = Scope.NODE,
         node: str | None = "n1") -> cv.Definition:
    return cv.Definition(reason, scope, node, tuple((m, CM, None) for m in devices), layers)


def _refused(before: cv.Definition, ch: Changes) -> str:
    with pytest.raises(LiftError) as err:
        apply_changes(before, ch, POLICY)
    assert (err.value.status, err.value.code) == (422, "invalid")
    return err.value.message


@pytest.mark.parametrize(("before", "reason", "layers"), [
    # the new reason's layers come, the old reason's own go
    (Reason.FRAUD, Reason.THREAT_OF_VIOLENCE, ("cmts", "headend")),
    (Reason.THREAT_OF_VIOLENCE, Reason.NON_PAYMENT, ("dhcp",)),
    (Reason.NON_PAYMENT, Reason.FRAUD, ("cmts",)),
    # a layer both reasons bring stays
    (Reason.THREAT_OF_VIOLENCE, Reason.FRAUD, ("cmts",)),
])
def test_a_reason_change_brings_its_layers(before: Reason, reason: Reason,
                                          layers: tuple[str, ...]) -> None:
    start = _def(before, tuple(LAYERS[before]))
    after = apply_changes(start, Changes(reason=reason), POLICY)
    assert (after.reason, after.layers) == (reason, layers)


def test_layers_the_order_added_itself_outlive_a_reason_change() -> None:
    start = _def(Reason.FRAUD, ("dhcp", "cmts"))  # dhcp added by an earlier amendment
    after = apply_changes(start, Changes(reason=Reason.THREAT_OF_VIOLENCE), POLICY)
    assert after.layers == ("dhcp", "cmts", "headend")
    # naming the reason it has already changes no layer
    same = apply_changes(start, Changes(reason=Reason.FRAUD), POLICY)
    assert same == start


def test_named_layers_win_and_come_out_in_application_order() -> None:
    start = _def(Reason.FRAUD, ("cmts",))
    after = apply_changes(start, Changes(reason=Reason.THREAT_OF_VIOLENCE,
                                         add_layers=("dhcp",), remove_layers=("headend",)),
                          POLICY)
    assert after.layers == ("dhcp", "cmts")
    # remove wins over add; application order whatever the order they were named in
    after = apply_changes(start, Changes(add_layers=("headend", "dhcp"),
                                         remove_layers=("cmts",)), POLICY)
    assert after.layers == ("dhcp", "headend")


def test_scope_node_and_devices() -> None:
    start = _def(devices=(M1, M2))
    same = apply_changes(start, Changes(add_layers=("cmts",)), POLICY)
    assert same == start  # nothing named: nothing changes
    after = apply_changes(start, Changes(scope=Scope.FOOTPRINT, node=None,
                                         remove_macs=(M1,),
                                         add_devices=((M3, DeviceKind.SET_TOP, M1),)),
                          POLICY)
    assert (after.scope, after.node) == (Scope.FOOTPRINT, None)
    assert after.devices == ((M2, CM, None), (M3, DeviceKind.SET_TOP, M1))
    assert apply_changes(start, Changes(node="n2"), POLICY).node == "n2"
    assert apply_changes(start, Changes(scope=Scope.CMTS), POLICY).node == "n1"


def test_refusals_say_why() -> None:
    start = _def(devices=(M1, M2))
    assert _refused(start, Changes(remove_layers=("cmts",))) == (
        "the amendment would leave the order no layer")
    assert _refused(start, Changes(remove_macs=(M3, M1, M2, Mac("00:1d:cf:00:00:04")))) == (
        f"remove_macs: {M3}, 00:1d:cf:00:00:04 not on the order")
    assert _refused(start, Changes(add_devices=((M3, CM, None), (M2, CM, None),
                                                (M1, CM, None)))) == (
        f"add_devices: {M2}, {M1} already on the order")
    assert _refused(start, Changes(remove_macs=(M1, M2))) == (
        "the amendment would leave the order no device; lift the order instead")
    # every device swapped for another is not an order left without one
    swapped = apply_changes(start, Changes(remove_macs=(M1, M2), add_devices=((M3, CM, None),)),
                            POLICY)
    assert swapped.macs() == {M3}


def test_upgrades_only_keeps_the_upgrading_part() -> None:
    def consent(r: Reason) -> Any:
        return POLICY.for_reason(r).lift

    before = _def(Reason.FRAUD, ("cmts",), devices=(M1, M2), scope=Scope.CMTS, node="n1")
    # stricter reason, narrower scope, one device swapped, a layer swapped
    after = cv.Definition(Reason.THREAT_OF_VIOLENCE, Scope.NODE, "n2",
                          ((M2, CM, None), (M3, CM, None)), ("headend",))
    cls = cv.classify(before, after, consent)
    mid = upgrades_only(before, after, cls)
    assert mid == cv.Definition(Reason.THREAT_OF_VIOLENCE, Scope.CMTS, "n1",
                                ((M1, CM, None), (M2, CM, None), (M3, CM, None)),
                                ("cmts", "headend"))
    # the other way: a weaker reason, a wider scope on another node
    wider = cv.Definition(Reason.NON_PAYMENT, Scope.FOOTPRINT, None, before.devices,
                          ("cmts",))
    mid = upgrades_only(before, wider, cv.classify(before, wider, consent))
    assert (mid.reason, mid.scope, mid.node) == (Reason.FRAUD, Scope.FOOTPRINT, None)
    assert mid.devices == before.devices and mid.layers == ("cmts",)
