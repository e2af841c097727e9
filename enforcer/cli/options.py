"""Options shared by the client commands, and output helpers (tables or JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from enforcer.cli.client import Client, default_url
from enforcer.cli.render import Col, grid, show

Url = Annotated[str | None, typer.Option(
    "--url", envvar="ENFORCER_URL", help="Daemon URL [default: from config http.listen]",
    show_envvar=True)]
Token = Annotated[str | None, typer.Option(
    "--token", envvar="ENFORCER_TOKEN", help="API token (never printed)", show_envvar=True,
    show_default=False)]
Config = Annotated[Path | None, typer.Option(
    "--config", "-c", envvar="ENFORCER_CONFIG", help="Config file (YAML)", show_envvar=True)]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output")]


def client(url: str | None, token: str | None, config: Path | None = None) -> Client:
    return Client(url or default_url(config), token)


def console() -> Console:
    return Console(highlight=False)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


#: Columns that are names or ids: never wrapped or cut (``enforcer.cli.render``).
FIXED = frozenset({"id", "device", "mac", "owner", "order_id", "name", "host", "state",
                   "verdict", "epoch"})


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table that fits the terminal (ids whole, other text cut; ``enforcer.cli.render``)."""
    show(grid(title, [Col(c, c in FIXED) for c in columns], rows))


def kv(title: str, pairs: Iterable[tuple[str, Any]]) -> None:
    t = Table(title=title, show_header=False, box=None)
    t.add_column("key", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in pairs:
        t.add_row(k, "" if v is None else str(v))
    console().print(t)
