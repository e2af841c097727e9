"""The benchmark suite's smoke mode keeps every benchmark working (tiny sizes, 1 round)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("snmpbulkwalk") is None, reason="net-snmp not installed")
def test_bench_suite_smoke(tmp_path: Path) -> None:
    # The timeout only catches a hang (tests judge behaviour, not speed).
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    from bench.registry import load_all

    names = set(load_all())
    assert {"lab_agent", "sweep_cmts", "sweep_footprint"} <= names
    for name in names:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["smoke"] is True and data["figures"], name
        assert data["machine"]["nproc"] >= 1 and "bench.run --smoke" in data["command_line"]
        assert data["machine"]["python_loop_5M_s"] > 0
        for fig in data["figures"]:
            assert fig["samples"] and all(x >= 0 for x in fig["samples"]), (name, fig)
    summary = (tmp_path / "SUMMARY.md").read_text()
    assert "sweep_footprint" in summary and "n/a (smoke)" in summary
    assert "identical on both sides (OIDs, values): True" in summary
    for line in proc.stdout.splitlines():  # lab secrets never reach the output
        assert "-A " not in line and "-X " not in line
