"""Benchmark: ban latency, from the webhook's 202 to ``verified``, with the lab's fast
default timings (issue "Performance", figure 3).

A lab of the four CMTS dialects (cisco-cbr8, arris-e6000, casa-c100g, docsis3-generic)
with generated modems; ``enforcer serve`` as a subprocess with the test suite's engine
timings (verify poll 0.2 s, settle 5 s). Every ban is a distinct real lab modem, reason
``fraud``, scope ``cmts`` with the modem's node, so each order involves one CMTS; bans go
round-robin over the four CMTSes.

Per round: 200 bans one after another (each waits for ``verified`` before the next), then
100 submitted at once (asyncio + httpx), then waiting for all. Latency per order:

- server: ``verified_at - created_at`` from the order (the daemon's own timestamps; no
  polling bias) - the judged figure;
- client: from receiving the 202 to seeing ``verified``: sequential bans poll
  ``GET /v1/orders/{id}`` every 20 ms; the concurrent batch polls ``GET /v1/orders?limit=N``
  (one request for the whole batch) every 100 ms, so it carries up to 0.1 s of polling bias.

Reference, side by side: the lab's simulated re-registration time (a constant of the
topology's timings: ``Timings.registration_total_s``), which the targets add to 1 s
(median) and 3 s (p99); and, for context, the raw device round trip measured in this
script, alternating rounds with ours: net-snmp ``snmpset`` of the CM-CTRL
disable-forwarding PDU (3 varbinds) + ``snmpget`` of docsIf3CmtsCmRegStatusValue of one
modem on the docsis3-generic CMTS, v3 authPriv (process start-up included).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import NETSNMP_ENV, children_cpu, netsnmp_target
from bench.daemon import (
    BenchDaemon,
    LabModem,
    ban_body,
    four_dialect_topology,
    generated_modems,
    interleaved,
    rereg_s,
    start_daemon,
    webhook_headers,
)
from bench.registry import BenchContext, BenchResult, Figure, register
from enforcer.domain.mac import Mac
from enforcer.drivers.transport_args import snmp_auth
from enforcer.mib import dotted, oid
from enforcer.transport.fastsnmp import FastSnmpClient
from lab.testing import LabHandle, running_lab

REG_STATUS_MAC = oid("docsIf3CmtsCmRegStatusMacAddr")
REG_STATUS_VALUE = dotted("docsIf3CmtsCmRegStatusValue")
SEQ_POLL_S = 0.02
BATCH_POLL_S = 0.1
ORDER_TIMEOUT_S = 60.0  # one sequential ban
BATCH_TIMEOUT_S = 180.0  # the concurrent batch
MAX_ROUNDS = 3  # each round is 300 bans (and ~1 minute)
REF_MODEMS = 10  # generic-CMTS modems reserved for the net-snmp reference


@dataclass
class Run:
    server: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    by_device: dict[str, list[float]] = field(default_factory=dict)  # server latency


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _server_latency(order: dict[str, Any]) -> float:
    return (_ts(order["verified_at"]) - _ts(order["created_at"])).total_seconds()


def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def _post(client: httpx.Client, d: BenchDaemon, body: dict[str, Any]) -> str:
    raw = json.dumps(body).encode()
    r = client.post(f"{d.base}/v1/hooks/escalation", content=raw,
                    headers=webhook_headers(d.key, raw))
    if r.status_code != 202:
        raise RuntimeError(f"webhook answered {r.status_code}: {r.text[:300]}")
    return str(r.json()["order_id"])


def sequential(d: BenchDaemon, modems: list[LabModem], tag: str) -> tuple[Run, list[str]]:
    run, ids = Run(), []
    with httpx.Client(timeout=10) as client:
        for i, m in enumerate(modems):
            oid = _post(client, d, ban_body(i, m, tag))
            t202 = time.perf_counter()
            ids.append(oid)
            k = 0
            while True:
                order = client.get(f"{d.base}/v1/orders/{oid}", headers=d.auth).json()
                if order["state"] == "verified":
                    run.client.append(time.perf_counter() - t202)
                    run.server.append(_server_latency(order))
                    break
                if time.perf_counter() - t202 > ORDER_TIMEOUT_S:
                    raise RuntimeError(f"order {oid} ({m.device}) not verified in "
                                       f"{ORDER_TIMEOUT_S:g} s: {order['state']} "
                                       f"({order.get('state_detail')})")
                k += 1  # next 20 ms tick after the 202 (no drift)
                time.sleep(max(0.0, t202 + k * SEQ_POLL_S - time.perf_counter()))
    return run, ids


async def _concurrent(d: BenchDaemon, modems: list[LabModem], tag: str
                      ) -> tuple[Run, list[str]]:
    run = Run()
    limits = httpx.Limits(max_connections=len(modems) + 1, max_keepalive_connections=16)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def submit(i: int, m: LabModem) -> tuple[str, float]:
            raw = json.dumps(ban_body(i, m, tag)).encode()
            r = await client.post(f"{d.base}/v1/hooks/escalation", content=raw,
                                  headers=webhook_headers(d.key, raw))
            if r.status_code != 202:
                raise RuntimeError(f"webhook answered {r.status_code}: {r.text[:300]}")
            return str(r.json()["order_id"]), time.perf_counter()

        got = await asyncio.gather(*(submit(i, m) for i, m in enumerate(modems)))
        t202 = dict(got)
        device_of = {oid: m.device for (oid, _t), m in zip(got, modems, strict=True)}
        seen: dict[str, dict[str, Any]] = {}
        t0 = time.perf_counter()
        while len(seen) < len(t202):
            r = await client.get(f"{d.base}/v1/orders", headers=d.auth,
                                 params={"limit": str(min(1000, len(t202)))})
            now = time.perf_counter()
            for o in r.json()["orders"]:
                if o["id"] in t202 and o["id"] not in seen and o["state"] == "verified":
                    seen[o["id"]] = o
                    run.client.append(now - t202[o["id"]])
            if now - t0 > BATCH_TIMEOUT_S:
                states: dict[str, int] = {}
                for o in r.json()["orders"]:
                    states[o["state"]] = states.get(o["state"], 0) + 1
                raise RuntimeError(f"concurrent batch: {len(seen)} of {len(t202)} verified "
                                   f"in {BATCH_TIMEOUT_S:g} s ({states})")
            await asyncio.sleep(BATCH_POLL_S)
        run.server = [_server_latency(o) for o in seen.values()]
        for o in seen.values():
            run.by_device.setdefault(device_of[o["id"]], []).append(_server_latency(o))
    return run, list(t202)


def concurrent(d: BenchDaemon, modems: list[LabModem], tag: str) -> tuple[Run, list[str]]:
    return asyncio.run(_concurrent(d, modems, tag))


def check_truth(lab: LabHandle, modems: list[LabModem]) -> int:
    """How many banned modems the lab still forwards (ground truth; expect 0)."""
    return sum(1 for m in modems if lab.truth(m.mac).get("forwarding") is True)


# ---- the reference: net-snmp set + get against the docsis3-generic CMTS --------------

@dataclass(frozen=True)
class RefModem:
    mac: str
    reg_id: int


def reg_ids(lab: LabHandle, device: str, macs: list[str]) -> list[RefModem]:
    """docsIf3CmtsCmRegStatusId of each MAC (one walk of the MAC column, untimed)."""
    dev = lab.inventory.devices[device]
    creds = lab.inventory.creds(device).snmp
    assert creds is not None

    async def walk() -> dict[bytes, int]:
        async with FastSnmpClient(dev.host, dev.snmp_port, snmp_auth(creds)) as client:
            got = await client.walk_columns([REG_STATUS_MAC])
        return {bytes(v): int(idx[0]) for idx, _tag, v in got[REG_STATUS_MAC]}

    table = asyncio.run(walk())
    return [RefModem(m, table[Mac(m).packed]) for m in macs]


def netsnmp_round_trips(lab: LabHandle, device: str, modems: list[RefModem], n: int
                        ) -> tuple[list[float], float]:
    """``n`` x (snmpset CM-CTRL MacAddr + DisableForwarding + Commit, snmpget the modem's
    docsIf3CmtsCmRegStatusValue): wall seconds of each pair, children CPU in total."""
    dev = lab.inventory.devices[device]
    creds = lab.inventory.creds(device).snmp
    assert creds is not None
    target = netsnmp_target(snmp_auth(creds), dev.host, dev.snmp_port)
    walls: list[float] = []
    c0 = children_cpu()
    for i in range(n):
        m = modems[i % len(modems)]
        mac_hex = Mac(m.mac).packed.hex()
        set_cmd = ["snmpset", "-On", "-t", "5", "-r", "1", *target.args,
                   f"{dotted('docsIf3CmtsCmCtrlCmdMacAddr')}.0", "x", mac_hex,
                   f"{dotted('docsIf3CmtsCmCtrlCmdDisableForwarding')}.0", "i", "1",
                   f"{dotted('docsIf3CmtsCmCtrlCmdCommit')}.0", "i", "3"]
        get_cmd = ["snmpget", "-On", "-t", "5", "-r", "1", *target.args,
                   f"{REG_STATUS_VALUE}.{m.reg_id}"]
        t0 = time.perf_counter()
        for cmd in (set_cmd, get_cmd):
            p = subprocess.run(cmd, env=NETSNMP_ENV, capture_output=True, text=True,
                               check=False, timeout=30)
            if p.returncode != 0:
                raise RuntimeError(f"{target.redact(cmd)} failed rc={p.returncode}: "
                                   f"{p.stderr[:300]}")
        walls.append(time.perf_counter() - t0)
        if "INTEGER: 17" not in p.stdout:  # forwardingDisabled(17)
            raise RuntimeError(f"snmpget after CM-CTRL: {p.stdout.strip()[:200]}")
    return walls, children_cpu() - c0


# ---- the benchmark --------------------------------------------------------------------

@register("ban_latency", "Ban latency: webhook 202 -> verified, 200 sequential + 100 at once")
def run(ctx: BenchContext) -> BenchResult:
    n_seq, n_conc, n_ref = (5, 5, 3) if ctx.smoke else (200, 100, 20)
    rounds = 1 if ctx.smoke else min(ctx.rounds, MAX_ROUNDS)
    need = rounds * (n_seq + n_conc) + 4  # + 4 warm-up bans
    per_cmts = -(-need // 4) + REF_MODEMS + 2
    topo = four_dialect_topology("ban-latency", per_cmts, ctx.work)
    runs: dict[str, list[Run]] = {"sequential": [], "concurrent": []}
    ref_walls: list[list[float]] = []
    ref_cpu = 0.0
    forwarding = 0
    with running_lab(topo, state_dir=ctx.work / "lab") as lab:
        rereg = rereg_s(lab.topology)
        generic = next(d.name for d in lab.topology.expanded_devices()
                       if d.dialect == "docsis3-generic")
        all_modems = generated_modems(lab.topology)
        ref_macs = [m.mac for m in all_modems if m.device == generic][-REF_MODEMS:]
        pool = interleaved([m for m in all_modems if m.mac not in set(ref_macs)])
        ref_modems = reg_ids(lab, generic, ref_macs)
        # Above the offered load: 100 orders arrive at once (default burst 100).
        d = start_daemon(lab, ctx.work / "daemon", ENFORCER_API__INTAKE_RATE_PER_S="200",
                         ENFORCER_API__INTAKE_BURST="400")
        started = time.monotonic()
        try:
            # Warm-up: one ban per CMTS (SNMP engine discovery, SSH logins, caches) and
            # one net-snmp pair; then past the footprint watcher's first sweep (5 s).
            sequential(d, pool[:4], "warm")
            pool = pool[4:]
            netsnmp_round_trips(lab, generic, ref_modems, 1)
            if not ctx.smoke:
                time.sleep(max(0.0, 8.0 - (time.monotonic() - started)))
            for r in range(rounds):
                for side in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
                    if side == "ref":
                        walls, cpu = netsnmp_round_trips(lab, generic, ref_modems, n_ref)
                        ref_walls.append(walls)
                        ref_cpu += cpu
                        continue
                    seq_m, pool = pool[:n_seq], pool[n_seq:]
                    conc_m, pool = pool[:n_conc], pool[n_conc:]
                    seq, _ = sequential(d, seq_m, f"seq{r}")
                    runs["sequential"].append(seq)
                    conc, _ = concurrent(d, conc_m, f"conc{r}")
                    runs["concurrent"].append(conc)
                    forwarding += check_truth(lab, seq_m + conc_m)  # untimed
        finally:
            d.stop()
    figures: list[Figure] = []
    ref_name = "lab re-registration time (topology timings)"
    details: dict[str, Any] = {"rereg_s": rereg}
    for mode, rs in runs.items():
        for src in ("server", "client"):
            meds = [statistics.median(getattr(x, src)) for x in rs]
            p99s = [pct(getattr(x, src), 99) for x in rs]
            label = "verified_at - created_at" if src == "server" else "client 202 -> seen"
            figures.append(Figure(f"{mode} median ({label})", "s", meds, [rereg] * len(meds),
                                  ref_name, max_value=round(1.0 + rereg, 3)))
            figures.append(Figure(f"{mode} p99 ({label})", "s", p99s, [rereg] * len(p99s),
                                  ref_name, max_value=round(3.0 + rereg, 3)))
            pooled = [v for x in rs for v in getattr(x, src)]
            details[f"{mode}_{src}"] = {
                "n": len(pooled), "median": statistics.median(pooled),
                "p90": pct(pooled, 90), "p99": pct(pooled, 99), "max": max(pooled),
                "per_round_median": meds, "per_round_p99": p99s}
    ref_meds = [statistics.median(w) for w in ref_walls]
    figures.append(Figure("device round trip, net-snmp snmpset (3 varbinds) + snmpget, v3 "
                          "authPriv (reference)", "s", ref_meds))
    details["concurrent_per_round_device_median"] = [
        {dev: round(statistics.median(v), 3) for dev, v in sorted(x.by_device.items())}
        for x in runs["concurrent"]]
    details["netsnmp_round_trips"] = ref_walls
    details["netsnmp_cpu_per_pair_s"] = ref_cpu / max(1, sum(len(w) for w in ref_walls))
    details["banned_modems_still_forwarding"] = forwarding
    seq_all = details["sequential_server"]
    conc_all = details["concurrent_server"]
    notes = [
        f"Lab: 4 CMTSes (cisco-cbr8, arris-e6000, casa-c100g, docsis3-generic), {per_cmts} "
        f"generated modems each, default lab timings: re-registration "
        f"{rereg:.2f} s (reference; targets median <= {1 + rereg:.2f} s, "
        f"p99 <= {3 + rereg:.2f} s).",
        f"Per round: {n_seq} sequential bans, then {n_conc} submitted at once; {rounds} "
        f"round(s), alternating with {n_ref} net-snmp set+get pairs; distinct real modems, "
        "reason fraud, scope cmts + the modem's node (one CMTS per order), round-robin "
        "over the CMTSes; 4 warm-up bans first.",
        "Judged latency: the order's verified_at - created_at (server timestamps). "
        f"Client-observed: 202 received -> verified seen, polling every {SEQ_POLL_S * 1000:.0f} "
        f"ms (sequential, GET /v1/orders/{{id}}) or {BATCH_POLL_S * 1000:.0f} ms (batch, one "
        "GET /v1/orders?limit=N).",
        "Daemon: engine verify_poll_s 0.2, verify_settle_s 5, verify_timeout_s 20 (the test "
        "suite's); api.intake_rate_per_s 200, intake_burst 400 (above the offered load).",
        f"Pooled over rounds, server: sequential median {seq_all['median']:.3f} s, p99 "
        f"{seq_all['p99']:.3f} s; concurrent median {conc_all['median']:.3f} s, p99 "
        f"{conc_all['p99']:.3f} s (max {conc_all['max']:.3f} s).",
        f"Ground truth after each round: banned modems the lab still forwards: {forwarding}.",
    ]
    return BenchResult("ban_latency", "Ban latency (webhook 202 -> verified)",
                       {"sequential": n_seq, "concurrent": n_conc, "rounds": rounds,
                        "modems_per_cmts": per_cmts, "netsnmp_pairs_per_round": n_ref,
                        "topology": str(Path(topo).name)},
                       figures, notes, details)
