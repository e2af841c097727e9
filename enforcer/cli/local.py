"""Commands that work on the database directly (they need the config, not the daemon):
``users add`` (here) and ``audit ...`` (``enforcer.cli.audit``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer

from enforcer.cli.client import Exit, fail
from enforcer.cli.options import Config, Json, print_json
from enforcer.config import Settings, load_settings
from enforcer.domain.model import Role
from enforcer.errors import ConfigError, StoreError
from enforcer.store import Conflict, NotFound, Store, upgrade

T = TypeVar("T")
users_app = typer.Typer(help="API users (local: needs the config).", no_args_is_help=True)


def load_config(config: Config) -> Settings:
    """The settings from ``config``; exit 12 on a configuration error."""
    try:
        return load_settings(config)
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)


def open_store(config: Config) -> Store:
    """The store named by the config, migrated to the current schema."""
    url = load_config(config).resolved_database_url()
    try:
        upgrade(url)
    except StoreError as e:
        fail(f"{e} ({type(e.__cause__).__name__ if e.__cause__ else 'database'})", Exit.CONFIG)
    return Store.from_url(url)


def with_store(config: Config, fn: Callable[[Store], T], *,
               invalid: tuple[type[Exception], ...] = ()) -> T:
    """``fn`` on the config's store, closed afterwards. Store errors exit with their code
    (not found, conflict, other database errors as a configuration error) and the
    ``invalid`` exceptions as invalid input."""
    store = open_store(config)
    try:
        return fn(store)
    except NotFound as e:
        fail(str(e), Exit.NOT_FOUND)
    except Conflict as e:
        fail(str(e), Exit.CONFLICT)
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    except invalid as e:
        fail(str(e), Exit.INVALID)
    finally:
        store.dispose()


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
    def add(store: Store) -> tuple[Any, str]:
        expires = store.clock() + timedelta(days=expires_in_days) if expires_in_days else None
        return store.add_user(name, role, expires, actor="cli", groups=group or ())

    user, token = with_store(config, add, invalid=(ValueError,))
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
    user = with_store(config, lambda store: store.disable_user(name, actor="cli"))
    if json:
        print_json({"name": user.name, "role": user.role.value, "disabled": True})
        return
    typer.echo(f"user {user.name} disabled: its token is refused from now on")
