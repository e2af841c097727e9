"""``domain.coverage`` without a database: who needs a block, who holds it when an order
is lifted, and which amendments are upgrades."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from enforcer.domain import coverage as cv
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Scope

M1, M2, BOX, ECM = (Mac(x) for x in ("00:1d:cf:00:00:01", "00:1d:cf:00:00:02",
                                      "00:02:de:00:00:01", "00:02:de:00:00:02"))
TOPO = cv.Topology(cmtses=frozenset({"c1", "c2"}), headends=frozenset({"h1"}),
                   dhcp=frozenset({"k1"}), nodes={"n1": ["c1"], "n2": ["c2"]})
LAYERS = ["cmts", "headend"]


@dataclass(frozen=True)
class Lift:
    group: str | None
    rule: str
    n: int | None = None


CONSENT = {Reason.THREAT_OF_VIOLENCE: Lift("hs-board", "unanimous"),
           Reason.HARASSMENT: Lift("hs-board", "unanimous"),
           Reason.FRAUD: Lift(None, "n_of_m", 2), Reason.THEFT_OF_SERVICE: Lift(None, "n_of_m", 2),
           Reason.OTHER: Lift(None, "n_of_m", 2), Reason.NON_PAYMENT: Lift("billing", "any")}


def order(oid: str, *macs: Mac, reason: Reason = Reason.FRAUD, scope: Scope = Scope.NODE,
          node: str | None = "n1", state: OrderState = OrderState.VERIFIED,
          box: bool = False, layers: tuple[str, ...] | None = None) -> cv.DefinedOrder:
    devices = [cv.DefinedDevice(m, DeviceKind.CABLE_MODEM, None) for m in macs]
    if box:
        devices.append(cv.DefinedDevice(BOX, DeviceKind.SET_TOP, ECM))
    return cv.DefinedOrder(oid, reason, scope, node, tuple(devices), layers, state)


def test_needs_follows_scope_layer_and_state() -> None:
    node = order("a", M1)
    assert cv.needs(node, "c1", M1, TOPO, LAYERS)
    assert not cv.needs(node, "c2", M1, TOPO, LAYERS)  # another node's CMTS
    assert cv.needs(node, "c2", M1, TOPO, LAYERS, held=True)  # it holds a block there
    assert cv.needs(order("b", M1, scope=Scope.FOOTPRINT), "c2", M1, TOPO, LAYERS)
    assert not cv.needs(node, "c1", M2, TOPO, LAYERS)
    assert not cv.needs(node, "k1", M1, TOPO, LAYERS)  # no dhcp layer
    assert cv.needs(node, "k1", M1, TOPO, ["dhcp", "cmts"])
    for st in (OrderState.LIFTING, OrderState.LIFTED):
        assert not cv.needs(order("c", M1, state=st), "c1", M1, TOPO, LAYERS)
    assert cv.needs(order("d", M1, state=OrderState.LIFT_PENDING), "c1", M1, TOPO, LAYERS)
    boxed = order("e", box=True)
    assert cv.needs(boxed, "h1", BOX, TOPO, LAYERS) and cv.needs(boxed, "c1", ECM, TOPO, LAYERS)
    assert not cv.needs(boxed, "h1", ECM, TOPO, LAYERS)
    assert not cv.needs(order("f", box=True, layers=("cmts",)), "h1", BOX, TOPO, LAYERS)
    assert not cv.needs(node, "gone", M1, TOPO, LAYERS)  # not in inventory, not held


def test_holders_are_the_other_active_orders_that_need_it() -> None:
    lifting = order("a", M1, state=OrderState.LIFTING)
    safety = order("s", M1, reason=Reason.THREAT_OF_VIOLENCE, scope=Scope.FOOTPRINT)
    other_node = order("o", M1, node="n2")
    done = order("d", M1, state=OrderState.LIFTED)
    others = [lifting, safety, other_node, done]
    assert cv.holders("a", "c1", M1, others, TOPO, lambda o: LAYERS) == ["s"]
    assert cv.holders("a", "c2", M1, others, TOPO, lambda o: LAYERS) == ["o", "s"]
    assert cv.holders("s", "c1", M1, others, TOPO, lambda o: LAYERS) == []
    held = {"o": {("c1", M1)}}
    assert cv.holders("s", "c1", M1, others, TOPO, lambda o: LAYERS, held) == ["o"]


@pytest.mark.parametrize(("before", "after", "up"), [
    (Reason.NON_PAYMENT, Reason.THREAT_OF_VIOLENCE, True),
    (Reason.FRAUD, Reason.THREAT_OF_VIOLENCE, True),
    (Reason.NON_PAYMENT, Reason.FRAUD, True),  # n of m over any
    (Reason.THREAT_OF_VIOLENCE, Reason.NON_PAYMENT, False),
    (Reason.THREAT_OF_VIOLENCE, Reason.HARASSMENT, False),  # same policy: severity decides
    (Reason.HARASSMENT, Reason.THREAT_OF_VIOLENCE, True),
    (Reason.FRAUD, Reason.OTHER, False),
])
def test_reason_changes(before: Reason, after: Reason, up: bool) -> None:
    a = cv.Definition(before, Scope.NODE, "n1", ((M1, DeviceKind.CABLE_MODEM, None),),
                      ("cmts",))
    b = cv.Definition(after, a.scope, a.node, a.devices, a.layers)
    cls = cv.classify(a, b, CONSENT.__getitem__)
    assert (bool(cls.upgrades), bool(cls.downgrades)) == (up, not up)


def test_scope_devices_and_layers() -> None:
    d = (M1, DeviceKind.CABLE_MODEM, None)
    e = (M2, DeviceKind.CABLE_MODEM, None)
    base = cv.Definition(Reason.FRAUD, Scope.NODE, "n1", (d,), ("cmts",))

    def kinds(after: cv.Definition) -> tuple[list[str], list[str]]:
        c = cv.classify(base, after, CONSENT.__getitem__)
        return [x[0] for x in c.upgrades], [x[0] for x in c.downgrades]

    assert kinds(cv.Definition(Reason.FRAUD, Scope.FOOTPRINT, "n1", (d,), ("cmts",))) == (
        ["scope"], [])
    assert kinds(cv.Definition(Reason.FRAUD, Scope.CMTS, "n1", (d,), ("cmts",))) == (
        ["scope"], [])
    assert kinds(cv.Definition(Reason.FRAUD, Scope.NODE, "n2", (d,), ("cmts",))) == (
        [], ["scope"])  # another node: a narrowing for the first node
    assert kinds(cv.Definition(Reason.FRAUD, Scope.NODE, "n1", (d, e), ("cmts",))) == (
        ["devices"], [])
    assert kinds(cv.Definition(Reason.FRAUD, Scope.NODE, "n1", (e,), ("cmts",))) == (
        ["devices"], ["devices"])
    assert kinds(cv.Definition(Reason.FRAUD, Scope.NODE, "n1", (d,),
                               ("dhcp", "cmts"))) == (["layers"], [])
    assert kinds(cv.Definition(Reason.FRAUD, Scope.NODE, "n1", (d,), ())) == (
        [], ["layers"])
    wide = cv.Definition(Reason.FRAUD, Scope.FOOTPRINT, "n1", (d,), ("cmts",))
    c = cv.classify(wide, cv.Definition(Reason.FRAUD, Scope.FOOTPRINT, "n2", (d,), ("cmts",)),
                    CONSENT.__getitem__)
    assert c.upgrades and not c.downgrades  # a footprint is every node


def test_strictest_and_definition_round_trip() -> None:
    assert cv.strictest([Reason.NON_PAYMENT, Reason.FRAUD, Reason.HARASSMENT],
                        CONSENT.__getitem__) is Reason.HARASSMENT
    assert cv.strictest([], CONSENT.__getitem__) is None
    o = order("x", M1, box=True, layers=("dhcp", "cmts"))
    d = cv.Definition.of(o, LAYERS)
    assert d.layers == ("dhcp", "cmts")
    assert cv.Definition.from_json(d.to_json()) == d
    assert cv.Definition.of(order("y", M1), ["headend", "cmts"]).layers == ("cmts", "headend")
    with pytest.raises(ValueError):
        cv.Definition.from_json({**d.to_json(), "devices": "nope"})


def test_topology_layers_and_scopes() -> None:
    assert [TOPO.layer_of(d) for d in ("c1", "h1", "k1")] == ["cmts", "headend", "dhcp"]
    with pytest.raises(KeyError) as err:
        TOPO.layer_of("gone")
    assert err.value.args == ("gone",)  # names the device that is not in inventory
    assert TOPO.scope_devices(Scope.NODE, "n2") == ["c2"]
    assert TOPO.scope_devices(Scope.CMTS, "n1") == ["c1"]
    # No node, or one the inventory does not know: every CMTS (fail closed).
    for node in (None, "", "n9"):
        assert TOPO.scope_devices(Scope.NODE, node) == ["c1", "c2"]
    assert TOPO.scope_devices(Scope.FOOTPRINT, "n1") == ["c1", "c2"]


def test_classify_names_each_change_with_its_values() -> None:
    d = (M1, DeviceKind.CABLE_MODEM, None)
    e = (M2, DeviceKind.CABLE_MODEM, None)
    base = cv.Definition(Reason.FRAUD, Scope.NODE, "n1", (d,), ("cmts",))
    swapped = cv.Definition(Reason.HARASSMENT, Scope.CMTS, "n1", (e,), ("dhcp",))
    c = cv.classify(base, swapped, CONSENT.__getitem__)
    assert c.upgrades == (("reason", "fraud", "harassment"),
                          ("scope", ["node", "n1"], ["cmts", "n1"]),
                          ("devices", [], [str(M2)]), ("layers", [], ["dhcp"]))
    assert c.downgrades == (("devices", [str(M1)], []), ("layers", ["cmts"], []))
    back = cv.classify(swapped, base, CONSENT.__getitem__)
    assert back.downgrades == (("reason", "harassment", "fraud"),
                               ("scope", ["cmts", "n1"], ["node", "n1"]),
                               ("devices", [str(M2)], []), ("layers", ["dhcp"], []))


@pytest.mark.parametrize(("weak", "strong"), [
    (Lift(None, "n_of_m", 2), Lift("board", "n_of_m", 2)),  # a named group over anyone
    (Lift(None, "n_of_m", 2), Lift(None, "n_of_m", 3)),  # more approvals over fewer
    (Lift("board", "n_of_m", 3), Lift(None, "unanimous")),  # the rule first
    (Lift("billing", "any"), Lift(None, "n_of_m", 1)),
])
def test_consent_strictness_beyond_the_rule(weak: Lift, strong: Lift) -> None:
    """The severer reason (threat of violence) given the weaker policy: the policy, not
    the reason, decides which way a reason change goes and which reason governs."""
    consent = {Reason.THREAT_OF_VIOLENCE: weak, Reason.NON_PAYMENT: strong}.__getitem__
    assert cv.consent_rank(strong) > cv.consent_rank(weak)
    assert cv.strictest([Reason.THREAT_OF_VIOLENCE, Reason.NON_PAYMENT],
                        consent) is Reason.NON_PAYMENT
    a = cv.Definition(Reason.THREAT_OF_VIOLENCE, Scope.NODE, "n1",
                      ((M1, DeviceKind.CABLE_MODEM, None),), ("cmts",))
    b = cv.Definition(Reason.NON_PAYMENT, a.scope, a.node, a.devices, a.layers)
    assert [x[0] for x in cv.classify(a, b, consent).upgrades] == ["reason"]
    assert [x[0] for x in cv.classify(b, a, consent).downgrades] == ["reason"]


def test_definition_key_tells_every_definition_apart() -> None:
    base = order("k", M1, box=True)
    variants = [
        order("k", M1, box=True, reason=Reason.HARASSMENT),
        order("k", M1, box=True, scope=Scope.CMTS),
        order("k", M1, box=True, node=None),
        order("k", M1, box=True, node="n2"),
        order("k", M1, box=True, layers=("cmts", "headend")),  # its own list, even the same
        order("k", M1, box=True, layers=()),
        order("k", M1, M2, box=True),
        order("k", M2, box=True),
        cv.DefinedOrder("k", base.reason, base.scope, base.node,
                        (base.devices[0], cv.DefinedDevice(BOX, DeviceKind.SET_TOP, None)),
                        None),  # the set-top's eCM not learnt yet
        cv.DefinedOrder("k", base.reason, base.scope, base.node,
                        (base.devices[0], cv.DefinedDevice(BOX, DeviceKind.SET_TOP, M2)),
                        None),  # another eCM
        cv.DefinedOrder("k", base.reason, base.scope, base.node,
                        (cv.DefinedDevice(M1, DeviceKind.MTA, None), base.devices[1]), None),
    ]
    keys = [cv.definition_key(o) for o in (base, *variants)]
    assert len(set(keys)) == len(keys)
    # The same definition: the same key, whatever the order's id, state or device order.
    same = cv.DefinedOrder("other", base.reason, base.scope, base.node,
                           tuple(reversed(base.devices)), None, OrderState.LIFT_PENDING)
    assert cv.definition_key(same) == keys[0]
    # A named node never passes for no node, whatever it is called.
    for name in ("", "-", "null", "None", "n1|x"):
        assert cv.definition_key(order("k", M1, node=name)) != cv.definition_key(
            order("k", M1, node=None))


def test_a_definition_as_an_order() -> None:
    d = cv.Definition(Reason.FRAUD, Scope.CMTS, "n2",
                      ((M1, DeviceKind.CABLE_MODEM, None), (BOX, DeviceKind.SET_TOP, ECM)),
                      ("cmts", "headend"))
    o = d.as_order("ord_1")
    assert o == cv.DefinedOrder("ord_1", Reason.FRAUD, Scope.CMTS, "n2", (
        cv.DefinedDevice(M1, DeviceKind.CABLE_MODEM, None),
        cv.DefinedDevice(BOX, DeviceKind.SET_TOP, ECM)), ("cmts", "headend"),
        OrderState.VERIFIED)
    assert cv.needs(o, "h1", BOX, TOPO, ()) and cv.needs(o, "c2", ECM, TOPO, ())
    assert not cv.needs(o, "c2", BOX, TOPO, ())  # a set-top is blocked by its eCM
    assert cv.Definition.of(o, ()) == d


def test_definition_json_round_trip_and_refusals() -> None:
    d = cv.Definition(Reason.FRAUD, Scope.FOOTPRINT, None,
                      ((M1, DeviceKind.CABLE_MODEM, None),), ("cmts",))
    doc = d.to_json()
    assert doc["node"] is None and cv.Definition.from_json(doc) == d
    with pytest.raises(ValueError, match=r"^devices and layers must be lists$"):
        cv.Definition.from_json({**doc, "layers": "cmts"})


@pytest.mark.parametrize(("before", "after", "up"), [
    (Scope.NODE, Scope.CMTS, True), (Scope.NODE, Scope.FOOTPRINT, True),
    (Scope.CMTS, Scope.FOOTPRINT, True),
    (Scope.CMTS, Scope.NODE, False), (Scope.FOOTPRINT, Scope.NODE, False),
    (Scope.FOOTPRINT, Scope.CMTS, False),
])
def test_each_scope_change_one_way_or_the_other(before: Scope, after: Scope,
                                                up: bool) -> None:
    d = ((M1, DeviceKind.CABLE_MODEM, None),)
    c = cv.classify(cv.Definition(Reason.FRAUD, before, "n1", d, ("cmts",)),
                    cv.Definition(Reason.FRAUD, after, "n1", d, ("cmts",)),
                    CONSENT.__getitem__)
    change = ("scope", [before.value, "n1"], [after.value, "n1"])
    assert (c.upgrades, c.downgrades) == (((change,), ()) if up else ((), (change,)))
