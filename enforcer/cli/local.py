"""Commands that work on the database directly (they need the config, not the daemon):
``users add|list|disable`` (here) and ``audit ...`` (``enforcer.cli.audit``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from enforcer.cli.client import Exit, fail
from enforcer.cli.options import Config, Json, print_json
from enforcer.cli.render import Col, grid, show
from enforcer.config import Settings, load_settings
from enforcer.domain.model import Role
from enforcer.errors import ConfigError, StoreError
from enforcer.store import Conflict, NotFound, Store, upgrade

users_app = typer.Typer(help="API users (local: needs the config).", no_args_is_help=True)


def load_config(config: Config) -> Settings:
    """The settings from ``config``; exit 12 on a configuration error."""
    try:
        return load_settings(config)
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)


def open_store(config: Config) -> Store:
    """The store named by the config, migrated to the current schema, with the audit
    chain's keys (``audit.key_dir``; the first key is made if there is none)."""
    from enforcer.store.auditkey import load_keyring

    settings = load_config(config)
    url = settings.resolved_database_url()
    try:
        keys = load_keyring(settings.audit_key_dir())
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)
    try:
        upgrade(url)
    except StoreError as e:
        fail(f"{e} ({type(e.__cause__).__name__ if e.__cause__ else 'database'})", Exit.CONFIG)
    return Store.from_url(url, audit_keys=keys)


@users_app.command("add")
def add_user(
    name: str,
    role: Annotated[Role, typer.Option(help="Role")],
    expires_in_days: Annotated[float | None, typer.Option(min=0.001)] = None,
    group: Annotated[list[str] | None, typer.Option(
        "--group", help="Approver group to join (e.g. hs-board); repeat for several")] = None,
    config: Config = None, json: Json = False,
) -> None:
    """Create a user and print its token ONCE (only a hash is stored)."""
    store = open_store(config)
    try:
        expires = store.clock() + timedelta(days=expires_in_days) if expires_in_days else None
        user, token = store.add_user(name, role, expires, actor="cli", groups=group or ())
    except Conflict as e:
        fail(str(e), Exit.CONFLICT)
    except ValueError as e:
        fail(str(e), Exit.INVALID)
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    finally:
        store.dispose()
    if json:
        print_json({"name": user.name, "role": user.role.value, "token": token,
                    "groups": list(user.groups),
                    "expires_at": user.expires_at.isoformat() if user.expires_at else None})
        return
    typer.echo(f"user {user.name} ({user.role.value}) created"
               + (f" in {', '.join(user.groups)}" if user.groups else "")
               + (f", expires {user.expires_at.isoformat()}" if user.expires_at else ""))
    typer.echo("token (shown only now; store it safely):")
    typer.echo(token)


@users_app.command("list")
def list_users(config: Config = None, json: Json = False) -> None:
    """Users: name, role, groups, whether enabled (tokens are never shown; only the
    prefix that identifies one)."""
    store = open_store(config)
    try:
        users = store.list_users()
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    finally:
        store.dispose()
    rows = [{"name": u.name, "role": u.role.value, "groups": list(u.groups),
             "disabled": u.disabled, "token_prefix": u.token_prefix,
             "created_at": u.created_at.isoformat(),
             "expires_at": u.expires_at.isoformat() if u.expires_at else None} for u in users]
    if json:
        print_json({"users": rows})
        return
    show(users_table(rows))


def users_table(rows: list[dict[str, Any]], width: int | None = None) -> Table:
    return grid("users", [Col("name", True), Col("role", True), "groups", Col("status", True),
                          Col("token", True)],
                ([r["name"], r["role"], ", ".join(r["groups"]),
                  "disabled" if r["disabled"] else "enabled", f"enf_{r['token_prefix']}"]
                 for r in rows), width)


@users_app.command("disable")
def disable_user(name: str, config: Config = None, json: Json = False) -> None:
    """Revoke a user's token at once (e.g. a leaked token); audited."""
    store = open_store(config)
    try:
        user = store.disable_user(name, actor="cli")
    except NotFound as e:
        fail(str(e), Exit.NOT_FOUND)
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    finally:
        store.dispose()
    if json:
        print_json({"name": user.name, "role": user.role.value, "disabled": True})
        return
    typer.echo(f"user {user.name} disabled: its token is refused from now on")
