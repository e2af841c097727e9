"""``enforcer-lab``: run the lab and drive its fault knobs from the shell."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from lab.topology import DEFAULT_TOPOLOGY, load_topology

app = typer.Typer(help="Simulated CMTSes and a headend controller speaking SNMP and SSH.",
                  no_args_is_help=True)
console = Console()
STATE_DIR = Path(os.environ.get("ENFORCER_LAB_STATE", ".lab"))


@app.command()
def up(
    topology: Path = typer.Option(DEFAULT_TOPOLOGY, help="topology YAML"),
    inventory_out: Path = typer.Option(Path(".lab/inventory.yaml"), help="write inventory here"),
    state_dir: Path = typer.Option(STATE_DIR, help="host keys, credentials, lab.json"),
    host: str = typer.Option("127.0.0.1", help="loopback address to bind"),
    snmp_base: int = typer.Option(16100, help="first SNMP UDP port (0: any free port)"),
    ssh_base: int = typer.Option(12200, help="first SSH TCP port (0: any free port)"),
    control_port: int = typer.Option(8480, help="control API port (0: any free port)"),
    netns: bool = typer.Option(False, help="give each device its own address in a netns"),
    hosts: str = typer.Option("", help="(inside --netns) one address per device, comma-separated"),
    control_host: str = typer.Option("127.0.0.1", help="control API address"),
) -> None:
    """Start the fleet, print its endpoints, write the inventory, run until Ctrl-C."""
    if netns:
        from lab.netns import reexec_in_netns

        reexec_in_netns(topology, inventory_out, state_dir, control_port)
        return
    from lab.runner import serve

    per_device = [h for h in hosts.split(",") if h]
    if not per_device and not host.startswith("127.") and host != "::1":
        raise typer.BadParameter("the lab binds loopback only (or use --netns)")
    topo = load_topology(topology)
    state_dir.mkdir(parents=True, exist_ok=True)

    def ready(lab: Any, control_url: str) -> None:
        _print_devices(lab.endpoints())
        console.print(f"control API: {control_url}   inventory: {inventory_out}")

    asyncio.run(serve(topo, state_dir=state_dir, inventory_out=inventory_out, host=host,
                      snmp_base=snmp_base, ssh_base=ssh_base, control_port=control_port,
                      on_ready=ready, hosts=per_device, control_host=control_host))


def _control_url(state_dir: Path) -> str:
    try:
        return str(json.loads((state_dir / "lab.json").read_text())["control_url"])
    except FileNotFoundError:
        raise typer.Exit(_fail(f"no running lab found in {state_dir} (run enforcer-lab up)")
                         ) from None


def _fail(msg: str) -> int:
    console.print(f"[red]error:[/red] {msg}")
    return 2


def _call(method: str, path: str, state_dir: Path, body: dict[str, Any] | None = None) -> Any:
    url = _control_url(state_dir) + path
    r = httpx.request(method, url, json=body, timeout=10)
    if r.status_code >= 400:
        raise typer.Exit(_fail(f"{r.status_code}: {r.text}"))
    return r.json()


def _print_devices(devices: list[dict[str, Any]]) -> None:
    t = Table("device", "dialect", "address", "SNMP/udp", "SSH/tcp", "state")
    for d in devices:
        state = "rebooting" if d.get("rebooting") else (
            "unreachable" if d["knobs"].get("unreachable") else "up")
        t.add_row(d["name"], d["dialect"], d["host"], str(d.get("snmp_port") or "-"),
                  str(d.get("ssh_port") or "-"), state)
    console.print(t)


@app.command()
def status(state_dir: Path = typer.Option(STATE_DIR), as_json: bool = typer.Option(
        False, "--json")) -> None:
    """Show the running lab's devices and knobs."""
    devices = _call("GET", "/devices", state_dir)
    if as_json:
        print(json.dumps(devices, indent=2))
    else:
        _print_devices(devices)


@app.command()
def truth(mac: str, state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """Ground truth for a MAC: where it is seen, its state, can it forward, and why."""
    print(json.dumps(_call("GET", f"/truth/{mac}", state_dir), indent=2))


@app.command()
def fault(
    device: str,
    unreachable: bool | None = typer.Option(None, "--unreachable/--reachable"),
    slow_s: float | None = typer.Option(None, help="answer this many seconds late"),
    snmp_gen_err: bool | None = typer.Option(None, "--gen-err/--no-gen-err"),
    too_big_bytes: int | None = typer.Option(None, help="tooBig above this response size"),
    wrong_credentials: bool | None = typer.Option(None, "--wrong-credentials/--right-credentials"),
    cli_error: str | None = typer.Option(None, help="regex of CLI commands that fail"),
    clear: bool = typer.Option(False, help="clear every knob first"),
    state_dir: Path = typer.Option(STATE_DIR),
) -> None:
    """Set fault knobs on a device."""
    body = {"unreachable": unreachable, "slow_s": slow_s, "snmp_gen_err": snmp_gen_err,
            "too_big_bytes": too_big_bytes, "wrong_credentials": wrong_credentials,
            "cli_error": cli_error, "clear": clear}
    print(json.dumps(_call("POST", f"/devices/{device}/faults", state_dir,
                           {k: v for k, v in body.items() if v is not None}), indent=2))


@app.command()
def reboot(device: str, state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """Reboot a CMTS: registrations and per-registration blocks are lost."""
    print(json.dumps(_call("POST", f"/devices/{device}/reboot", state_dir)))


@app.command("rotate-host-key")
def rotate_host_key(device: str, state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """Give a device a new SSH host key (the enforcer must refuse it)."""
    print(json.dumps(_call("POST", f"/devices/{device}/rotate-host-key", state_dir)))


@app.command()
def move(mac: str, cmts: str, node: str, state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """Carry a modem to another CMTS or node."""
    print(json.dumps(_call("POST", f"/modems/{mac}/move", state_dir,
                           {"cmts": cmts, "node": node}), indent=2))


@app.command()
def power(mac: str, on: bool = typer.Option(..., "--on/--off"),
          state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """Power a modem on or off."""
    print(json.dumps(_call("POST", f"/modems/{mac}/power", state_dir, {"on": on}), indent=2))


@app.command()
def sessions(device: str, state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """SSH sessions a device has seen (max concurrency included)."""
    print(json.dumps(_call("GET", f"/devices/{device}/sessions", state_dir), indent=2))


@app.command()
def provision(
    account: str, mac: str,
    kind: str = typer.Option("cable_modem", help="cable_modem or set_top"),
    cmts: str = typer.Option(..., help="CMTS the device is plugged into"),
    node: str = typer.Option(..., help="its fiber node on that CMTS"),
    ecm_mac: str | None = typer.Option(None, help="set_top: its embedded modem's MAC"),
    deliver: bool = typer.Option(True, "--deliver/--no-deliver",
                                 help="send the signed device.linked event (--no-deliver: a "
                                 "lost event; only the export knows)"),
    state_dir: Path = typer.Option(STATE_DIR),
) -> None:
    """Provision a new device to an account: it comes online and is linked; the signed
    device.linked event goes to the enforcer the lab was given (see ``target``)."""
    body = {"account": account, "mac": mac, "kind": kind, "cmts": cmts, "node": node,
            "ecm_mac": ecm_mac, "deliver": deliver}
    print(json.dumps(_call("POST", "/provisioning/devices", state_dir, body), indent=2))


@app.command()
def unlink(mac: str, deliver: bool = typer.Option(True, "--deliver/--no-deliver"),
           state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """Unlink a device from its account (it stays online)."""
    print(json.dumps(_call("POST", f"/provisioning/devices/{mac}/unlink", state_dir,
                           {"deliver": deliver}), indent=2))


@app.command()
def target(url: str = typer.Argument(..., help="the enforcer's base URL (loopback)"),
           secret_env: str = typer.Option("ENFORCER_PROVISIONING_SECRET",
                                          help="environment variable holding whsec_..."),
           state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """Tell the lab where to deliver provisioning events, signed with the secret in
    ``secret_env`` (the enforcer's provisioning.secrets)."""
    secret = os.environ.get(secret_env)
    if not secret:
        raise typer.Exit(_fail(f"{secret_env} is not set"))
    print(json.dumps(_call("POST", "/provisioning/target", state_dir,
                           {"url": url, "secret": secret})))


@app.command()
def blocks(device: str, state_dir: Path = typer.Option(STATE_DIR)) -> None:
    """Deny list, hotlist and CM-CTRL state on a CMTS."""
    print(json.dumps(_call("GET", f"/cmts/{device}/blocks", state_dir), indent=2))


if __name__ == "__main__":
    app()
