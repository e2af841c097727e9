"""``accounts show ACCOUNT``: an account's history (orders, amendments, lifts, links)."""

from __future__ import annotations

import typer

from enforcer.cli.options import Config, Json, Token, Url, client, print_json, table

accounts_app = typer.Typer(help="Accounts: their orders and linked devices.",
                           no_args_is_help=True)


@accounts_app.command("show")
def show(account: str, url: Url = None, token: Token = None, config: Config = None,
         json: Json = False) -> None:
    """Every order of the account, its amendments and lifts, and its device links."""
    with client(url, token, config) as c:
        res = c.get(f"/v1/accounts/{account}")
    if json:
        print_json(res)
        return
    table(f"orders of {account}", ["id", "state", "reason", "scope", "all devices"],
          ([o["id"], o["state"], o["reason"], o["scope"],
            "yes" if o.get("all_devices") else ""] for o in res["orders"]))
    table("timeline", ["at", "order", "action", "by"],
          ([e["at"], e["order_id"], e["action"], e["actor"]] for e in res["timeline"]))
    table("linked devices", ["mac", "kind", "linked", "source", "since"],
          ([x["mac"], x["kind"], "yes" if x["linked"] else "no", x["source"], x["at"]]
           for x in res["links"]))
