"""The operator docs match the commands: every ``enforcer`` / ``enforcer-lab`` command line
in install, operations and observability names a real (sub)command and only options it
has; every metric they name is exported; every repository file they name exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from enforcer.cli.main import app as enforcer_app
from lab.cli import app as lab_app
from tests.ops.conftest import ROOT, exported_names

DOCS = [ROOT / "docs" / n for n in ("install.md", "operations.md", "observability.md")]
CLIS = {"enforcer": typer.main.get_command(enforcer_app),
        "enforcer-lab": typer.main.get_command(lab_app)}


def _command_lines(doc: Path) -> list[str]:
    """Shell lines from fenced code blocks that run ``enforcer`` or ``enforcer-lab``."""
    out: list[str] = []
    in_block, pending = False, ""
    for raw in doc.read_text().splitlines():
        if raw.strip().startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            continue
        line = pending + raw.split(" #", 1)[0].rstrip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if re.search(r"(^|\s|/)enforcer(-lab)?\s", line + " "):
            out.append(line.strip())
    # and inline code spans such as `enforcer orders list --state enforced`
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    out += re.findall(r"`(enforcer(?:-lab)? [^`]+)`", text)
    return out


def _invocations(line: str) -> list[list[str]]:
    """Each command of the line (split at pipes and ``&&``) that runs one of our CLIs,
    after leading ``VAR=value``, ``sudo [-u USER] [--opt=...]`` and ``docker [compose]
    exec [-flags] NAME``."""
    found = []
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    for tok in lexer:
        if tok in {"|", "||", "&&", ";", "&"}:
            segments.append([])
        else:
            segments[-1].append(tok)
    for words in segments:
        while words:
            if "=" in words[0] and not words[0].startswith("-"):
                words = words[1:]
            elif words[0] == "sudo":
                words = words[1:]
                while words and words[0].startswith("-"):
                    words = words[2:] if words[0] == "-u" else words[1:]
            elif words[:2] == ["docker", "exec"] or words[:3] == ["docker", "compose", "exec"]:
                words = words[3:] if words[1] == "compose" else words[2:]
                while words and words[0].startswith("-"):
                    words = words[1:]
                words = words[1:]  # the container / service
            else:
                break
        if words and words[0].rsplit("/", 1)[-1] in CLIS:
            found.append([words[0].rsplit("/", 1)[-1], *words[1:]])
    return found


def _check(argv: list[str]) -> None:
    cmd: Any = CLIS[argv[0]]
    path = [argv[0]]
    args = argv[1:]
    while getattr(cmd, "commands", None) is not None and args and not args[0].startswith("-"):
        sub = cmd.commands.get(args[0])
        assert sub is not None, f"`{' '.join(path)} {args[0]}`: no such command"
        cmd, path, args = sub, [*path, args[0]], args[1:]
    assert getattr(cmd, "commands", None) is None, f"`{' '.join(path)}` needs a command"
    opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for a in args:
        if a.startswith("-") and a != "-":
            assert a.split("=", 1)[0] in opts, f"`{' '.join(path)}` has no option {a}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_commands_exist_with_their_options(doc: Path) -> None:
    invocations = [argv for line in _command_lines(doc) for argv in _invocations(line)]
    assert len(invocations) >= {"install.md": 8, "operations.md": 20,
                                "observability.md": 0}[doc.name], invocations
    for argv in invocations:
        _check(argv)


def test_the_checker_catches_a_wrong_command() -> None:
    with pytest.raises(AssertionError, match="no such command"):
        _check(["enforcer", "devices", "trust-me"])
    with pytest.raises(AssertionError, match="no option"):
        _check(["enforcer", "lift", "ord_1", "--force"])
    _check(["enforcer", "lift", "ord_1", "--reason", "x"])


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_metrics_are_exported(doc: Path) -> None:
    names = set(re.findall(r"\benforcer_[a-z0-9_]+", doc.read_text()))
    # histograms are documented by their base name
    known = exported_names() | {n.removesuffix("_bucket") for n in exported_names()}
    assert not names - known, f"{doc.name}: not exported: {names - known}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_repository_files_exist(doc: Path) -> None:
    paths = set(re.findall(r"`((?:deploy|examples|docs|tests|scripts|device_profiles)/"
                           r"[\w./-]+|Dockerfile|compose\.yaml)`", doc.read_text()))
    assert paths
    for p in paths:
        assert (ROOT / p).exists(), f"{doc.name} names {p}, which does not exist"
