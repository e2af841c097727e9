"""Run every registered benchmark: ``python -m bench.run [--smoke] [--only NAME] [--out DIR]``.

Prints a table, writes ``<out>/<name>.json`` per benchmark and ``<out>/SUMMARY.md`` (machine,
command line, medians, ratios, pass/fail per target) over every result in ``<out>``.
``--smoke`` runs tiny sizes for one round (CI keeps the benchmarks working with it); its
targets are not judged. Default ``--out``: bench/results (bench/results/smoke with --smoke).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine, rel
from bench.registry import BenchContext, BenchResult, load_all

RESULTS = ROOT / "bench" / "results"


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"


def _verdict(passed: bool | None, smoke: bool) -> str:
    if passed is None:
        return "-"
    if smoke:
        return "n/a (smoke)"
    return "pass" if passed else "FAIL"


def write_result(res: BenchResult, out: Path, command_line: str, *, smoke: bool = False,
                 seconds: float | None = None) -> Path:
    data: dict[str, Any] = {
        "name": res.name, "title": res.title, "smoke": smoke,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command_line": command_line, "machine": machine(), "params": res.params,
        "run_seconds": seconds, "figures": [f.as_dict() for f in res.figures],
        "notes": res.notes, "details": res.details,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{res.name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def render_summary(out: Path) -> str:
    """SUMMARY.md over every ``<name>.json`` in ``out`` that a registered benchmark wrote."""
    names = list(load_all())
    results = [json.loads((out / f"{n}.json").read_text()) for n in names
               if (out / f"{n}.json").exists()]
    lines = ["# Benchmark summary", ""]
    if results:
        m = results[0]["machine"]
        speed = (f", pure-Python loop of 5M additions {m['python_loop_5M_s']} s"
                 if "python_loop_5M_s" in m else "")
        lines += [f"- Machine: {m['cpu_model']}, nproc={m['nproc']}, {m['memory_gib']} GiB RAM"
                  f"{speed}",
                  f"- {m['platform']}; Python {m['python']}; {m['net_snmp']}", ""]
    lines += ["| benchmark | figure | ours (median) | reference (median) | ratio | target "
              "| result |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        for f in r["figures"]:
            lines.append(
                f"| {r['name']} | {f['name']} | {_fmt(f['median'])} {f['unit']} "
                f"| {_fmt(f['reference_median'])} | {_fmt(f['ratio'])} | {f['target'] or '-'} "
                f"| {_verdict(f['passed'], r['smoke'])} |")
    for r in results:
        lines += ["", f"## {r['name']}: {r['title']}", "",
                  f"- Command: `{r['command_line']}` (finished {r['finished']})"]
        if r["machine"] != results[0]["machine"]:
            lines.append(f"- Machine: {r['machine']}")
        lines += [f"- {n}" for n in r["notes"]]
        for f in r["figures"]:
            ref = f"; reference ({f['reference']}): " + ", ".join(
                f"{x:.4g}" for x in f["reference_samples"]) if f["reference_samples"] else ""
            lines.append(f"- {f['name']} ({f['unit']}) runs: "
                         + ", ".join(f"{x:.4g}" for x in f["samples"]) + ref)
    return "\n".join(lines) + "\n"


def print_table(results: list[BenchResult], smoke: bool) -> None:
    rows = [("benchmark", "figure", "ours", "reference", "ratio", "target", "result")]
    for res in results:
        for f in res.figures:
            rows.append((res.name, f.name, f"{_fmt(f.value)} {f.unit}",
                         _fmt(f.reference_value), _fmt(f.ratio), f.target or "-",
                         _verdict(f.passed(), smoke)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only NAME")
    parser.add_argument("--out", type=Path, help="results directory")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side (full run)")
    args = parser.parse_args(argv)
    registry = load_all()
    names = args.only or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(registry)}")
    out: Path = args.out or (RESULTS / "smoke" if args.smoke else RESULTS)
    rounds = 1 if args.smoke else max(1, min(args.rounds, 50))
    command = " ".join(shlex.quote(a) for a in [rel(sys.executable), "-m", "bench.run",
                                                *(argv if argv is not None else sys.argv[1:])])
    done: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        for name in names:
            print(f"== {name}: {registry[name].title}", flush=True)
            t0 = time.monotonic()
            res = registry[name].run(BenchContext(args.smoke, rounds, Path(work) / name))
            write_result(res, out, command, smoke=args.smoke,
                         seconds=round(time.monotonic() - t0, 1))
            done.append(res)
    print_table(done, args.smoke)
    (out / "SUMMARY.md").write_text(render_summary(out))
    print(f"results: {out}")
    failed = [f for r in done for f in r.figures if f.passed() is False]
    return 1 if failed and not args.smoke else 0


if __name__ == "__main__":
    raise SystemExit(main())
