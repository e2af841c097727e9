"""The documentation stands alone: every relative link and every ``docs/...`` or ``lab/...``
path named in the READMEs, docs/*.md and code comments resolves inside the repository
(``#anchors`` to existing headings), the cited docs/docsis.md sections and
docs/architecture.md principles exist, and no file points outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "lab" / "README.md", ROOT / "bench" / "README.md",
        *sorted((ROOT / "docs").glob("*.md"))]
CODE_DIRS = ("enforcer", "lab", "tests", "bench", "scripts", "device_profiles", "deploy",
             "examples")
CODE_SUFFIXES = {".py", ".yaml", ".yml", ".sh", ".toml", ".md", ".service", ".j2"}
# Spelled in pieces so that this file does not contain what it looks for.
FORBIDDEN = ("docsis" + "-facts", "house" + "-style", "../" + "shared", "/" + "work/")

MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# docs/x.md, lab/y/z.py (not .lab/..., not mylab/...), optionally with #anchor
PATH_MENTION = re.compile(r"(?<![\w./-])((?:docs|lab)/[\w./-]*)(#[\w-]+)?")


def repo_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (what a commit would contain)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def code_files() -> list[Path]:
    return [p for p in repo_files()
            if p.relative_to(ROOT).parts[0] in CODE_DIRS and p.suffix in CODE_SUFFIXES]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", md.read_text(),
                                                 re.MULTILINE)}


def _check_target(source: Path, target: Path, anchor: str | None, where: str) -> str | None:
    try:
        target.resolve().relative_to(ROOT)
    except ValueError:
        return f"{where}: {target} is outside the repository"
    if not target.exists():
        return f"{where}: {target.relative_to(ROOT) if target.is_absolute() else target} " \
               "does not exist"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"{where}: no heading #{anchor} in {target.relative_to(ROOT)}"
    return None


def _mentions(path: Path) -> list[tuple[str, str | None, int]]:
    found = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        for m in PATH_MENTION.finditer(line):
            ref = m.group(1).rstrip(".,:;")
            if ref in ("docs/", "lab/", "docs", "lab"):
                continue
            found.append((ref, m.group(2)[1:] if m.group(2) else None, n))
    return found


def test_markdown_links_resolve() -> None:
    errors = []
    for md in DOCS:
        for n, line in enumerate(md.read_text().splitlines(), 1):
            for m in MD_LINK.finditer(line):
                link = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # http:, https:, mailto:
                    continue
                path, _, anchor = link.partition("#")
                target = (md.parent / path) if path else md
                err = _check_target(md, target, anchor or None,
                                    f"{md.relative_to(ROOT)}:{n}")
                if err:
                    errors.append(err)
    assert errors == []


@pytest.mark.parametrize("kind", ["docs", "code"])
def test_docs_and_lab_paths_named_resolve(kind: str) -> None:
    here = Path(__file__).resolve()  # its patterns are not references
    files = DOCS if kind == "docs" else [p for p in code_files() if p.resolve() != here]
    assert files
    errors = []
    for path in files:
        for ref, anchor, n in _mentions(path):
            err = _check_target(path, ROOT / ref, anchor, f"{path.relative_to(ROOT)}:{n}")
            if err:
                errors.append(err)
    assert errors == []


def _sections(md: Path) -> set[int]:
    return {int(m.group(1)) for m in re.finditer(r"^## (\d+)\. ", md.read_text(),
                                                 re.MULTILINE)}


def test_cited_docsis_sections_and_principles_exist() -> None:
    sections = _sections(ROOT / "docs" / "docsis.md")
    assert sections == set(range(1, 8))
    arch = (ROOT / "docs" / "architecture.md").read_text()
    principles = {int(p) for p in re.findall(r"^\d+\. \*\*P(\d+) ", arch, re.MULTILINE)}
    assert principles and principles == set(range(1, max(principles) + 1))
    assert re.search(r"^## Design principles$", arch, re.MULTILINE)
    cited_sections: set[int] = set()
    cited_principles: set[int] = set()
    for path in [*code_files(), *DOCS]:
        text = path.read_text(errors="replace")
        for a, b in re.findall(r"docs/docsis\.md sections? (\d+)(?:\s*-\s*(\d+))?", text):
            cited_sections |= set(range(int(a), int(b or a) + 1))
        cited_principles |= {int(p) for p in re.findall(r"docs/architecture\.md §P(\d+)", text)}
    assert cited_sections and cited_sections <= sections
    assert cited_principles and cited_principles <= principles
    # principles cited by name, not number: pushing gently and pinned host keys
    assert "Push gently" in arch and "host keys are pinned" in arch


def test_no_file_points_outside_the_repository() -> None:
    offenders = []
    for path in repo_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue  # binary files
        for needle in FORBIDDEN:
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_the_checker_refuses_what_it_should() -> None:
    md = ROOT / "docs" / "docsis.md"
    assert slug("3. Vendor CLI over SSH") == "3-vendor-cli-over-ssh"
    assert _check_target(md, md, "3-vendor-cli-over-ssh", "x") is None
    assert "no heading #no-such-heading" in str(_check_target(md, md, "no-such-heading", "x"))
    assert "does not exist" in str(_check_target(md, ROOT / "docs" / "nope.md", None, "x"))
    assert "outside the repository" in str(_check_target(md, ROOT.parent, None, "x"))
    assert [r for r, _a, _n in _mentions(md)]  # docsis.md names repository paths
