"""Benchmark: the lab SNMP agent served to net-snmp's snmpbulkwalk (v2c and v3 authPriv).

The agent runs in a separate process (this script with ``--serve``) holding a synthetic table
of ROWS rows x 3 columns (a 6-octet MAC, an INTEGER status, an Unsigned32). The client side
alternates v2c and v3 (SHA / AES-128) walks, ROUNDS times each, and reports the median
varbinds per second plus the agent's own CPU time per varbind (from /proc/PID/stat).

    python bench/bench_lab_agent.py [--rows 20000] [--rounds 5] [--reps 25]

Writes bench/results/lab_agent.json and bench/results/lab_agent.md. Also registered in the
suite as ``lab_agent`` (``python -m bench.run --only lab_agent``). It has no reference side:
it tells how much of a sweep's wall time the lab agent itself takes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine, rel  # noqa: E402
from bench.registry import BenchContext, BenchResult, Figure, register  # noqa: E402
from lab.snmp.agent import SnmpAgent, UsmUser  # noqa: E402
from lab.snmp.mibtree import Column, MibTree, Syntax, Table  # noqa: E402

ENTRY = (1, 3, 6, 1, 4, 1, 99999, 1, 1)
ENGINE_ID = bytes.fromhex("80001f8880beefcafe0001")
USER = ("bench", "benchauth123", "benchpriv123")
RESULTS = ROOT / "bench" / "results"
MAX_ROUNDS = 50
WALK_TIMEOUT_S = 120.0


def build_tree(rows: int) -> MibTree:
    """A modem-table-like MIB: MAC, status and an Unsigned32 per row, index 1..rows."""
    indexes: list[tuple[int, ...]] = [(i,) for i in range(1, rows + 1)]
    macs = {
        ix: bytes((0x00, 0x1A, 0x2B, ix[0] >> 16 & 255, ix[0] >> 8 & 255, ix[0] & 255))
        for ix in indexes
    }
    status = {ix: 6 + ix[0] % 3 for ix in indexes}
    tree = MibTree()
    tree.add(
        Table(
            ENTRY,
            [
                Column(2, Syntax.OCTET_STRING, macs.get),
                Column(3, Syntax.INTEGER, status.get),
                Column(4, Syntax.UNSIGNED32, lambda ix: ix[0] * 3 + 1_000_000),
            ],
            lambda: indexes,
            index_len=1,
        )
    )
    return tree


async def serve(rows: int) -> None:
    agent = SnmpAgent(
        build_tree(rows),
        communities={"public": "ro"},
        users=[UsmUser(USER[0], "SHA", USER[1], "AES", USER[2], "ro")],
        engine_id=ENGINE_ID,
        name="bench",
    )
    await agent.start("127.0.0.1", 0)
    print(f"READY {agent.port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await agent.stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def walk(cmd: list[str], env: dict[str, str], expected: int) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, check=False, timeout=WALK_TIMEOUT_S
    )
    elapsed = time.perf_counter() - t0
    count = sum(
        1 for line in proc.stdout.splitlines() if " = " in line and "No more variables" not in line
    )
    if proc.returncode != 0 or count != expected:
        raise SystemExit(
            f"walk failed (rc={proc.returncode}, {count} of {expected} varbinds): "
            f"{proc.stderr.strip()[:300]}"
        )
    return elapsed


def measure(rows: int, rounds: int, reps: int) -> dict[str, Any]:
    """Start the agent in its own process and walk it ``rounds`` times per protocol."""
    rounds = max(1, min(rounds, MAX_ROUNDS))
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--rows", str(rows)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline().split()
        if len(ready) != 2 or ready[0] != "READY":
            raise SystemExit("agent did not start")
        target = f"127.0.0.1:{ready[1]}"
        env = {**os.environ, "MIBS": ""}
        oid = "." + ".".join(map(str, ENTRY))
        common = ["-On", "-t", "5", "-r", "1", f"-Cr{reps}"]
        commands = {
            "v2c": ["snmpbulkwalk", "-v2c", "-c", "public", *common, target, oid],
            "v3_authPriv_SHA_AES": [
                "snmpbulkwalk",
                "-v3",
                "-l",
                "authPriv",
                "-u",
                USER[0],
                "-a",
                "SHA",
                "-A",
                USER[1],
                "-x",
                "AES",
                "-X",
                USER[2],
                *common,
                target,
                oid,
            ],
        }
        expected = rows * 3
        walk(commands["v2c"], env, expected)  # warm-up: caches, key localization
        times: dict[str, list[float]] = {k: [] for k in commands}
        cpu: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(rounds):
            for name, cmd in commands.items():
                before = cpu_seconds(server.pid)
                times[name].append(walk(cmd, env, expected))
                cpu[name].append(cpu_seconds(server.pid) - before)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    results: dict[str, Any] = {
        "benchmark": "lab SNMP agent served to snmpbulkwalk",
        "rows": rows,
        "columns": 3,
        "varbinds_per_walk": expected,
        "max_repetitions": reps,
        "rounds": rounds,
        "machine": machine(),
        "command_line": " ".join(shlex.quote(a) for a in [rel(sys.executable), *sys.argv]),
        "walks": {},
    }
    for name, cmd in commands.items():
        med = statistics.median(times[name])
        results["walks"][name] = {
            "command": " ".join(shlex.quote(a) for a in cmd),
            "seconds": [round(t, 4) for t in times[name]],
            "agent_cpu_us": [round(c / expected * 1e6, 3) for c in cpu[name]],
            "median_seconds": round(med, 4),
            "median_varbinds_per_s": round(expected / med),
            "agent_cpu_us_per_varbind": round(statistics.median(cpu[name]) / expected * 1e6, 2),
        }
    return results


def to_result(r: dict[str, Any]) -> BenchResult:
    """The suite's view of :func:`measure`'s results (no reference side, no target)."""
    figures: list[Figure] = []
    for name, w in r["walks"].items():
        figures.append(Figure(f"{name} walk time", "s", list(w["seconds"])))
        figures.append(Figure(f"{name} agent CPU per varbind", "us", list(w["agent_cpu_us"])))
    notes = [
        f"Synthetic table of {r['rows']:,} rows x 3 columns = {r['varbinds_per_walk']:,} "
        f"varbinds per walk, walked by snmpbulkwalk -Cr{r['max_repetitions']}; the agent runs "
        "in its own process. Infrastructure figure: no reference side, no target.",
    ]
    params = {k: r[k] for k in ("rows", "max_repetitions", "rounds")}
    return BenchResult("lab_agent", "Lab SNMP agent throughput", params, figures, notes,
                       {"walks": r["walks"]})


@register("lab_agent", "Lab SNMP agent served to snmpbulkwalk (v2c, v3 authPriv)")
def run(ctx: BenchContext) -> BenchResult:
    rows, rounds = (500, 1) if ctx.smoke else (20_000, ctx.rounds)
    return to_result(measure(rows, rounds, 25))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=25, help="snmpbulkwalk -Cr")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.rows))
        return
    results = measure(args.rows, args.rounds, args.reps)
    text = render_md(results)
    print(text)
    if not args.no_write:
        from bench.run import write_result

        RESULTS.mkdir(parents=True, exist_ok=True)
        write_result(to_result(results), RESULTS, results["command_line"])
        (RESULTS / "lab_agent.md").write_text(text)


def render_md(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Lab SNMP agent throughput",
        "",
        f"Table of {r['rows']:,} rows x {r['columns']} columns (MAC OCTET STRING(6), INTEGER,",
        f"Unsigned32) = {r['varbinds_per_walk']:,} varbinds per walk; {r['rounds']} alternating",
        "rounds per protocol; the agent runs in its own process on one core.",
        "",
        f"- Machine: {m['cpu_model']}, nproc={m['nproc']}, {m['memory_gib']} GiB, "
        f"Python {m['python']}",
        f"- {m['platform']}",
        f"- Client: {m['net_snmp']}",
        f"- Command: `{r['command_line']}`",
        "",
        "| walk | median s | median varbinds/s | agent CPU us/varbind | runs (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, w in r["walks"].items():
        runs = ", ".join(f"{t:.3f}" for t in w["seconds"])
        lines.append(
            f"| {name} | {w['median_seconds']:.3f} | {w['median_varbinds_per_s']:,} "
            f"| {w['agent_cpu_us_per_varbind']} | {runs} |"
        )
    lines += ["", "Client commands:", ""]
    lines += [f"- {name}: `{w['command']}`" for name, w in r["walks"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
