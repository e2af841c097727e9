"""``enforcer cluster status``: instances sharing one database, and who owns which device."""

from __future__ import annotations

import typer

from enforcer.cli.options import Config, Json, Token, Url, client, print_json, table

cluster_app = typer.Typer(help="Several instances on one database.", no_args_is_help=True)


@cluster_app.command("status")
def status(url: Url = None, token: Token = None, config: Config = None,
           json: Json = False) -> None:
    """Instances, their devices and lease ages."""
    with client(url, token, config) as c:
        res = c.get("/v1/cluster")
    if json:
        print_json(res)
        return
    table("instances", ["id", "live", "devices", "heartbeat_age_s", "url"],
          ([i["id"], i["live"], i["devices"], i["heartbeat_age_s"], i["url"]]
           for i in res["instances"]))
    table("device leases", ["device", "owner", "epoch", "age_s", "expires_in_s"],
          ([le["device"], le["owner"], le["epoch"], le["age_s"], le["expires_in_s"]]
           for le in res["leases"]))
