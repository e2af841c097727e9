"""Commands that work on the database directly (they need the config, not the daemon):
``users add``, ``audit verify``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from enforcer.cli.client import Exit, fail
from enforcer.cli.options import Config, Json, print_json
from enforcer.config import Settings, load_settings
from enforcer.domain.model import Role
from enforcer.errors import ConfigError, StoreError
from enforcer.store import Conflict, Store, upgrade

users_app = typer.Typer(help="API users (local: needs the config).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail (local: needs the config).",
                        no_args_is_help=True)


def _settings(config: Config) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)


def open_store(config: Config) -> Store:
    """The store named by the config, migrated to the current schema."""
    url = _settings(config).resolved_database_url()
    try:
        upgrade(url)
    except StoreError as e:
        fail(f"{e} ({type(e.__cause__).__name__ if e.__cause__ else 'database'})", Exit.CONFIG)
    return Store.from_url(url)


@users_app.command("add")
def add_user(
    name: str,
    role: Annotated[Role, typer.Option(help="Role")],
    expires_in_days: Annotated[float | None, typer.Option(min=0.001)] = None,
    config: Config = None, json: Json = False,
) -> None:
    """Create a user and print its token ONCE (only a hash is stored)."""
    store = open_store(config)
    try:
        expires = store.clock() + timedelta(days=expires_in_days) if expires_in_days else None
        user, token = store.add_user(name, role, expires, actor="cli")
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
                    "expires_at": user.expires_at.isoformat() if user.expires_at else None})
        return
    typer.echo(f"user {user.name} ({user.role.value}) created"
               + (f", expires {user.expires_at.isoformat()}" if user.expires_at else ""))
    typer.echo("token (shown only now; store it safely):")
    typer.echo(token)


@audit_app.command("verify")
def verify(config: Config = None, json: Json = False) -> None:
    """Check the audit hash chain; exit 11 and name the first bad entry if broken."""
    store = open_store(config)
    try:
        ok, bad, reason = store.verify_audit()
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    finally:
        store.dispose()
    if json:
        print_json({"ok": ok, "first_bad_seq": bad, "reason": reason})
    elif ok:
        typer.echo(f"audit chain OK: {reason}")
    else:
        typer.echo(f"audit chain BROKEN at seq {bad}: {reason}", err=True)
    if not ok:
        raise typer.Exit(int(Exit.AUDIT_BROKEN))
