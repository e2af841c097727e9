"""Commands that work on the database directly (they need the config, not the daemon):
``users add`` (here) and ``audit ...`` (``enforcer.cli.audit``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from enforcer.cli.client import Exit, fail
from enforcer.cli.options import Config, Json, print_json
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
