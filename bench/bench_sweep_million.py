"""Benchmark: footprint sweep of 1,000,000 modems (500 lab CMTSes x 2,000), SNMPv3 authPriv.

The lab is split into ``SHARDS`` lab processes (one topology shard each, device numbers
apart so no MAC repeats), all on this machine. Ours: one
:func:`enforcer.engine.sweep.sweep_footprint` over every CMTS of every shard, in this one
process, a fresh FastSnmpClient per CMTS each round (v3 discovery of 500 engines
included), ``CONCURRENCY`` devices walked at a time, max-repetitions 25. Reference, side by
side in the same run: net-snmp ``snmpbulkwalk -Cr25`` of the same two columns of every
CMTS, one process per column per CMTS, with the same concurrency. Rounds alternate which
side goes first. Targets (the issue): our sweep in at most 15 s, and no slower than the
reference (ratio <= 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import yaml

from bench.bench_footprint import COLUMNS, REPS, reference_sweep
from bench.registry import BenchContext, BenchResult, Figure, register
from enforcer.drivers.transport_args import snmp_auth
from enforcer.engine.sweep import DOCS_IF3_REG_STATUS, sweep_footprint
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.params import SnmpAuth
from lab.testing import LabHandle, running_lab

CMTSES = 500
MODEMS = 2_000
SHARDS = 2  # lab processes: the lab's CPU is spread over both cores
CONCURRENCY = 32
TARGET_S = 15.0
LAB_START_S = 900.0  # building 250,000 modems per shard takes minutes on a loaded host

Endpoint = tuple[str, str, int, SnmpAuth]  # device, host, port, credential


def shard_topologies(work: Path, cmtses: int, modems: int, shards: int) -> list[Path]:
    """``shards`` topology files that together hold ``cmtses`` docsis3-generic CMTSes of
    ``modems`` each (no SSH), device names and MAC ranges distinct across shards."""
    per, extra = divmod(cmtses, shards)
    paths: list[Path] = []
    first = 1
    work.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        count = per + (1 if k < extra else 0)
        spec: dict[str, Any] = {"name": f"cmts{k}", "dialect": "docsis3-generic",
                                "ssh": False, "count": count,
                                "nodes": [{"name": f"node{k}", "modems": modems}]}
        path = work / f"million-shard-{k}.yaml"
        path.write_text(yaml.safe_dump({"name": f"million-{k}", "v2c": False,
                                        "first_device_number": first, "devices": [spec]}))
        paths.append(path)
        first += count
    return paths


def endpoints(labs: list[LabHandle]) -> list[Endpoint]:
    """Every CMTS of every shard with its own v3 authPriv credential (the inventory's)."""
    out: list[Endpoint] = []
    for lab in labs:
        for name, d in lab.inventory.devices.items():
            v3 = lab.inventory.creds(name).snmp
            if v3 is None:
                raise RuntimeError(f"{name}: the lab inventory has no SNMP credential")
            out.append((name, d.host, d.snmp_port, snmp_auth(v3)))
    return out


async def _ours(eps: list[Endpoint]) -> tuple[float, float, int, int]:
    c0, t0 = time.process_time(), time.perf_counter()
    clients = {name: FastSnmpClient(host, port, cred, device=name, max_repetitions=REPS,
                                    retries=2)
               for name, host, port, cred in eps}
    try:
        result = await sweep_footprint(clients, DOCS_IF3_REG_STATUS, concurrency=CONCURRENCY)
    finally:
        for c in clients.values():
            await c.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, result.modems, len(result.errors)


async def _reference(eps: list[Endpoint]) -> tuple[float, float, int]:
    return await reference_sweep([(host, port, cred) for _, host, port, cred in eps],
                                 CONCURRENCY)


@register("sweep_million", "Footprint sweep, 1,000,000 modems (500 CMTS x 2,000), v3")
def run(ctx: BenchContext) -> BenchResult:
    cmtses, modems, shards = (4, 50, 2) if ctx.smoke else (CMTSES, MODEMS, SHARDS)
    topos = shard_topologies(ctx.work / "million", cmtses, modems, shards)
    total = cmtses * modems
    expected = total * len(COLUMNS)
    runs: dict[str, list[float]] = {k: [] for k in ("wall", "cpu", "ref_wall", "ref_cpu")}
    t_start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        labs = [stack.enter_context(running_lab(t, state_dir=ctx.work / f"lab-million-{k}",
                                                timeout=LAB_START_S))
                for k, t in enumerate(topos)]
        lab_ready_s = time.perf_counter() - t_start
        eps = endpoints(labs)
        if len(eps) != cmtses:
            raise RuntimeError(f"{len(eps)} CMTSes in the labs' inventories, not {cmtses}")
        loop = asyncio.new_event_loop()
        try:
            for r in range(ctx.rounds):
                for side in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
                    if side == "ours":
                        wall, cpu, got, errors = loop.run_until_complete(_ours(eps))
                        if errors or got != total:
                            raise RuntimeError(f"swept {got:,} of {total:,} modems, "
                                               f"{errors} devices failed")
                        runs["wall"].append(wall)
                        runs["cpu"].append(cpu / expected * 1e6)
                    else:
                        wall, cpu, got = loop.run_until_complete(_reference(eps))
                        if got != expected:
                            raise RuntimeError(f"net-snmp walked {got:,} of {expected:,}")
                        runs["ref_wall"].append(wall)
                        runs["ref_cpu"].append(cpu / expected * 1e6)
        finally:
            loop.close()
    ref = f"net-snmp snmpbulkwalk, {CONCURRENCY} CMTSes in parallel"
    figures = [
        Figure(f"v3 authPriv sweep wall time, {total:,} modems", "s", runs["wall"],
               runs["ref_wall"], ref, max_ratio=1.0, max_value=TARGET_S),
        Figure("v3 authPriv client CPU per varbind", "us", runs["cpu"], runs["ref_cpu"], ref),
    ]
    notes = [
        f"{cmtses} CMTSes x {modems:,} modems = {total:,} modems, {expected:,} varbinds per "
        f"sweep, served by {shards} lab processes on this machine; concurrency "
        f"{CONCURRENCY} CMTSes; max-repetitions {REPS}; {ctx.rounds} alternating rounds.",
        f"Labs ready in {lab_ready_s:.0f} s. Both sides share the 2 cores with the lab "
        "processes; the reference starts one snmpbulkwalk per column per CMTS (process "
        "start-up and v3 discovery included), ours opens a client per CMTS each round.",
    ]
    params = {"cmts": cmtses, "modems_per_cmts": modems, "shards": shards,
              "concurrency": CONCURRENCY, "reps": REPS, "rounds": ctx.rounds,
              "topology": "generated: shard k holds cmts<k>-1.. (docsis3-generic, no SSH, "
                          "v3 only), device numbers continuing across shards"}
    return BenchResult("sweep_million", "Footprint sweep of a million modems", params,
                       figures, notes, {"runs": runs, "lab_ready_s": lab_ready_s})
