"""Benchmark: footprint sweep of 100 lab CMTSes x 2,000 modems (200,000 modems).

Ours: :func:`enforcer.engine.sweep.sweep_footprint` in this one process, one FastSnmpClient
per CMTS (fresh each round; v3 includes discovery of 100 engines), ``CONCURRENCY`` devices
walked at a time, max-repetitions 25. Reference: net-snmp ``snmpbulkwalk -Cr25`` of the same
two columns of every CMTS, run as parallel processes with the same concurrency. The lab
(all 100 agents in one asyncio process) runs beside it on the same 2-core machine.
Target (the issue): our sweep in at most 15 s.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import (
    NETSNMP_ENV,
    TOPOLOGIES,
    WALK_TIMEOUT_S,
    bulkwalk_cmd,
    children_cpu,
    count_varbinds,
    lab_credentials,
    netsnmp_target,
    rel,
    scaled_topology,
    topology_size,
)
from bench.registry import BenchContext, BenchResult, Figure, register
from enforcer.engine.sweep import DOCS_IF3_REG_STATUS, SweepResult, sweep_footprint
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.params import SnmpAuth
from lab.testing import LabHandle, running_lab

REPS = 25
CONCURRENCY = 16
TARGET_S = 15.0
COLUMNS = (DOCS_IF3_REG_STATUS.mac, DOCS_IF3_REG_STATUS.state)


async def _ours(lab: LabHandle, creds: SnmpAuth) -> tuple[float, float, SweepResult]:
    c0, t0 = time.process_time(), time.perf_counter()
    clients = {name: FastSnmpClient(d.host, d.snmp_port, creds, device=name,
                                    max_repetitions=REPS, retries=2)
               for name, d in lab.inventory.devices.items()}
    try:
        result = await sweep_footprint(clients, DOCS_IF3_REG_STATUS, concurrency=CONCURRENCY)
    finally:
        for c in clients.values():
            await c.close()
    return time.perf_counter() - t0, time.process_time() - c0, result


async def reference_sweep(targets: list[tuple[str, int, SnmpAuth]],
                          concurrency: int = CONCURRENCY) -> tuple[float, float, int]:
    """net-snmp's side: ``snmpbulkwalk`` of each column of each (host, port, credential),
    ``concurrency`` devices at a time. (wall s, children's CPU s, varbinds walked)."""
    gate = asyncio.Semaphore(concurrency)
    total = 0

    async def one(host: str, port: int, creds: SnmpAuth) -> None:
        nonlocal total
        target = netsnmp_target(creds, host, port)
        async with gate:
            for col in COLUMNS:
                proc = await asyncio.create_subprocess_exec(
                    *bulkwalk_cmd(target, col, REPS), env=NETSNMP_ENV,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, err = await asyncio.wait_for(proc.communicate(), WALK_TIMEOUT_S)
                if proc.returncode != 0:
                    raise RuntimeError(f"snmpbulkwalk failed: {err.decode()[:300]}")
                total += count_varbinds(out.decode())

    c0, t0 = children_cpu(), time.perf_counter()
    await asyncio.gather(*(one(*t) for t in targets))
    return time.perf_counter() - t0, children_cpu() - c0, total


async def _reference(lab: LabHandle, creds: SnmpAuth) -> tuple[float, float, int]:
    return await reference_sweep([(d.host, d.snmp_port, creds)
                                  for d in lab.inventory.devices.values()])


@register("sweep_footprint", "Footprint sweep (100 CMTS x 2,000 modems) by one process")
def run(ctx: BenchContext) -> BenchResult:
    if ctx.smoke:
        topo = scaled_topology("smoke-footprint", 4, 100, ctx.work)
    else:
        topo = TOPOLOGIES / "scale-100x2000.yaml"
    n_dev, per_dev = topology_size(topo)
    modems = n_dev * per_dev
    expected = modems * len(COLUMNS)
    figures: list[Figure] = []
    details: dict[str, dict[str, list[float]]] = {}
    with running_lab(topo, state_dir=ctx.work / "lab-footprint", timeout=180) as lab:
        first = next(iter(lab.inventory.devices))
        creds = lab_credentials(lab, first)
        loop = asyncio.new_event_loop()
        try:
            for proto, cred in creds.items():
                runs: dict[str, list[float]] = {k: [] for k in
                                                ("wall", "cpu", "ref_wall", "ref_cpu")}
                for r in range(ctx.rounds):
                    for side in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
                        if side == "ours":
                            wall, cpu, res = loop.run_until_complete(_ours(lab, cred))
                            if res.errors or res.modems != modems:
                                raise RuntimeError(f"{proto}: {res.modems} of {modems} "
                                                   f"modems, errors {res.errors}")
                            runs["wall"].append(wall)
                            runs["cpu"].append(cpu / expected * 1e6)
                        else:
                            wall, cpu, got = loop.run_until_complete(_reference(lab, cred))
                            if got != expected:
                                raise RuntimeError(f"{proto}: net-snmp walked {got}")
                            runs["ref_wall"].append(wall)
                            runs["ref_cpu"].append(cpu / expected * 1e6)
                details[proto] = runs
                ref = f"net-snmp snmpbulkwalk, {CONCURRENCY} processes in parallel"
                figures.append(Figure(f"{proto} sweep wall time", "s", runs["wall"],
                                      runs["ref_wall"], ref, max_value=TARGET_S))
                figures.append(Figure(f"{proto} client CPU per varbind", "us", runs["cpu"],
                                      runs["ref_cpu"], ref))
        finally:
            loop.close()
    notes = [
        f"{n_dev} CMTSes x {per_dev:,} modems = {modems:,} modems, {expected:,} varbinds per "
        f"sweep; concurrency {CONCURRENCY} devices; max-repetitions {REPS}; {ctx.rounds} "
        "alternating rounds per protocol.",
        "The lab serves all CMTSes from one process on the same machine, so both sides "
        "share the 2 cores with it; the reference runs one snmpbulkwalk per column per "
        "CMTS (process start-up and v3 discovery included).",
    ]
    return BenchResult("sweep_footprint", "Footprint sweep", {
        "cmts": n_dev, "modems_per_cmts": per_dev, "concurrency": CONCURRENCY, "reps": REPS,
        "rounds": ctx.rounds, "topology": rel(topo)}, figures, notes, {"runs": details})
