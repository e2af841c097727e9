"""``devices list|check``, ``where``, ``plan``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from enforcer.cli.options import Config, Json, Token, Url, client, kv, print_json, table

devices_app = typer.Typer(help="Inventory devices.", no_args_is_help=True)


def _columns(rows: list[dict[str, Any]], first: tuple[str, ...]) -> list[str]:
    cols = list(first)
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


@devices_app.command("list")
def list_devices(url: Url = None, token: Token = None, config: Config = None,
                 json: Json = False) -> None:
    """Devices with their last known state."""
    with client(url, token, config) as c:
        res = c.get("/v1/devices")
    if json:
        print_json(res)
        return
    rows = res["devices"]
    cols = _columns(rows, ("name",))
    table("devices", cols, ([r.get(k) for k in cols] for r in rows))


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
        return
    cols = _columns(rows, ("device",))
    table(f"where {res['mac']}", cols, ([r.get(k) for k in cols] for r in rows))


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
    table(f"plan {order_id or '(all active orders)'}", cols,
          ([r.get(k) for k in cols] for r in rows))
