"""The README's main command: ``scripts/demo.sh`` runs ``python -m lab.demo`` (after its
install steps). Run twice in one directory, as a user would: both runs end verified."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_to_verified_twice_in_one_directory(tmp_path: Path) -> None:
    env = {**os.environ, "ENFORCER_DEMO_DIR": str(tmp_path / "demo")}
    for run in (1, 2):
        p = subprocess.run([sys.executable, "-m", "lab.demo"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300, check=False)
        assert p.returncode == 0, f"run {run}: {p.stdout[-2000:]}{p.stderr[-2000:]}"
        assert "verified in" in p.stdout, p.stdout[-2000:]
