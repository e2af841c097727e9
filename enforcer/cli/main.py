"""The ``enforcer`` command. Client commands talk to the daemon's HTTP API; ``users``
and ``audit`` work on the database named by the config; ``serve`` runs the daemon."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

import enforcer
from enforcer.cli import accounts, audit, cluster, devices, dhcp, local, orders
from enforcer.cli.client import Exit, fail
from enforcer.cli.helptext import TidyGroup
from enforcer.cli.options import Config
from enforcer.errors import ConfigError

app = typer.Typer(
    name="enforcer", no_args_is_help=True, cls=TidyGroup,
    help="Network enforcement agent: MAC-based bans on CMTS and headend equipment.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"enforcer {enforcer.__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit")]
          = False) -> None:
    """Network enforcement agent: MAC-based bans on CMTS and headend equipment."""
app.command()(orders.ban)
app.add_typer(orders.orders_app, name="orders")
app.command()(orders.lift)
app.command()(orders.approve)
app.add_typer(devices.devices_app, name="devices")
app.command()(devices.where)
app.command()(devices.plan)
app.command()(devices.reconcile)
app.add_typer(local.users_app, name="users")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(dhcp.dhcp_app, name="dhcp")
app.add_typer(cluster.cluster_app, name="cluster")
app.add_typer(accounts.accounts_app, name="accounts")


@app.command()
def serve(config: Config = None) -> None:
    """Run the daemon (API, reconciler, watcher)."""
    daemon = importlib.import_module("enforcer.daemon")  # imported lazily: heavy deps
    try:
        daemon.serve(config)
    except ConfigError as e:  # a bad file, key, value or ENFORCER_* variable: exit 12
        fail(str(e), Exit.CONFIG)


if __name__ == "__main__":  # pragma: no cover
    app()
