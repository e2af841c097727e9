"""``ban``, ``orders list|show``, ``lift``, ``approve``."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from enforcer.cli.client import Client, Exit, fail
from enforcer.cli.options import (
    Config,
    Json,
    Token,
    Url,
    client,
    console,
    print_json,
    table,
)
from enforcer.cli.render import SHORT, UNLIMITED, Col, ago, grid, pairs, short_id, show
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Scope
from enforcer.errors import MacError

orders_app = typer.Typer(help="List and inspect ban orders.", no_args_is_help=True)


def parse_device(text: str) -> dict[str, Any]:
    """``MAC`` | ``MAC:kind`` | ``MAC:set_top=ECM_MAC`` (MACs in any notation). The kind
    is the first ``:``-separated part that is not hexadecimal."""
    kinds = [k.value for k in DeviceKind]
    mac_part, kind, ecm = text, DeviceKind.CABLE_MODEM.value, None
    parts = text.split(":")
    at = next((i for i, p in enumerate(parts) if i and not re.fullmatch(
        r"[0-9A-Fa-f.\-]+", p.partition("=")[0])), None)
    if at is not None:
        kind_text, _, ecm_text = ":".join(parts[at:]).partition("=")
        if kind_text not in kinds:
            raise typer.BadParameter(
                f"{text!r}: unknown device kind {kind_text!r}; kinds: {', '.join(kinds)} "
                "(MAC, MAC:kind or MAC:set_top=ECM_MAC)", param_hint="--mac")
        mac_part, kind, ecm = ":".join(parts[:at]), kind_text, ecm_text or None
    try:
        out: dict[str, Any] = {"mac": str(Mac(mac_part)), "kind": kind}
        if ecm:
            out["ecm_mac"] = str(Mac(ecm))
    except MacError as e:
        raise typer.BadParameter(str(e), param_hint="--mac") from None
    return out


def progress_line(order: dict[str, Any]) -> tuple[int, int, str]:
    """(targets verified, targets planned so far, last error). Removed targets (a
    fallback replaced them) do not count; more may be planned while devices answer."""
    targets = [t for t in order.get("targets", []) if t["state"] != "removed"]
    done = sum(1 for t in targets if t["state"] == "verified")
    errors = [f"{t['device']}: {t['last_error']}" for t in targets if t.get("last_error")]
    return done, len(targets), errors[-1] if errors else ""


def progress_count(order: dict[str, Any]) -> str:
    done, total, _ = progress_line(order)
    if not total:
        return "planning targets"
    return f"{done} of {total} target(s) verified"


def wait_verified(c: Client, order_id: str, timeout: float, poll: float,
                  show: bool) -> dict[str, Any]:
    """Follow the order until verified; exit 9 on timeout."""
    deadline = time.monotonic() + timeout
    order: dict[str, Any] = c.get(f"/v1/orders/{order_id}")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
                  console=console(), transient=True, disable=not show) as progress:
        task = progress.add_task(order_id, total=None, count="")
        while order["state"] != OrderState.VERIFIED.value:
            done, total, err = progress_line(order)
            detail = order.get("state_detail") or ""
            desc = f"{short_id(order_id)} {order['state']}" + (f" ({detail})" if detail else "")
            progress.update(task, description=desc, completed=done, total=total or None,
                            count=progress_count(order))
            if time.monotonic() >= deadline:
                fail(f"order {order_id} not verified after {timeout:g} s (state "
                     f"{order['state']}: {detail or 'no detail'}; {done} of {total} "
                     "target(s) verified" + (f"; last error: {err}" if err else "") + ")",
                     Exit.TIMEOUT)
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            order = c.get(f"/v1/orders/{order_id}")
    return order


def ban(
    account: Annotated[str | None, typer.Option(help="Subscriber account")] = None,
    ticket: Annotated[str | None, typer.Option(help="Escalation ticket")] = None,
    reason: Annotated[Reason | None, typer.Option(help="Why")] = None,
    mac: Annotated[list[str] | None, typer.Option(
        help="MAC[:kind] or MAC:set_top=ECM_MAC; repeat for each device")] = None,
    all_devices: Annotated[bool, typer.Option(
        "--all-devices", help="Ban every device linked to the account, now and later")
    ] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be pushed, reset and who must consent to a lift; "
        "file nothing")] = False,
    from_csv: Annotated[Path | None, typer.Option(
        "--from-csv", help="File one order per account from a CSV (docs/api.md)")] = None,
    scope: Annotated[Scope | None, typer.Option(help="Default: from policy")] = None,
    node: Annotated[str | None, typer.Option(help="Subscriber's node")] = None,
    note: Annotated[str | None, typer.Option()] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the order until verified")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to --wait")] = 300.0,
    poll: Annotated[float, typer.Option(help="Seconds between polls")] = 1.0,
    url: Url = None, token: Token = None, config: Config = None, json: Json = False,
) -> None:
    """Ban a subscriber's devices (or every device of the account with --all-devices)."""
    if from_csv is not None:
        if any(v is not None for v in (account, ticket, reason, mac, scope, node, note)) \
                or all_devices:
            fail("--from-csv takes the orders from the file; give no other order option",
                 Exit.USAGE)
        ban_from_csv(from_csv, dry_run=dry_run, wait=wait, timeout=timeout, poll=poll,
                     url=url, token=token, config=config, json=json)
        return
    if account is None or ticket is None or reason is None:
        fail("--account, --ticket and --reason are required", Exit.USAGE)
    if not mac and not all_devices:
        fail("give --mac (repeatable) or --all-devices", Exit.USAGE)
    body: dict[str, Any] = {"ticket": ticket, "account": account, "reason": reason.value,
                            "devices": [parse_device(m) for m in mac or []]}
    if all_devices:
        body["all_devices"] = True
    for key, value in (("scope", scope.value if scope else None), ("node", node),
                       ("note", note)):
        if value is not None:
            body[key] = value
    if dry_run:
        with client(url, token, config) as c:
            plan = c.post("/v1/plans", body)
        print_json(plan) if json else show_plan(plan)
        return
    with client(url, token, config) as c:
        res = c.post("/v1/orders", body, headers={"Idempotency-Key": uuid.uuid4().hex})
        order_id = res["order_id"]
        if not wait:
            print_json(res) if json else typer.echo(f"{order_id} {res['state']}")
            return
        if not json:
            typer.echo(f"{order_id} accepted; waiting for verification")
        order = wait_verified(c, order_id, timeout, poll, show=not json)
    if json:
        print_json(order)
    else:
        done, total, _ = progress_line(order)
        on = len({t["device"] for t in order.get("targets", []) if t["state"] != "removed"})
        typer.echo(f"{order_id} verified in {order.get('time_to_verified_s')} s: {done} of "
                   f"{total} target(s) on {on} device(s)")


Wide = Annotated[bool, typer.Option("--wide", "-w",
                                     help="Every column, full ids and timestamps")]


def resolve_order(c: Client, ref: str) -> str:
    """A full order id from a full one or the short id the tables show (its tail)."""
    if ref.startswith("ord_") and len(ref) > 4 + SHORT:
        return ref
    tail = ref.removeprefix("ord_").upper()
    found = [o["id"] for o in c.get("/v1/orders", limit=1000)["orders"]
             if o["id"].upper().endswith(tail)]
    if len(found) == 1:
        return str(found[0])
    if not found:
        fail(f"no order {ref} (nor one among the newest 1000 whose id ends with it)",
             Exit.NOT_FOUND)
    fail(f"{ref!r} matches {len(found)} orders ({', '.join(found[:5])}); give more of "
         "the id", Exit.USAGE)


def orders_table(res: dict[str, Any], wide: bool = False, width: int | None = None) -> Table:
    rows = res["orders"]
    if wide:
        return grid("orders", [Col("id", True), Col("state", True), "reason", "scope",
                               "account", "ticket", Col("devices", True),
                               Col("created", True)],
                    ([o["id"], o["state"], o["reason"], o["scope"], o["account"],
                      o["ticket"], " ".join(d["mac"] for d in o["devices"]),
                      o["created_at"]] for o in rows), UNLIMITED)
    return grid("orders (newest first; --wide for more)",
                [Col("order", True), Col("state", True), Col("reason", True), "account",
                 Col("dev", True, "right"), Col("created", True, "right")],
                ([short_id(o["id"]), o["state"], o["reason"], o["account"],
                  len(o["devices"]), ago(o["created_at"])] for o in rows), width)


def show_plan(plan: dict[str, Any]) -> None:
    """A dry run as tables: what each device would get, resets, who must consent."""
    table("would push (dry run: nothing filed, no device changed)",
          ["device", "layer", "mac", "mechanism", "action", "reset"],
          ([r["device"], r["layer"], r["mac"], r["mechanism"], r["action"],
            "yes" if r["reset"] else ""] for r in plan["lookups"]))
    c = plan["consent"]
    typer.echo(f"resets: {', '.join(plan['resets']) or 'none'}")
    typer.echo(f"lift consent: {c['rule']}{' ' + str(c['n']) if c.get('n') else ''} of "
               f"{c['group'] or 'any approver'} ({c['needed']} of "
               f"{len(c['electorate_now'])} now: {', '.join(c['electorate_now']) or '-'})")
    if plan.get("devices_from_links"):
        typer.echo("devices linked to the account: " + ", ".join(plan["devices_from_links"]))


def ban_from_csv(path: Path, *, dry_run: bool, wait: bool, timeout: float, poll: float,
                 url: str | None, token: str | None, config: Path | None,
                 json: bool) -> None:
    """Validate every row, then file one order per account (idempotently), with
    progress; with ``wait``, follow them until verified."""
    import hashlib

    from enforcer.cli.bulk import CsvError, read_orders

    try:
        orders, digest = read_orders(path)
    except (CsvError, OSError) as e:
        fail(f"{path}: nothing filed:\n{e}", Exit.INVALID)
    if dry_run:
        typer.echo(f"{path}: {len(orders)} order(s), "
                   f"{sum(len(b['devices']) for _, b in orders)} device(s); every row valid; "
                   "nothing filed (--dry-run)")
        return
    filed: list[dict[str, Any]] = []
    with client(url, token, config) as c, Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                                                                      "{task.total}"),
            TimeElapsedColumn(), console=console(), transient=True, disable=json) as progress:
        task = progress.add_task("filing", total=len(orders))
        for lines, body in orders:
            key = hashlib.sha256(f"{digest}:{body['account']}".encode()).hexdigest()[:40]
            res = c.post("/v1/orders", body, headers={"Idempotency-Key": f"csv-{key}"},
                         retry_busy=60)  # the intake's rate limit: wait, then go on
            filed.append({"account": body["account"], "order_id": res["order_id"],
                          "lines": lines, "state": res["state"]})
            progress.advance(task)
        if wait:
            deadline = time.monotonic() + timeout
            waiting = progress.add_task("verified", total=len(filed))
            pending = {f["order_id"] for f in filed}
            while pending:
                for oid in sorted(pending):
                    if c.get(f"/v1/orders/{oid}")["state"] == OrderState.VERIFIED.value:
                        pending.discard(oid)
                        progress.advance(waiting)
                if pending and time.monotonic() >= deadline:
                    fail(f"{len(pending)} of {len(filed)} order(s) not verified after "
                         f"{timeout:g} s: {', '.join(sorted(pending)[:10])}", Exit.TIMEOUT)
                if pending:
                    time.sleep(poll)
            for f in filed:
                f["state"] = OrderState.VERIFIED.value
    if json:
        print_json({"file": str(path), "orders": filed})
    else:
        typer.echo(f"{path}: {len(filed)} order(s) filed"
                   + (", all verified" if wait else ""))


@orders_app.command("list")
def list_orders(
    state: Annotated[OrderState | None, typer.Option()] = None,
    reason: Annotated[Reason | None, typer.Option()] = None,
    account: Annotated[str | None, typer.Option(help="Only this account's orders")] = None,
    ticket: Annotated[str | None, typer.Option(help="Only orders with this ticket")] = None,
    mac: Annotated[str | None, typer.Option(help="Only orders naming this MAC")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    wide: Wide = False,
    ids: Annotated[bool, typer.Option("--ids", help="Only the full ids, one a line")] = False,
    url: Url = None, token: Token = None, config: Config = None, json: Json = False,
) -> None:
    """Orders, newest first, filters combined (ids shortened to their last 8 characters,
    which every command accepts)."""
    with client(url, token, config) as c:
        res = c.get("/v1/orders", state=state.value if state else None,
                    reason=reason.value if reason else None, account=account,
                    ticket=ticket, mac=mac, limit=limit)
    if json:
        print_json(res)
        return
    if ids:
        for o in res["orders"]:
            typer.echo(o["id"])
        return
    show(orders_table(res, wide), wide=wide)


def order_tables(o: dict[str, Any], wide: bool = False,
                 width: int | None = None) -> list[Table]:
    """``orders show``: the order, its devices, targets per device and lift requests."""

    def when(key: str) -> str | None:
        return str(o.get(key) or "") if wide else ago(o.get(key))

    out = [pairs(f"order {o['id']}", [(k, v) for k, v in (
        ("state", o["state"]), ("detail", o.get("state_detail")),
        ("reason", f"{o['reason']} ({o['scope']} scope"
                   + (f", node {o['node']})" if o.get("node") else ")")),
        ("account", o["account"]), ("ticket", o["ticket"]),
        ("requested by", o.get("requested_by")),
        ("filed by", f"{o['created_by']} via {o['source']}"),
        ("created", when("created_at")), ("verified", when("verified_at")),
        ("lifted", when("lifted_at")),
        ("time to verified", f"{o['time_to_verified_s']} s"
         if o.get("time_to_verified_s") is not None else None),
        ("note", o.get("note"))) if v])]
    out.append(grid("devices", [Col("mac", True), Col("kind", True), Col("ecm_mac", True),
                                Col("from")],
                    ([d["mac"], d["kind"], d["ecm_mac"],
                      (d.get("origin") or {}).get("source")] for d in o["devices"]), width))
    targets = o["targets"]

    def verdict(t: dict[str, Any]) -> Any:
        return "" if t["state"] == "removed" else t["verdict"]  # no block left to judge

    if wide:
        out.append(grid("targets", [Col("id", True), Col("device", True), Col("mac", True),
                                    "mechanism", Col("state", True), Col("verdict", True),
                                    Col("attempts", True), "next attempt", "last error"],
                        ([t["id"], t["device"], t["mac"], t["mechanism"], t["state"],
                          verdict(t), t["attempts"], t["next_attempt_at"], t["last_error"]]
                         for t in targets), UNLIMITED))
    else:
        out.append(grid("targets (--wide for attempts)",
                        [Col("device", True), Col("mac", True), "mechanism",
                         Col("state", True), Col("verdict", True)],
                        ([t["device"], t["mac"], t["mechanism"], t["state"], verdict(t)]
                         for t in targets), width))
        errors = [(f"{t['device']} {t['mac']}", t["last_error"]) for t in targets
                  if t.get("last_error")]
        if errors:
            out.append(pairs("last errors", errors))
    for lr in o["lift_requests"]:
        lid = lr["id"] if wide else short_id(lr["id"])
        out.append(grid(f"lift {lid} ({lr['state']}): {lr.get('rule') or 'no rule'}, "
                        f"{lr.get('needed')} needed",
                        [Col("approver", True), Col("decision", True), Col("at", True),
                         "note"],
                        ([m, by[m]["decision"] if m in by else "waiting",
                          (by[m]["created_at"] if wide else ago(by[m]["created_at"]))
                          if m in by else "", by[m]["note"] if m in by else ""]
                         for by in [{a["approver"]: a for a in lr["approvals"]}]
                         for m in (lr.get("electorate") or list(by))), width))
    return out


@orders_app.command("show")
def show_order(order_id: Annotated[str, typer.Argument(metavar="ORDER_ID")],
               wide: Wide = False, url: Url = None, token: Token = None,
               config: Config = None, json: Json = False) -> None:
    """One order with its devices, targets and lift requests (full or short id)."""
    with client(url, token, config) as c:
        o = c.get(f"/v1/orders/{resolve_order(c, order_id)}")
    if json:
        print_json(o)
        return
    show(*order_tables(o, wide, UNLIMITED if wide else None), wide=wide)
    show_coverage(o)


def show_coverage(o: dict[str, Any]) -> None:
    """Who holds each MAC of the order, and whose consent it takes to release it."""
    rows = []
    for c in o.get("coverage", []):
        for h in c["orders"] or [{"order_id": "-", "reason": "", "state": "",
                                  "consent": None}]:
            cons = h["consent"]
            rule = (f"{cons['rule']}{' ' + str(cons['n']) if cons.get('n') else ''} of "
                    f"{cons['group'] or 'any approver'}") if cons else ""
            rows.append([c["mac"], short_id(h["order_id"]), h["reason"], h["state"], rule])
    table("held by (each must be lifted, with its consent, before the MAC forwards)",
          ["mac", "id", "reason", "state", "consent"], rows)
    b = o.get("breaches") or {}
    if b.get("count"):
        table(f"BREACHES ({b['count']}): seen forwarding under the verified ban",
              ["at", "device", "mac", "state", "seen by"],
              ([x["at"], x["device"], x["mac"], x["state"], x["source"]]
               for x in b["recent"]))


@orders_app.command("amend")
def amend_order(
    order_id: str,
    reason: Annotated[Reason | None, typer.Option(help="New reason")] = None,
    scope: Annotated[Scope | None, typer.Option(help="New scope")] = None,
    node: Annotated[str | None, typer.Option(help="New node")] = None,
    add_mac: Annotated[list[str] | None, typer.Option(
        help="Add a device: MAC[:kind] or MAC:set_top=ECM_MAC; repeatable")] = None,
    remove_mac: Annotated[list[str] | None, typer.Option(
        help="Remove a device (a downgrade: needs the lift consent); repeatable")] = None,
    add_layer: Annotated[list[str] | None, typer.Option(
        help="Add a layer: dhcp, cmts or headend; repeatable")] = None,
    remove_layer: Annotated[list[str] | None, typer.Option(
        help="Remove a layer (a downgrade); repeatable")] = None,
    note: Annotated[str | None, typer.Option(help="Why")] = None,
    ticket: Annotated[str | None, typer.Option(help="Escalation ticket behind it")] = None,
    url: Url = None, token: Token = None, config: Config = None, json: Json = False,
) -> None:
    """Amend an order: upgrades (stricter reason, wider scope, more devices or layers)
    take effect at once; downgrades wait for the consent a lift needs."""
    body: dict[str, Any] = {}
    for key, value in (("reason", reason.value if reason else None),
                       ("scope", scope.value if scope else None), ("node", node),
                       ("note", note), ("ticket", ticket)):
        if value is not None:
            body[key] = value
    if add_mac:
        body["add_devices"] = [parse_device(m) for m in add_mac]
    if remove_mac:
        body["remove_macs"] = [parse_device(m)["mac"] for m in remove_mac]
    if add_layer:
        body["add_layers"] = add_layer
    if remove_layer:
        body["remove_layers"] = remove_layer
    with client(url, token, config) as c:
        order_id = resolve_order(c, order_id)
        res = c.post(f"/v1/orders/{order_id}/amendments", body)
    if json:
        print_json(res)
        return
    typer.echo(f"{order_id} {res['state']}")
    for ch in res["applied"]:
        typer.echo(f"in force now: {ch['field']} {ch['before']} -> {ch['after']}")
    if res["pending"]:
        lr = res["pending"]
        typer.echo(f"waiting for consent (lift request {lr['id']}, {lr['rule']} of "
                   f"{lr['group'] or 'the approvers'}: {', '.join(lr['electorate'] or [])})")
    typer.echo(res["note"])


def lift(
    order_id: str,
    reason: Annotated[str, typer.Option(help="Why the ban should be lifted")],
    on_behalf_of: Annotated[str | None, typer.Option(
        help="The person who asked for the lift (may not approve it)")] = None,
    ttl_hours: Annotated[float | None, typer.Option(
        help="Hours the request stays open [default and maximum: the policy's limit]")] = None,
    url: Url = None, token: Token = None, config: Config = None, json: Json = False,
) -> None:
    """Ask for a ban to be lifted. Nothing is lifted until the policy's approvers consent."""
    body: dict[str, Any] = {"reason": reason}
    if on_behalf_of:
        body["on_behalf_of"] = on_behalf_of
    if ttl_hours is not None:
        body["ttl_hours"] = ttl_hours
    with client(url, token, config) as c:
        order_id = resolve_order(c, order_id)
        res = c.post(f"/v1/orders/{order_id}/lift", body)
    if json:
        print_json(res)
    else:
        lr = res["lift_request"]
        typer.echo(f"{order_id} {res['state']}; lift request {lr['id']}")
        typer.echo(f"approvers: {', '.join(lr['electorate'] or [])}")
        typer.echo(res["note"])


def approve(
    ref: Annotated[str, typer.Argument(metavar="LIFT_ID|ORDER_ID")],
    refuse: Annotated[bool, typer.Option("--refuse", help="Refuse instead of approve")] = False,
    note: Annotated[str | None, typer.Option()] = None,
    url: Url = None, token: Token = None, config: Config = None, json: Json = False,
) -> None:
    """Approve (or --refuse) a lift request with your own token: by its id, or the
    order's open one."""
    body: dict[str, Any] = {"decision": "refuse" if refuse else "approve"}
    if note:
        body["note"] = note
    with client(url, token, config) as c:
        if ref.startswith("lift_"):
            order_id = c.get(f"/v1/lifts/{ref}")["order_id"]
            body["lift_request_id"] = ref
        else:
            order_id = resolve_order(c, ref)
        res = c.post(f"/v1/orders/{order_id}/approvals", body)
    if json:
        print_json(res)
        return
    lr = res["lift_request"]
    yes = sum(1 for a in lr["approvals"] if a["decision"] == "approve")
    typer.echo(f"{body['decision']} recorded on {lr['id']} ({yes} of {lr['needed']} "
               f"approval(s); request {lr['state']}; order {res['order_state']})")
    typer.echo(res["note"])
