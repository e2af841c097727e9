"""Benchmark: sweep of one lab CMTS with 20,000 modems (MAC and status columns).

Ours: :class:`FastSnmpClient.walk_columns` over docsIf3CmtsCmRegStatusMacAddr and
docsIf3CmtsCmRegStatusValue together (max-repetitions 25) in ``RANGES`` GETBULK streams over
ranges of row indexes cut where the previous walk split evenly (the profiles' default
``walk_ranges``, 2; env ``BENCH_WALK_RANGES``), a fresh client per round (v3 includes engine
discovery), in this process; client CPU from time.process_time.
Reference: net-snmp ``snmpbulkwalk -Cr25`` of the same two columns, one after the other
(snmpbulkwalk walks one subtree per run); client CPU from getrusage(RUSAGE_CHILDREN).
The lab (``enforcer-lab up``) runs in its own process. Rounds alternate which side goes
first. Targets (the issues): wall time <= 0.8x net-snmp (round two), client CPU per varbind
<= 3x.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.common import (
    TOPOLOGIES,
    bulkwalk_cmd,
    count_varbinds,
    lab_credentials,
    netsnmp_target,
    rel,
    run_bulkwalks,
    scaled_topology,
    topology_size,
)
from bench.registry import BenchContext, BenchResult, Figure, register
from enforcer.engine.sweep import DOCS_IF3_REG_STATUS
from enforcer.transport.fastsnmp import FastSnmpClient, Row, split_points
from enforcer.transport.params import SnmpAuth
from enforcer.transport.snmpwire.ber import OID
from lab.testing import running_lab

REPS = 25
RANGES = int(os.environ.get("BENCH_WALK_RANGES", "2"))  # the profiles' default walk_ranges
Walk = dict[OID, list[Row]]
COLUMNS = [DOCS_IF3_REG_STATUS.mac, DOCS_IF3_REG_STATUS.state]


async def _ours(host: str, port: int, creds: SnmpAuth,
                splits: list[OID]) -> tuple[float, float, Walk]:
    c0, t0 = time.process_time(), time.perf_counter()
    async with FastSnmpClient(host, port, creds, max_repetitions=REPS, retries=1) as client:
        walk = await client.walk_columns(COLUMNS, splits=splits)
    return time.perf_counter() - t0, time.process_time() - c0, walk


def _splits(walk: Walk) -> list[OID]:
    """Where the next walk splits: the previous walk's rows in RANGES parts (as a
    client made with ``walk_ranges=RANGES`` does for its own next walk)."""
    return split_points([row[0] for row in walk[COLUMNS[0]]], RANGES)


def _netsnmp_rows(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if " = " in line]


@register("sweep_cmts", "Sweep of one CMTS (MAC + status columns), FastSnmpClient vs snmpbulkwalk")
def run(ctx: BenchContext) -> BenchResult:
    if ctx.smoke:
        topo = scaled_topology("smoke-sweep", 1, 300, ctx.work)
    else:
        topo = TOPOLOGIES / "scale-20k.yaml"
    _, modems = topology_size(topo)
    expected = modems * len(COLUMNS)
    figures: list[Figure] = []
    details: dict[str, dict[str, list[float]]] = {}
    identical = True
    walk: Walk = {}
    outs: list[str] = []
    with running_lab(topo, state_dir=ctx.work / "lab-sweep") as lab:
        name, dev = next(iter(lab.inventory.devices.items()))
        creds = lab_credentials(lab, name)
        loop = asyncio.new_event_loop()
        try:
            for proto, cred in creds.items():
                target = netsnmp_target(cred, dev.host, dev.snmp_port)
                cmds = [bulkwalk_cmd(target, col, REPS) for col in COLUMNS]
                runs: dict[str, list[float]] = {k: [] for k in
                                                ("wall", "cpu", "ref_wall", "ref_cpu")}
                # warm-up of both sides: caches, key localization, page cache for net-snmp
                _, _, walk = loop.run_until_complete(_ours(dev.host, dev.snmp_port, cred, []))
                run_bulkwalks(cmds)
                for r in range(ctx.rounds):
                    for side in (("ours", "ref") if r % 2 == 0 else ("ref", "ours")):
                        if side == "ours":
                            wall, cpu, walk = loop.run_until_complete(
                                _ours(dev.host, dev.snmp_port, cred, _splits(walk)))
                            got = sum(len(v) for v in walk.values())
                            if got != expected:
                                raise RuntimeError(f"{proto}: walked {got} of {expected}")
                            runs["wall"].append(wall)
                            runs["cpu"].append(cpu / got * 1e6)
                        else:
                            wall, cpu, outs = run_bulkwalks(cmds)
                            got = sum(count_varbinds(o) for o in outs)
                            if got != expected:
                                raise RuntimeError(f"{proto}: net-snmp walked {got}")
                            runs["ref_wall"].append(wall)
                            runs["ref_cpu"].append(cpu / got * 1e6)
                    # same OIDs and values on both sides (checked outside the timing)
                    identical = identical and _same(walk, outs)
                details[proto] = runs
                ref = "net-snmp snmpbulkwalk (2 sequential walks)"
                figures.append(Figure(f"{proto} wall time", "s", runs["wall"],
                                      runs["ref_wall"], ref, max_ratio=0.8))
                figures.append(Figure(f"{proto} client CPU per varbind", "us", runs["cpu"],
                                      runs["ref_cpu"], ref, max_ratio=3.0))
        finally:
            loop.close()
    notes = [
        f"{modems:,} modems x {len(COLUMNS)} columns = {expected:,} varbinds per sweep; "
        f"max-repetitions {REPS} on both sides; {ctx.rounds} alternating rounds.",
        f"Ours walks both columns together (25 rows x 2 columns per request) in {RANGES} "
        "GETBULK streams over ranges of row indexes cut where the previous walk's rows "
        "split evenly (the warm-up walk, then each round's own); "
        "snmpbulkwalk walks one subtree per run, so the reference is two runs back to back "
        "(process start-up and v3 discovery included on both sides).",
        f"Results identical on both sides (OIDs, values): {identical}.",
    ]
    return BenchResult("sweep_cmts", "Sweep of one CMTS", {"modems": modems, "reps": REPS,
                       "rounds": ctx.rounds, "topology": rel(topo)}, figures, notes,
                       {"runs": details, "identical": identical})


def _same(walk: Walk, outs: list[str]) -> bool:
    """Compare our walk with snmpbulkwalk -On output (INTEGER and Hex-STRING/STRING)."""
    for col, out in zip(COLUMNS, outs, strict=True):
        ours = walk[col]
        lines = _netsnmp_rows(out)
        if len(lines) != len(ours):
            return False
        for (index, _tag, value), line in zip(ours, lines, strict=True):
            oid, _, rhs = line.partition(" = ")
            if oid != "." + ".".join(map(str, col + index)):
                return False
            kind, _, text = rhs.partition(": ")
            if kind == "INTEGER":
                if int(text) != value:
                    return False
            elif kind == "Hex-STRING":
                if bytes.fromhex(text.replace(" ", "")) != value:
                    return False
            elif kind == "STRING":
                if text.strip('"').encode() != value:
                    return False
            else:
                return False
    return True
