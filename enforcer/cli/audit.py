"""``audit verify|export|verify-bundle|pubkey|rotate-key``. ``verify`` and ``export``
read the database named by the config (and the audit keys, checkpoint and anchors it
names); ``verify-bundle`` needs nothing but the bundle file and the signer's public key."""

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
    "--anchors", help="Anchor file (JSON lines); default: audit.anchor.file from the config "
    "(state_dir/anchors/anchors.jsonl)")]


def _anchors(settings: Settings, given: Path | None) -> list[Anchor]:
    path = given or settings.anchor_file()
    if not path.exists():
        if given is None:
            return []  # nothing anchored yet (the daemon has not run here)
        fail(f"anchor file {path} does not exist (was it removed?)", Exit.AUDIT_BROKEN)
    try:
        return read_anchor_file(path)
    except (OSError, ValueError) as e:
        fail(f"cannot read anchors: {e}", Exit.AUDIT_BROKEN)


def _legacy_until(settings: Settings) -> int | None:
    from enforcer.audit.guard import CHECKPOINT, read_checkpoint

    try:
        cp = read_checkpoint(settings.anchor_file().parent / CHECKPOINT)
    except ValueError as e:
        fail(str(e), Exit.AUDIT_BROKEN)
    return cp.legacy_until if cp else None


@audit_app.command("verify")
def verify(anchors: Anchors = None, full: Annotated[bool, typer.Option(
        "--full", help="Walk the whole chain and check every anchor (default: from the last "
        "verified checkpoint to the head, and the newest anchor)")] = False,
        config: Config = None, json: Json = False) -> None:
    """Check the audit chain (HMAC and links) and its anchors, and the database against
    the trail (states, lifts, removed targets, approvals); exit 11 naming each problem."""
    from enforcer.audit.crosscheck import cross_check
    from enforcer.audit.guard import ChainGuard
    from enforcer.policy import policy_for

    settings = load_config(config)
    try:
        policy = policy_for(settings)
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)
    store = open_store(config)
    try:
        legacy = _legacy_until(settings)
        if full:
            found = _anchors(settings, anchors)
            v = verify_store(store, found, legacy_until=legacy)
            ok, bad, reason, checked = v.ok, v.first_bad_seq, v.reason, v.anchors_checked
        else:
            g = ChainGuard(store, anchors or settings.anchor_file(),
                           settings.anchor_file().parent / "checkpoint.json")
            gv = g.check()
            ok, bad, reason, checked = gv.ok, gv.first_bad_seq, gv.reason, 1
        findings = cross_check(store, policy, legacy or 0) if ok else []
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    finally:
        store.dispose()
    if json:
        print_json({"ok": ok and not findings, "chain_ok": ok, "first_bad_seq": bad,
                    "reason": reason, "anchors_checked": checked,
                    "findings": [f.as_dict() for f in findings]})
    else:
        if ok:
            typer.echo(f"audit chain OK: {reason}")
        else:
            typer.echo(f"audit chain BROKEN at seq {bad}: {reason}", err=True)
        for f in findings:
            typer.echo(f"NOT BACKED BY THE TRAIL: order {f.order_id}: {f.kind}: {f.detail}",
                       err=True)
        if ok and not findings:
            typer.echo("database agrees with the trail (states, lifts, removed targets, "
                       "approvals)")
    if not ok or findings:
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
    """Write one signed evidence bundle for ORDER_ID (see docs/evidence.md)."""
    from enforcer.audit.export import ChainBroken, build_bundle, write_bundle
    from enforcer.audit.signing import load_signing_key
    from enforcer.policy import policy_for

    settings = load_config(config)
    found = _anchors(settings, anchors)
    try:
        secrets = settings.secret_values() + policy_for(settings).secret_values()
        key = load_signing_key(settings.evidence_key_path())
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)
    store = open_store(config)
    try:
        doc = build_bundle(store, order_id, signing_key=key, anchors=found, secrets=secrets,
                           full_chain=full_chain, legacy_until=_legacy_until(settings) or 0)
    except NotFound as e:
        fail(str(e), Exit.NOT_FOUND)
    except ChainBroken as e:
        fail(f"{e}; no bundle written", Exit.AUDIT_BROKEN)
    except StoreError as e:
        fail(str(e), Exit.CONFIG)
    finally:
        store.dispose()
    write_bundle(doc, out)
    chain = doc["bundle"]["chain"]
    typer.echo(f"wrote {out}: order {order_id}, chain seq {chain['first_seq']}.."
               f"{chain['last_seq']}, {len(chain['anchors'])} anchor(s), sha256 "
               f"{doc['sha256']}, signed by {doc['bundle']['signer']['public_key']}")


@audit_app.command("verify-bundle")
def verify_bundle(
    file: Annotated[Path, typer.Argument(metavar="FILE")],
    pubkey: Annotated[str, typer.Option(
        "--pubkey", help="The signer's public key (ed25519:<base64>, from `enforcer audit "
        "pubkey`) or a file holding it")],
) -> None:
    """Verify an evidence bundle offline (no config, no database); exit 11 if it does
    not verify."""
    key = pubkey
    if not pubkey.startswith("ed25519:"):
        try:
            key = Path(pubkey).read_text(encoding="ascii").strip()
        except OSError as e:
            fail(f"cannot read {pubkey}: {e.strerror}", Exit.USAGE)
    try:
        typer.echo(verify_file(str(file), key))
    except OSError as e:
        fail(f"cannot read {file}: {e.strerror}", Exit.USAGE)
    except BundleError as e:
        fail(f"bundle does NOT verify: {e}", Exit.AUDIT_BROKEN)


@audit_app.command("pubkey")
def pubkey(config: Config = None, json: Json = False) -> None:
    """Print the public key that signs evidence bundles (made on first use) and its
    fingerprint; give it to whoever verifies bundles."""
    from enforcer.audit.signing import fingerprint, load_signing_key, public_text, raw_public

    settings = load_config(config)
    try:
        key = load_signing_key(settings.evidence_key_path())
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)
    fpr = fingerprint(raw_public(key))
    if json:
        print_json({"public_key": public_text(key), "fingerprint": fpr,
                    "key_file": str(settings.evidence_key_path())})
    else:
        typer.echo(public_text(key))
        typer.echo(f"fingerprint (sha256): {fpr}", err=True)


@audit_app.command("rotate-key")
def rotate_key(config: Config = None) -> None:
    """Add a new HMAC key for the audit chain (the old ones stay, for verification).
    Restart every instance afterwards; new entries then use the new key."""
    from enforcer.store.auditkey import create_key, load_keyring

    settings = load_config(config)
    directory = settings.audit_key_dir()
    try:
        load_keyring(directory)
        key_id = create_key(directory)
    except (ConfigError, OSError) as e:
        fail(f"cannot rotate the audit key: {e}", Exit.CONFIG)
    typer.echo(f"new audit key {key_id} in {directory}; restart the daemon(s) to use it; "
               "keep the old key files (entries made with them are verified with them)")
