"""``audit verify|export|verify-bundle``. ``verify`` and ``export`` read the database named
by the config; ``verify-bundle`` needs nothing but the bundle file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from enforcer.audit import read_anchor_file, verify_store
from enforcer.audit.anchor import Anchor
from enforcer.audit.verify_bundle import BundleError, verify_file
from enforcer.cli.client import Exit, fail
from enforcer.cli.local import load_config, open_store
from enforcer.cli.options import Config, Json, print_json
from enforcer.config import Settings
from enforcer.errors import ConfigError, StoreError
from enforcer.store import NotFound

audit_app = typer.Typer(help="The audit trail and evidence bundles.", no_args_is_help=True)
Anchors = Annotated[Path | None, typer.Option(
    "--anchors", help="Anchor file (JSON lines); default: audit.anchor.file from the config")]


def _anchors(settings: Settings, path: Path | None) -> list[Anchor]:
    path = path or settings.audit.anchor.file
    if path is None:
        return []
    if not path.exists():
        fail(f"anchor file {path} does not exist (was it removed?)", Exit.AUDIT_BROKEN)
    try:
        return read_anchor_file(path)
    except (OSError, ValueError) as e:
        fail(f"cannot read anchors: {e}", Exit.AUDIT_BROKEN)


@audit_app.command("verify")
def verify(anchors: Anchors = None, config: Config = None, json: Json = False) -> None:
    """Check the audit hash chain and its anchors; exit 11 naming the first bad entry
    (or the truncation an anchor reveals)."""
    settings = load_config(config)
    found = _anchors(settings, anchors)
    store = open_store(config)
    try:
        v = verify_store(store, found)
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    finally:
        store.dispose()
    if json:
        print_json({"ok": v.ok, "first_bad_seq": v.first_bad_seq, "reason": v.reason,
                    "anchors_checked": v.anchors_checked})
    elif v.ok:
        typer.echo(f"audit chain OK: {v.reason}")
    else:
        typer.echo(f"audit chain BROKEN at seq {v.first_bad_seq}: {v.reason}", err=True)
    if not v.ok:
        raise typer.Exit(int(Exit.AUDIT_BROKEN))


@audit_app.command("export")
def export(
    order_id: Annotated[str, typer.Argument(metavar="ORDER_ID")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle file to write")],
    full_chain: Annotated[bool, typer.Option(
        "--full-chain", help="Include other orders' chain entries in full (default: "
        "redacted to their hashes)")] = False,
    anchors: Anchors = None, config: Config = None,
) -> None:
    """Write one evidence bundle for ORDER_ID (see docs/evidence.md)."""
    from enforcer.audit.export import build_bundle, write_bundle
    from enforcer.policy import policy_for

    settings = load_config(config)
    found = _anchors(settings, anchors)
    try:
        secrets = settings.secret_values() + policy_for(settings).secret_values()
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)
    store = open_store(config)
    try:
        doc = build_bundle(store, order_id, anchors=found, secrets=secrets,
                           full_chain=full_chain)
    except NotFound as e:
        fail(str(e), Exit.NOT_FOUND)
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    finally:
        store.dispose()
    write_bundle(doc, out)
    chain = doc["bundle"]["chain"]
    typer.echo(f"wrote {out}: order {order_id}, chain seq {chain['first_seq']}.."
               f"{chain['last_seq']}, {len(chain['anchors'])} anchor(s), sha256 "
               f"{doc['sha256']}")


@audit_app.command("verify-bundle")
def verify_bundle(file: Annotated[Path, typer.Argument(metavar="FILE")]) -> None:
    """Verify an evidence bundle offline (no config, no database); exit 11 if it does
    not verify."""
    try:
        typer.echo(verify_file(str(file)))
    except OSError as e:
        fail(f"cannot read {file}: {e.strerror}", Exit.USAGE)
    except BundleError as e:
        fail(f"bundle does NOT verify: {e}", Exit.AUDIT_BROKEN)
