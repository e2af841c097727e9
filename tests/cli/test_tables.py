"""Every table the CLI prints fits an 80-column terminal without wrapping an id, a MAC
or a time (the story's longest values: a threat-of-violence order with a set-top, a
lift request of three, the lab's five devices); ``--wide`` shows ids in full."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from enforcer.cli.devices import devices_table
from enforcer.cli.local import users_table
from enforcer.cli.orders import order_tables, orders_table
from enforcer.cli.render import ago, short_id

NOW = datetime.now(UTC)
ORDER = "ord_01M8XHM4VDHTBCCC60CGFHJDVZ"
LIFT = "lift_01M8XHHW9DEZJGFJA73EVZVND7"
MACS = ["02:00:01:01:00:09", "06:00:01:01:00:09", "0a:00:01:01:00:09"]


def iso(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def order(i: int = 0) -> dict[str, Any]:
    return {
        "id": ORDER[:-2] + f"{i:02d}", "ticket": "ESC-2026-000417", "account":
        "ACC-40417-RESIDENTIAL-NORTH", "reason": "threat_of_violence", "scope": "footprint",
        "node": "node-a1", "state": "lift_pending", "state_detail":
        "lift requested (lift_01M8XHHW9DEZJGFJA73EVZVND7)", "source": "webhook",
        "created_by": "escalation-system", "requested_by": "call-centre supervisor",
        "created_at": iso(90), "updated_at": iso(5), "enforced_at": iso(89),
        "verified_at": iso(89), "lifted_at": None, "time_to_verified_s": 1.93,
        "note": "caller threatened staff on three calls", "devices": [
            {"mac": MACS[0], "kind": "cable_modem", "ecm_mac": None},
            {"mac": MACS[1], "kind": "set_top", "ecm_mac": MACS[2]}],
        "targets": [{"id": 100 + n, "device": dev, "mac": mac, "device_kind": "cable_modem",
                     "mechanism": mech, "state": "verified", "attempts": 1,
                     "last_error": "timeout after 3 retries talking to 127.0.0.1:16100 "
                                   "(SNMPv3 authPriv)" if n == 1 else None,
                     "next_attempt_at": None, "verdict": "blocked"}
                    for n, (dev, mac, mech) in enumerate([
                        ("cbr8-1", MACS[0], "cm-ctrl-disable-forwarding"),
                        ("cbr8-1", MACS[2], "cm-ctrl-disable-forwarding"),
                        ("dncs-1", MACS[1], "headend-service-disconnect")])],
        "lift_requests": [{"id": LIFT, "state": "open", "rule": "unanimous", "needed": 3,
                           "electorate": ["alice", "bob", "carol"], "approvals": [
                               {"approver": "alice", "decision": "approve", "note":
                                "agreed at the hearing of 3 December", "created_at": iso(3)}]}],
    }


DEVICES = {"devices": [
    {"name": n, "kind": k, "profile": p, "host": "127.0.0.1", "snmp_port": 16100 + i,
     "ssh_port": 12200 + i if k != "dhcp" else None, "host_key_pinned": True,
     "reachable": [None, True, False][i % 3], "last_error": None, "owner": "vm-13507-1a2b3c"}
    for i, (n, k, p) in enumerate([("cbr8-1", "cmts", "cisco-cbr8"),
                                   ("e6000-1", "cmts", "arris-e6000"),
                                   ("casa-1", "cmts", "casa-c100g"),
                                   ("generic-1", "cmts", "docsis3-generic"),
                                   ("dncs-1", "headend", "dncs-headend")])]}

USERS = [{"name": n, "role": r, "groups": g, "disabled": False, "token_prefix": "1a2b3c4d",
          "created_at": iso(60 * 24 * 3), "expires_at": None}
         for n, r, g in [("alice", "approver", ["hs-board"]), ("bob", "approver", ["hs-board"]),
                         ("erin", "engineer", []), ("escalation-system", "escalation-system",
                                                     [])]]


def render(t: Table, width: int = 80) -> list[str]:
    con = Console(width=width, record=True, highlight=False, color_system=None)
    con.print(t)
    return con.export_text().splitlines()


def assert_whole(lines: list[str], values: list[str]) -> None:
    """Each value appears whole on one line (not wrapped or cut), and no line is wider
    than 80 columns."""
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    text = "\n".join(lines)
    for v in values:
        assert re.search(re.escape(v), text), f"{v!r} wrapped or cut:\n{text}"


def test_orders_list_fits_80_columns() -> None:
    res = {"orders": [order(i) for i in range(5)]}
    lines = render(orders_table(res, width=80))
    assert_whole(lines, [short_id(o["id"]) for o in res["orders"]] + [
        "lift_pending", "threat_of_violence", " h ago"])
    assert all(o["id"] not in "\n".join(lines) for o in res["orders"])
    wide = render(orders_table(res, wide=True), width=200)
    assert_whole_wide = "\n".join(wide)
    assert all(o["id"] in assert_whole_wide for o in res["orders"])


def test_orders_show_fits_80_columns() -> None:
    tables = order_tables(order(), width=80)
    lines = [line for t in tables for line in render(t)]
    assert_whole(lines, [order()["id"], *MACS, "cm-ctrl-disable-forwarding", short_id(LIFT),
                         "lift_pending", " min ago", "waiting", "(SNMPv3 authPriv)"])
    wide = "\n".join(line for t in order_tables(order(), wide=True)
                      for line in render(t, width=300))
    assert LIFT in wide and "headend-service-disconnect" in wide


def test_devices_and_users_fit_80_columns() -> None:
    lines = render(devices_table(DEVICES, width=80))
    assert_whole(lines, ["generic-1", "127.0.0.1", "not checked yet", "unreachable",
                         "snmp/16100 ssh/12200", "dncs-headend"])
    lines = render(users_table(USERS, width=80))
    assert_whole(lines, ["escalation-system", "hs-board", "enf_1a2b3c4d", "enabled"])


def test_relative_times() -> None:
    assert ago(iso(0.1), NOW) == "6 s ago" and ago(iso(150), NOW) == "2 h ago"
    assert ago((NOW + timedelta(hours=5)).isoformat(), NOW) == "in 5 h"
    assert short_id(ORDER) == "CGFHJDVZ" and short_id(None) == ""
