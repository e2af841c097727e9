"""Mutation testing driver (run it through scripts/mutation.sh).

For each module named in scripts/mutation.toml (or the one given), mutmut 3 runs in a
scratch copy of the work tree (``.mutation/<module>/``, git-ignored) whose
``[tool.mutmut]`` mutates only that module and selects only the module's fast tests, so
modules never share mutmut state. The result is written to
``bench/results/mutation/<module>.json`` (counts, score, date, commit, every surviving
mutant's diff) and ``bench/results/mutation.md`` is re-rendered over every result.

Score = (killed + timeout) / (mutants - skipped - not checked): a mutant that makes the
tests hang is caught; one no test reaches ("no tests") counts as surviving; mutants not
checked (a run stopped part way, recorded with --collect) are reported, not scored.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "scripts" / "mutation.toml"
RESULTS = ROOT / "bench" / "results" / "mutation"
TABLE = ROOT / "bench" / "results" / "mutation.md"
SCRATCH = ROOT / ".mutation"
ALSO_COPY = ["lab", "device_profiles", "examples", "docs", "deploy", "bench", "README.md"]
_STATUS = re.compile(r"^\s+(\S+): (.+)$")


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def targets() -> dict[str, list[str]]:
    """module -> pytest arguments: its test files, then its extra ``args``."""
    data = tomllib.loads(MAP.read_text())
    return {module: [*entry["tests"], *entry.get("args", [])]
            for module, entry in data.items()}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def mutmut_config(module: str, tests: list[str]) -> str:
    def arr(xs: list[str]) -> str:
        return "[" + ", ".join(json.dumps(x) for x in xs) + "]"

    files = [t for t in tests if t.startswith("tests/")]
    extra = [t for t in tests if not t.startswith("tests/")]

    return ("\n[tool.mutmut]\n"
            'source_paths = ["enforcer/"]\n'
            f"only_mutate = {arr([module])}\n"
            f"also_copy = {arr(ALSO_COPY)}\n"
            f"pytest_add_cli_args_test_selection = {arr(files)}\n"
            f"pytest_add_cli_args = {arr(['-p', 'no:cacheprovider', '-q', *extra])}\n")


def prepare(module: str, tests: list[str]) -> Path:
    """A fresh scratch copy of the work tree (tracked and untracked, not ignored files)."""
    work = SCRATCH / slug(module)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    files = git("ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not name.startswith(("mutants/", ".mutation/")):
            dst = work / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    head = git("rev-parse", "--short=12", "HEAD").strip()
    dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    (work / "COMMIT").write_text(head + ("-dirty" if dirty else "") + "\n")
    pyproject = (work / "pyproject.toml").read_text()
    pyproject = re.sub(r"\n\[tool\.mutmut\]\n(?:(?!\n\[).)*", "", pyproject, flags=re.S)
    (work / "pyproject.toml").write_text(pyproject + mutmut_config(module, tests))
    return work


def run(module: str, tests: list[str], children: int, *, again: bool = False,
        collect_only: bool = False) -> dict[str, Any]:
    """Mutate ``module`` and run its tests against every mutant; with ``again``, reuse
    the module's scratch copy, refresh its tests from the work tree and run only the
    mutants that were not killed (after tests were added) or not yet checked (a run
    that was stopped part way)."""
    work = SCRATCH / slug(module)
    mutmut = str(Path(sys.executable).parent / "mutmut")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    names: list[str] = []
    if collect_only:
        return collect(module, tests, mutmut, work, env)
    if again and (work / "mutants").is_dir():
        # the survivors (tests were added since) and what a stopped run did not check
        names = [n for n, st in statuses(mutmut, work, env).items()
                 if st in ("survived", "no tests", "suspicious", "not checked")]
        for dst in (work / "tests", work / "mutants" / "tests"):
            shutil.copytree(ROOT / "tests", dst, dirs_exist_ok=True)
        if not names:
            return collect(module, tests, mutmut, work, env, again)
    else:
        work = prepare(module, tests)
    print(f"== {module}: mutmut in {work.relative_to(ROOT)} against {' '.join(tests)}"
          + (f" ({len(names)} mutants again)" if names else ""), flush=True)
    log = work / "mutmut-run.log"
    with log.open("a" if names else "w") as out:
        done = subprocess.run([mutmut, "run", "--max-children", str(children), *names],
                              cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                              check=False)
    if done.returncode != 0:
        sys.exit(f"mutmut run failed ({done.returncode}); see {log}")
    return collect(module, tests, mutmut, work, env, bool(names))


def statuses(mutmut: str, work: Path, env: dict[str, str]) -> dict[str, str]:
    listing = subprocess.run([mutmut, "results", "--all", "true"], cwd=work, env=env,
                             capture_output=True, text=True, check=True).stdout
    status: dict[str, str] = {}
    for line in listing.splitlines():
        m = _STATUS.match(line)
        if m:
            status[m.group(1)] = m.group(2)
    return status


def collect(module: str, tests: list[str], mutmut: str, work: Path, env: dict[str, str],
            again: bool = False) -> dict[str, Any]:
    status = statuses(mutmut, work, env)
    if not status:
        sys.exit(f"mutmut produced no mutants for {module}; see {work / 'mutmut-run.log'}")
    count = {k: sum(1 for s in status.values() if s == k) for k in
             ("killed", "survived", "timeout", "no tests", "skipped", "suspicious",
              "segfault", "not checked", "caught by type check")}
    survivors = []
    for name, st in sorted(status.items()):
        if st in ("survived", "no tests", "suspicious"):
            diff = subprocess.run([mutmut, "show", name], cwd=work, env=env,
                                  capture_output=True, text=True, check=False).stdout
            survivors.append({"mutant": name, "status": st, "diff": diff.strip()})
    caught = count["killed"] + count["timeout"] + count["caught by type check"]
    # An interrupted run (--collect after stopping it): judged on the mutants checked.
    judged = len(status) - count["skipped"] - count["not checked"]
    # the commit the scratch copy was made from (tests refreshed by --again: the current)
    copied = (work / "COMMIT").read_text().strip() if (work / "COMMIT").exists() else "?"
    if again:
        head = git("rev-parse", "--short=12", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
        copied = f"{copied}, tests of {head}{'-dirty' if dirty else ''}"
    return {
        "module": module, "tests": tests, "mutants": len(status),
        "killed": count["killed"], "survived": count["survived"],
        "timeout": count["timeout"], "no_tests": count["no tests"],
        "suspicious": count["suspicious"], "skipped": count["skipped"],
        "segfault": count["segfault"], "not_checked": count["not checked"],
        "score": round(100 * caught / judged, 1) if judged else 0.0,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": copied,
        "command": f"scripts/mutation.sh {'--again ' if again else ''}{module}",
        "mutmut": subprocess.run([mutmut, "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip(),
        "survivors": survivors,
    }


def render() -> None:
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        part = f" ({r['not_checked']} not checked)" if r.get("not_checked") else ""
        rows.append(f"| `{r['module']}`{part} | {r['mutants']} | {r['killed']} | {r['survived']} "
                    f"| {r['no_tests']} | {r['timeout']} | {r['score']}% | {r['date'][:10]} "
                    f"| `{r['commit']}` |")
    TABLE.write_text(
        "# Mutation testing\n\n"
        "`scripts/mutation.sh [MODULE]` (mutmut 3, each module against the fast tests "
        "`scripts/mutation.toml` names). Score = (killed + timeout) / (mutants - skipped). "
        "Each surviving mutant is classified in `bench/results/mutation-survivors.md`; "
        "the raw diffs are in `mutation/<module>.json`.\n\n"
        "| module | mutants | killed | survived | no tests | timeout | score | date | commit |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="enforcer/... .py (default: every module "
                    "in scripts/mutation.toml)")
    ap.add_argument("--max-children", type=int, default=1)
    ap.add_argument("--list", action="store_true", help="print the module -> tests map")
    ap.add_argument("--collect", action="store_true", help="only record the results in the "
                    "module's scratch copy (e.g. of a run that was stopped part way)")
    ap.add_argument("--again", action="store_true", help="re-run only the mutants the last "
                    "run left alive, against the work tree's current tests")
    args = ap.parse_args()
    table = targets()
    if args.list:
        for module, tests in table.items():
            print(f"{module}: {' '.join(tests)}")
        return
    unknown = [m for m in args.modules if m not in table]
    if unknown:
        sys.exit(f"not in scripts/mutation.toml: {', '.join(unknown)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for module in args.modules or list(table):
        result = run(module, table[module], args.max_children, again=args.again,
                     collect_only=args.collect)
        (RESULTS / f"{slug(module)}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"   {result['mutants']} mutants, {result['killed']} killed, "
              f"{result['survived']} survived, {result['no_tests']} without tests, "
              f"{result['timeout']} timeout: score {result['score']}%", flush=True)
        render()


if __name__ == "__main__":
    main()
