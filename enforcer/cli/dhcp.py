"""``enforcer dhcp sentinel`` and ``enforcer dhcp probe`` (docs/dhcp.md).

The sentinel runs next to a DHCP mirror port or on the DHCP server, with CAP_NET_RAW
only. It reads the bans in force from the daemon (``GET /v1/orders?state=...``, any
token that may read orders) or from ``--bans-file``, refreshes them every
``--refresh`` seconds (keeping the last good set when the daemon is unreachable), and
reports each sighting as a log line, a JSON line on stdout and the counter
``enforcer_dhcp_sightings_total`` on its own ``/metrics`` port (``--metrics-port``).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from enforcer.cli.client import Exit, fail
from enforcer.cli.options import Config, Token, Url, client

log = logging.getLogger("enforcer.dhcp.sentinel")
dhcp_app = typer.Typer(help="Provisioning-side bans: DHCP sentinel and probe.",
                       no_args_is_help=True)
PAGE = 1000


def _orders(url: str | None, token: str | None, config: Path | None) -> list[dict[str, Any]]:
    from enforcer.dhcp.bans import IN_FORCE

    out: list[dict[str, Any]] = []
    with client(url, token, config) as c:
        for state in IN_FORCE:
            for offset in range(0, 100 * PAGE, PAGE):  # bounded: 100k orders per state
                page = c.get("/v1/orders", state=state, limit=PAGE, offset=offset)["orders"]
                out.extend(page)
                if len(page) < PAGE:
                    break
    return out


@dhcp_app.command()
def sentinel(
    interface: Annotated[str, typer.Option("--interface", "-i", help="Interface to read")],
    bans_file: Annotated[Path | None, typer.Option(
        "--bans-file", help="Read bans from this file instead of the daemon")] = None,
    refresh: Annotated[float, typer.Option(help="Seconds between ban refreshes")] = 30.0,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /metrics on 127.0.0.1:PORT")] = None,
    repeat_after: Annotated[float, typer.Option(
        help="Seconds before the same device is reported again")] = 60.0,
    duration: Annotated[float | None, typer.Option(
        help="Stop after this many seconds (default: until interrupted)")] = None,
    url: Url = None, token: Token = None, config: Config = None,
) -> None:
    """Report DHCP DISCOVER/REQUEST from banned MACs or remote-ids (never transmits)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

    from enforcer.dhcp.bans import bans_from_file, bans_from_orders
    from enforcer.dhcp.packets import BanSet
    from enforcer.dhcp.sentinel import DhcpSighting, Sentinel
    from enforcer.errors import InputError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def load() -> BanSet:
        if bans_file is not None:
            return bans_from_file(bans_file)
        return bans_from_orders(_orders(url, token, config))

    try:
        current = [load()]
    except InputError as e:
        fail(str(e), Exit.INVALID)
    registry = CollectorRegistry()
    sightings = Counter("enforcer_dhcp_sightings", "Banned devices seen asking for DHCP",
                        ["interface", "match"], registry=registry)
    banned_gauge = Gauge("enforcer_dhcp_sentinel_bans", "MACs and remote-ids watched",
                         registry=registry)
    banned_gauge.set_function(lambda: len(current[0]))

    def report(s: DhcpSighting) -> None:
        sightings.labels(s.interface, "+".join(s.matched)).inc()
        log.warning("banned device on %s: %s %s (%s, remote-id %s, giaddr %s)", s.interface,
                    s.message_type, s.mac, "+".join(s.matched), s.remote_id, s.giaddr)
        typer.echo(json.dumps({"sighting": s.as_dict()}))

    watcher = Sentinel(interface, lambda: current[0], report, repeat_after_s=repeat_after)
    try:
        watcher.start()
    except OSError as e:
        fail(f"cannot read {interface}: {e} (the sentinel needs CAP_NET_RAW)", Exit.ERROR)
    frames = Gauge("enforcer_dhcp_sentinel_frames", "DHCP frames read", registry=registry)
    frames.set_function(lambda: watcher.frames)
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(json.dumps({"started": {"interface": interface, "bans": len(current[0])}}))
    end = time.monotonic() + duration if duration is not None else None
    next_refresh = time.monotonic() + refresh
    try:
        while not stop.is_set() and watcher.running:
            if end is not None and time.monotonic() >= end:
                break
            stop.wait(0.2)
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + refresh
                try:
                    current[0] = load()
                except (InputError, typer.Exit) as e:
                    log.warning("ban refresh failed, keeping the last set: %s", e)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
    typer.echo(json.dumps({"stopped": {"frames": watcher.frames,
                                       "sightings": watcher.sightings}}))


@dhcp_app.command()
def probe(
    interface: Annotated[str, typer.Option("--interface", "-i", help="Interface to send on")],
    mac: Annotated[str, typer.Option("--mac", help="Client MAC to probe as")],
    server: Annotated[str | None, typer.Option(help="Accept OFFERs from this server")] = None,
    giaddr: Annotated[str | None, typer.Option(help="Probe as a relay at this address")
                      ] = None,
    remote_id: Annotated[str | None, typer.Option(help="Option 82 remote-id (hex)")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an OFFER")] = 3.0,
    expect_none: Annotated[bool, typer.Option(
        "--expect-none", help="Exit 1 when an OFFER comes back (the ban does not hold)")
    ] = False,
) -> None:
    """Send one DHCPDISCOVER as MAC and show the OFFER, if any. This transmits a DHCP
    broadcast: use a lab namespace or a dedicated probe interface."""
    from enforcer.dhcp.probe import probe_discover
    from enforcer.errors import MacError

    try:
        offer = probe_discover(interface, mac, server=server, timeout=timeout, giaddr=giaddr,
                               remote_id=bytes.fromhex(remote_id) if remote_id else None)
    except (MacError, ValueError) as e:
        fail(str(e), Exit.INVALID)
    except OSError as e:
        fail(f"cannot probe on {interface}: {e} (needs CAP_NET_RAW)", Exit.ERROR)
    typer.echo(json.dumps({"offer": offer.as_dict() if offer else None}))
    if expect_none and offer is not None:
        raise typer.Exit(1)
