"""The story, end to end: start the lab, start ``enforcer serve`` on its embedded
defaults, file the story's ban through the signed escalation webhook, and follow it to
``verified``; then show the lab's ground truth for the banned modem and set-top.

Run: ``scripts/demo.sh`` (sets everything up), or ``python -m lab.demo`` in the venv.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from enforcer.api.signature import sign
from lab.testing import free_port, running_lab, wait_ready

console = Console(width=max(120, Console().width))


def story_body(lab: Any) -> dict[str, Any]:
    sub = next(s for s in lab.topology.subscribers if s.account == lab.topology.story_account)
    devices = [{"mac": str(d.mac), "kind": d.kind} for d in sub.devices]
    return {
        "ticket": "ESC-2026-11-0417",
        "account": sub.account,
        "reason": "threat_of_violence",
        "scope": "footprint",
        "devices": devices,
        "requested_by": "call-centre escalation desk",
        "note": "Repeated calls after non-payment disconnect; threatened staff, named the "
                "call centre's address. Reported to police and the H&S board.",
        "evidence": [{"kind": "call_recording", "ref": "rec://callcentre/2026/11/28/88412",
                      "offset": "00:04:31"},
                     {"kind": "ticket", "ref": "ESC-2026-11-0417"}],
    }


def send_webhook(base: str, secret: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    wid, ts = f"msg_{uuid.uuid4().hex}", int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    headers = {"webhook-id": wid, "webhook-timestamp": str(ts),
               "webhook-signature": sign(key, wid, ts, raw), "content-type": "application/json"}
    return httpx.post(f"{base}/v1/hooks/escalation", content=raw, headers=headers, timeout=10)


def follow(base: str, token: str, order_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    order: dict[str, Any] = {}
    with Live(console=console, refresh_per_second=8) as live:
        while time.monotonic() < deadline:
            r = httpx.get(f"{base}/v1/orders/{order_id}",
                          headers={"authorization": f"Bearer {token}"}, timeout=10)
            r.raise_for_status()
            order = r.json()
            live.update(_table(order))
            if order["state"] == "verified":
                return order
            time.sleep(0.2)
    raise SystemExit(f"order {order_id} did not reach verified: {order.get('state')} "
                     f"({order.get('state_detail')})")


def _table(order: dict[str, Any]) -> Table:
    targets = order.get("targets", [])
    on = len({tg["device"] for tg in targets})
    # The detail counts the devices that answered for the order (every device in scope);
    # blocks are needed only where the MAC is known, so there are usually fewer targets.
    t = Table(title=f"order {order['id']}: {order['state']}",
              caption=f"{len(targets)} target(s) on {on} device(s); "
                      f"{order.get('state_detail') or ''}")
    for col in ("device", "mac", "mechanism", "state", "verdict", "last_error"):
        t.add_column(col)
    for tg in order.get("targets", []):
        t.add_row(tg["device"], tg["mac"], tg["mechanism"], tg["state"], tg.get("verdict") or "",
                  (tg.get("last_error") or "")[:60])
    return t


def main() -> int:
    work = Path(os.environ.get("ENFORCER_DEMO_DIR", ".demo")).resolve()
    # Each run starts from a fresh daemon and lab state (a second run would otherwise
    # find its auditor user, and the story's order, from the first).
    for part in ("state", "lab"):
        shutil.rmtree(work / part, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    console.rule("1. the lab: simulated CMTSes and a headend controller")
    with running_lab(state_dir=work / "lab") as lab:
        for d in lab.devices():
            ports = [f"snmp udp/{d['snmp_port']}" if d.get("snmp_port") else "",
                     f"ssh tcp/{d['ssh_port']}" if d.get("ssh_port") else ""]
            console.print(f"  {d['name']:<10} {d['dialect']:<16} "
                          + " ".join(p for p in ports if p))
        env = {**os.environ,
               "ENFORCER_INVENTORY": str(lab.inventory_path),
               "ENFORCER_STATE_DIR": str(work / "state"),
               "ENFORCER_HTTP__LISTEN": f"127.0.0.1:{port}",
               "ENFORCER_WEBHOOK__SECRETS": json.dumps([secret]),
               # The lab re-registers a modem in well under a second.
               "ENFORCER_ENGINE__VERIFY_SETTLE_S": "5", "ENFORCER_ENGINE__VERIFY_POLL_S": "0.2"}
        exe = [sys.executable, "-m", "enforcer.cli.main"]
        token = subprocess.run(exe + ["users", "add", "demo-noc", "--role", "auditor", "--json"],
                               env=env, check=True, capture_output=True, text=True).stdout
        token = json.loads(token)["token"]
        console.rule("2. the daemon: enforcer serve (embedded defaults)")
        log = open(work / "enforcer.log", "wb")  # noqa: SIM115
        daemon = subprocess.Popen(exe + ["serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(base, daemon, work / "enforcer.log")
            body = story_body(lab)
            console.rule("3. the escalation system files the ban (signed webhook)")
            console.print_json(data=body)
            r = send_webhook(base, secret, body)
            console.print(f"-> HTTP {r.status_code} {r.json()}  Location: "
                          f"{r.headers.get('location')}")
            r.raise_for_status()
            order = follow(base, token, r.json()["order_id"])
            # The live display leaves the cursor on its last line: end it, then a blank
            # line, so the table stands apart from the next heading.
            console.line(2)
            console.rule("4. ground truth from the lab")
            for d in body["devices"]:
                t = lab.truth(d["mac"])
                if t.get("known"):
                    console.print(f"  {d['kind']:<12} {d['mac']}: forwarding="
                                  f"{t.get('forwarding')} ({t.get('why')})")
                else:
                    console.print(f"  {d['kind']:<12} {d['mac']}:")
                if "headend" in t:
                    he = t["headend"]
                    console.print(f"  {'':<12} headend {he['device']}: service_disconnected="
                                  f"{he['service_disconnected']} decoding={he['decoding']}")
                    e = lab.truth(he["ecm_mac"])
                    console.print(f"  {'':<12} its eCM {he['ecm_mac']}: forwarding="
                                  f"{e.get('forwarding')} ({e.get('why')})")
            console.print(f"[bold green]order {order['id']} verified[/] "
                          f"in {_elapsed(order):.2f} s")
            console.print("next: [bold]source .venv/bin/activate[/] puts `enforcer` and "
                          "`enforcer-lab` on your PATH; README.md, \"Using it\", goes on "
                          "from there")
        finally:
            daemon.terminate()
            daemon.wait(10)
            log.close()
    return 0


def _elapsed(order: dict[str, Any]) -> float:
    from datetime import datetime

    a = datetime.fromisoformat(order["created_at"])
    b = datetime.fromisoformat(order["verified_at"])
    return (b - a).total_seconds()


if __name__ == "__main__":
    sys.exit(main())
