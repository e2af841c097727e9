"""The lab's loopback HTTP control API: ground truth, fault knobs, reboots, moves.

    GET  /devices                         endpoints, knobs, SNMP stats, SSH sessions
    GET  /devices/{name}/sessions         SSH session records
    GET  /devices/{name}/clients          who talked to it when; overlapping sources listed
    POST /devices/{name}/faults           {"unreachable": true, "slow_s": 2, ...}
    POST /devices/{name}/reboot
    POST /devices/{name}/rotate-host-key
    GET  /truth/{mac}                     where the MAC is seen, state, forwarding, why
    POST /modems/{mac}/move               {"cmts": "...", "node": "..."}
    POST /modems/{mac}/power              {"on": false}
    POST /modems/{mac}/network-access     {"enabled": false}  (provisioning-side)
    GET  /cmts/{name}/blocks              deny list, hotlist, CM-CTRL state
    POST /cmts/{name}/seed                bulk blocks for benchmark set-up
    POST /provisioning/target             {"url", "secret"}: where to deliver link events
    GET  /provisioning/links              the provisioning system's links (its export)
    POST /provisioning/devices            {"account", "mac", "kind", "cmts", "node",
                                          "ecm_mac"?, "deliver"?}: a new device, online,
                                          linked, event delivered (unless deliver=false)
    POST /provisioning/devices/{mac}/unlink {"deliver"?}: unlink (the device stays online)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict

from enforcer.api.embedded import EmbeddedServer
from enforcer.domain.mac import Mac
from enforcer.errors import MacError

if TYPE_CHECKING:
    from lab.runner import Lab


class FaultBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unreachable: bool | None = None
    slow_s: float | None = None
    snmp_gen_err: bool | None = None
    too_big_bytes: int | None = None
    wrong_credentials: bool | None = None
    cli_error: str | None = None
    clear: bool = False


class MoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cmts: str
    node: str


class PowerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: bool


class SeedBody(BaseModel):
    """Bulk set-up for benchmarks: put blocks in place without a SET per MAC."""

    model_config = ConfigDict(extra="forbid")
    disable_forwarding: list[str] = []
    deny: list[str] = []


class TargetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    secret: str


class ProvisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str
    mac: str
    kind: Literal["cable_modem", "set_top"] = "cable_modem"
    cmts: str
    node: str
    ecm_mac: str | None = None
    deliver: bool = True


class UnlinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deliver: bool = True


class AccessBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


def _mac(text: str) -> bytes:
    try:
        return Mac(text).packed
    except MacError as e:
        raise HTTPException(422, str(e)) from None


def create_control_app(lab: Lab) -> FastAPI:
    app = FastAPI(title="enforcer-lab control", version="1")

    def runtime(name: str) -> Any:
        if name not in lab.devices:
            raise HTTPException(404, f"no device {name!r}")
        return lab.devices[name]

    @app.get("/devices")
    async def devices() -> list[dict[str, Any]]:
        return lab.endpoints()

    @app.get("/devices/{name}/sessions")
    async def sessions(name: str) -> dict[str, Any]:
        rt = runtime(name)
        if rt.ssh is None:
            return {"active": 0, "max_concurrent": 0, "sessions": []}
        return {"active": rt.ssh.active_sessions,
                "max_concurrent": rt.ssh.max_concurrent_sessions,
                "sessions": [dict(vars(s)) if hasattr(s, "__dict__") else s
                             for s in rt.ssh.sessions]}

    @app.get("/devices/{name}/clients")
    async def clients(name: str) -> dict[str, Any]:
        runtime(name)
        return lab.clients(name)

    @app.post("/devices/{name}/faults")
    async def faults(name: str, body: FaultBody) -> dict[str, Any]:
        runtime(name)
        if body.clear:
            lab.set_knobs(name, unreachable=False, slow_s=0.0, snmp_gen_err=False,
                          too_big_bytes=None, wrong_credentials=False, cli_error=None)
        changes = body.model_dump(exclude_none=True, exclude={"clear"})
        return dict(vars(lab.set_knobs(name, **changes)))

    @app.post("/devices/{name}/reboot")
    async def reboot(name: str) -> dict[str, Any]:
        runtime(name)
        try:
            lab.reboot(name)
        except KeyError:
            raise HTTPException(409, f"{name} is not a CMTS") from None
        return {"rebooting": True, "for_s": lab.fleet.timings.reboot_s}

    @app.post("/devices/{name}/rotate-host-key")
    async def rotate(name: str) -> dict[str, Any]:
        rt = runtime(name)
        if rt.ssh is None:
            raise HTTPException(409, f"{name} has no SSH")
        await rt.ssh.rotate_host_key()
        return {"host_key": rt.ssh.host_key_public(),
                "fingerprint": rt.ssh.host_key_fingerprint()}

    @app.get("/truth/{mac}")
    async def truth(mac: str) -> dict[str, Any]:
        return lab.fleet.ground_truth(_mac(mac))

    @app.post("/modems/{mac}/move")
    async def move(mac: str, body: MoveBody) -> dict[str, Any]:
        m = _mac(mac)
        if m not in lab.fleet.modems:
            raise HTTPException(404, "unknown modem")
        plan = lab.built.nodes.get(body.node)
        if plan is None or plan.device != body.cmts:
            raise HTTPException(422, f"node {body.node!r} is not served by {body.cmts!r}")
        lab.fleet.move(m, body.cmts, node=body.node, md_if=plan.md_if,
                       us_if=plan.us_ifs[0], ds_if=plan.ds_if)
        return lab.fleet.ground_truth(m)

    @app.post("/modems/{mac}/power")
    async def power(mac: str, body: PowerBody) -> dict[str, Any]:
        m = _mac(mac)
        if m not in lab.fleet.modems:
            raise HTTPException(404, "unknown modem")
        lab.fleet.power(m, body.on)
        return lab.fleet.ground_truth(m)

    @app.post("/modems/{mac}/network-access")
    async def access(mac: str, body: AccessBody) -> dict[str, Any]:
        m = _mac(mac)
        if m not in lab.fleet.modems:
            raise HTTPException(404, "unknown modem")
        lab.fleet.modems[m].network_access = body.enabled
        return lab.fleet.ground_truth(m)

    @app.post("/cmts/{name}/seed")
    async def seed(name: str, body: SeedBody) -> dict[str, Any]:
        c = lab.fleet.cmtses.get(name)
        if c is None:
            raise HTTPException(404, f"no CMTS {name!r}")
        done = sum(c.disable_forwarding(_mac(m), True) for m in body.disable_forwarding)
        denied = sum(c.deny_add(_mac(m)) for m in body.deny)
        return {"forwarding_disabled": done, "denied": denied}

    @app.post("/provisioning/target")
    async def target(body: TargetBody) -> dict[str, Any]:
        host = body.url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        if not (host.startswith("127.") or host in ("localhost", "::1")):
            raise HTTPException(422, "the lab delivers events to loopback only")
        lab.provisioning.target_url, lab.provisioning.secret = body.url, body.secret
        return {"url": body.url}

    @app.get("/provisioning/links")
    async def links() -> dict[str, Any]:
        return {"export": str(lab.provisioning.export_path),
                "links": [vars(x) for x in lab.provisioning.links.values()],
                "delivered": lab.provisioning.delivered[-100:]}

    @app.post("/provisioning/devices")
    async def provision(body: ProvisionBody) -> dict[str, Any]:
        try:
            rec = lab.provision(account=body.account, mac=_mac(body.mac), kind=body.kind,
                                cmts=body.cmts, node=body.node,
                                ecm_mac=_mac(body.ecm_mac) if body.ecm_mac else None)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        delivery = (await lab.provisioning.deliver("device.linked", rec) if body.deliver
                    else {"delivered": False, "why": "deliver=false (a lost event)"})
        return {"link": vars(rec), "delivery": delivery,
                "truth": lab.fleet.ground_truth(_mac(rec.ecm_mac or rec.mac))}

    @app.post("/provisioning/devices/{mac}/unlink")
    async def unlink(mac: str, body: UnlinkBody) -> dict[str, Any]:
        try:
            key = str(Mac(mac))
        except MacError as e:
            raise HTTPException(422, str(e)) from None
        rec = lab.provisioning.unlink(key)
        if rec is None:
            raise HTTPException(404, "no such link")
        delivery = (await lab.provisioning.deliver("device.unlinked", rec) if body.deliver
                    else {"delivered": False, "why": "deliver=false"})
        return {"link": vars(rec), "delivery": delivery}

    @app.get("/cmts/{name}/blocks")
    async def blocks(name: str) -> dict[str, Any]:
        c = lab.fleet.cmtses.get(name)
        if c is None:
            raise HTTPException(404, f"no CMTS {name!r}")
        return {
            "deny": {m.hex(":"): sum(r.attempts.values()) for m, r in c.deny.items()},
            "deny_capacity": c.deny_capacity,
            "hotlist": {m.hex(":"): {"trust": r.trust, "cert": r.cert is not None}
                        for m, r in c.hotlist.items()},
            "forwarding_disabled": [e.mac.hex(":") for e in c.entries.values()
                                    if e.fwd_disabled],
            "resets": c.resets, "boots": c.boots,
        }

    return app


async def serve_control(lab: Lab, *, host: str, port: int) -> tuple[asyncio.Task[None], str]:
    config = uvicorn.Config(create_control_app(lab), host=host, port=port, log_level="warning",
                            lifespan="off")
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    sock = server.servers[0].sockets[0]
    bound = sock.getsockname()[1]
    return task, f"http://{host}:{bound}"
