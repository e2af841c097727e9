"""``devices list|check``, ``where``, ``plan``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from enforcer.cli.options import Config, Json, Token, Url, client, kv, print_json, table
from enforcer.cli.render import UNLIMITED, Col, grid, short_id, show

devices_app = typer.Typer(help="Inventory devices.", no_args_is_help=True)
#: Columns never wrapped (names and addresses).
_FIXED = frozenset({"device", "mac", "order_id", "name", "host", "verdict", "state"})


def _columns(rows: list[dict[str, Any]], first: tuple[str, ...]) -> list[str]:
    cols = list(first)
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def _transports(d: dict[str, Any]) -> str:
    parts = [f"snmp/{d['snmp_port']}" if d.get("snmp_port") else "",
             f"ssh/{d['ssh_port']}" if d.get("ssh_port") else ""]
    return " ".join(p for p in parts if p) or "-"


def health(d: dict[str, Any]) -> str:
    r = d.get("reachable")
    return "not checked yet" if r is None else "reachable" if r else "unreachable"


def devices_table(res: dict[str, Any], wide: bool = False, width: int | None = None) -> Table:
    rows = res["devices"]
    if wide:
        cols = _columns(rows, ("name",))
        return grid("devices", [Col(c, c in ("name", "host")) for c in cols],
                    ([r.get(k) for k in cols] for r in rows), UNLIMITED)
    return grid("devices (--wide for every field)",
                [Col("device", True), "profile", Col("host", True), Col("ports", True),
                 Col("health", True)],
                ([d.get("name"), d.get("profile"), d.get("host"), _transports(d), health(d)]
                 for d in rows), width)


@devices_app.command("list")
def list_devices(wide: Annotated[bool, typer.Option("--wide", "-w", help="Every field")]
                 = False, url: Url = None, token: Token = None, config: Config = None,
                 json: Json = False) -> None:
    """Devices with their last known state ("not checked yet" until the first reconcile
    or `enforcer devices check NAME`)."""
    with client(url, token, config) as c:
        res = c.get("/v1/devices")
    if json:
        print_json(res)
        return
    show(devices_table(res, wide), wide=wide)


@devices_app.command("check")
def check(name: str, url: Url = None, token: Token = None, config: Config = None,
          json: Json = False) -> None:
    """Contact a device now."""
    with client(url, token, config) as c:
        res = c.post(f"/v1/devices/{name}/check")
    print_json(res) if json else kv(name, sorted(res.items()))


@devices_app.command("trust")
def trust(name: str,
          expect: Annotated[str, typer.Option(
              "--expect", metavar="SHA256:...",
              help="The host key fingerprint read from the device's console "
              "(ssh-keygen -l); any other key is refused and nothing is pinned")],
          url: Url = None, token: Token = None, config: Config = None,
          json: Json = False) -> None:
    """Pin the SSH host key the device presents now, if its fingerprint is the one given
    with --expect. Refused when it is not, or when the inventory pins another key."""
    with client(url, token, config) as c:
        res = c.post(f"/v1/devices/{name}/trust", {"expect": expect})
    if json:
        print_json(res)
        return
    kv(f"{name}: SSH host key trusted", [
        ("fingerprint", res.get("fingerprint")), ("pinned in", res.get("pinned_in")),
        ("previous", res.get("previous_fingerprint") or "(none)"),
        ("changed", res.get("changed"))])


def where(mac: Annotated[str, typer.Argument(metavar="MAC")], url: Url = None,
          token: Token = None, config: Config = None, json: Json = False) -> None:
    """Where a MAC is registered right now."""
    with client(url, token, config) as c:
        res = c.get(f"/v1/where/{mac}")
    if json:
        print_json(res)
        return
    rows = res["sightings"]
    if not rows:
        typer.echo(f"{res['mac']} is not registered on any device")
    else:
        cols = _columns(rows, ("device",))
        show(grid(f"where {res['mac']}", [Col(c, c in _FIXED) for c in cols],
                  ([r.get(k) for k in cols] for r in rows)))
    holders = res.get("orders", [])
    if not holders:
        typer.echo(f"no active order holds {res['mac']}")
        return
    table(f"orders holding {res['mac']}", ["id", "reason", "state", "consent"],
          ([short_id(h["order_id"]), h["reason"], h["state"],
            f"{h['consent']['rule']} of {h['consent']['group'] or 'any approver'}"]
           for h in holders))


def plan(order_id: Annotated[str | None, typer.Argument(metavar="[ORDER_ID]")] = None,
         url: Url = None, token: Token = None, config: Config = None,
         json: Json = False) -> None:
    """Dry run: the targets the engine would push."""
    with client(url, token, config) as c:
        res = c.get("/v1/plan", order_id=order_id)
    if json:
        print_json(res)
        return
    rows = res["targets"]
    cols = _columns(rows, ("device", "mac", "mechanism"))
    show(grid(f"plan {order_id or '(all active orders)'}", [Col(c, c in _FIXED) for c in cols],
              ([r.get(k) for k in cols] for r in rows)))


def reconcile(url: Url = None, token: Token = None, config: Config = None,
              json: Json = False) -> None:
    """Run a full reconcile cycle now on the devices this instance owns: check every
    block, repair what is missing (as the periodic reconcile does)."""
    with client(url, token, config) as c:
        res = c.post("/v1/reconcile")
    if json:
        print_json(res)
        return
    kv("reconcile", [(k, _brief(res.get(k))) for k in (
        "devices", "checked", "repairs", "unreachable", "unowned_blocks", "elapsed_s")
        if k in res])


def _brief(v: Any) -> Any:
    """A list as its length and first items (the JSON has them all)."""
    if isinstance(v, list):
        return f"{len(v)}" + (f": {', '.join(str(x) for x in v[:5])}" if v else "") + (
            ", ..." if len(v) > 5 else "")
    return v
