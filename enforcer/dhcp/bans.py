"""Where the sentinel's ban set comes from: the daemon's orders, or a plain file.

From orders: every device MAC of an order that is still in force (accepted through
lifting), and the eCM MAC of a set-top. The MAC of every CMTS-side device (modem,
eCM, eMTA, gateway) is also a banned option 82 remote-id: a DOCSIS CMTS relay puts
the modem's MAC in the remote-id of the requests of the CPEs behind it [inference from
DOCSIS CMTS relay-agent practice], which is what Kea's ``relay4[2].hex`` matches
(docs/docsis.md section 6).

File format: one entry per line; ``#`` starts a comment. ``MAC`` bans the MAC and its
remote-id; ``mac MAC`` only the MAC; ``remote-id HEX`` only that remote-id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from enforcer.dhcp.packets import BanSet
from enforcer.domain.mac import Mac
from enforcer.domain.model import ACTIVE_ORDER_STATES, OrderState
from enforcer.errors import InputError

IN_FORCE = sorted({s.value for s in ACTIVE_ORDER_STATES} | {OrderState.LIFTING.value})


def bans_from_orders(orders: Iterable[Mapping[str, Any]]) -> BanSet:
    """The ban set of orders as ``GET /v1/orders`` lists them (``devices`` with ``mac``,
    ``kind`` and ``ecm_mac``); orders not in force are ignored."""
    macs: set[Mac] = set()
    rids: set[bytes] = set()
    for order in orders:
        if order.get("state") not in IN_FORCE:
            continue
        for d in order.get("devices") or []:
            mac = Mac(str(d["mac"]))
            macs.add(mac)
            ecm = d.get("ecm_mac")
            cm_side = Mac(str(ecm)) if ecm else (None if d.get("kind") == "set_top" else mac)
            if cm_side is not None:
                macs.add(cm_side)
                rids.add(cm_side.packed)
    return BanSet(frozenset(macs), frozenset(rids))


def bans_from_records(orders: Iterable[Any]) -> BanSet:
    """The same, from the store's OrderRecords (for a sentinel hosted by the daemon)."""
    return bans_from_orders({"state": o.state.value, "devices": [
        {"mac": str(d.mac), "kind": d.kind.value,
         "ecm_mac": str(d.ecm_mac) if d.ecm_mac else None} for d in o.devices]}
        for o in orders)


def parse_ban_lines(text: str, *, source: str = "bans") -> BanSet:
    macs: set[Mac] = set()
    rids: set[bytes] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        try:
            if len(parts) == 1:
                mac = Mac(parts[0])
                macs.add(mac)
                rids.add(mac.packed)
            elif len(parts) == 2 and parts[0] == "mac":
                macs.add(Mac(parts[1]))
            elif len(parts) == 2 and parts[0] == "remote-id":
                rid = bytes.fromhex(parts[1].replace(":", ""))
                if not 1 <= len(rid) <= 255:
                    raise ValueError("a remote-id has 1 to 255 octets")
                rids.add(rid)
            else:
                raise ValueError("expected MAC, 'mac MAC' or 'remote-id HEX'")
        except ValueError as e:  # MacError is a ValueError
            raise InputError(f"{source}:{n}: {e}") from None
    return BanSet(frozenset(macs), frozenset(rids))


def bans_from_file(path: Path) -> BanSet:
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"{path}: cannot read the ban file: {e.strerror}") from None
    return parse_ban_lines(text, source=str(path))
