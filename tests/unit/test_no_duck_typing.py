"""Optional driver and engine capabilities are named Protocols (found with isinstance,
checked by mypy), never ``hasattr``/``getattr``: a renamed method must break the type
check, not silently switch a feature off."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "enforcer"
SCANNED = [ROOT / "engine", ROOT / "api", ROOT / "drivers", ROOT / "daemon.py"]
DUCK = re.compile(r"\b(hasattr|getattr)\s*\(")

#: (file relative to enforcer/, the call's text) -> why it is not about a driver or
#: the engine.
ALLOWED = {
    ("api/app.py", 'getattr(request.state, "actor", None)'):
        "Starlette's per-request State: the actor is set only once authenticated",
    ("api/app.py", 'getattr(scope.get("route"), "path", "unmatched")'):
        "Starlette's matched route (absent for an unmatched path), for a metric label",
    ("api/context.py", 'getattr(request.scope.get("route"), "path", "unmatched")'):
        "Starlette's matched route (absent for an unmatched path), for a metric label",
}


def _uses() -> list[tuple[str, int, str]]:
    files: list[Path] = []
    for p in SCANNED:
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    out = []
    for f in files:
        for no, line in enumerate(f.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if DUCK.search(code):
                out.append((str(f.relative_to(ROOT)), no, code.strip()))
    return out


def test_no_hasattr_or_getattr_on_drivers_or_the_engine() -> None:
    found = _uses()
    unexplained = [(f, no, code) for f, no, code in found
                   if not any(f == af and text in code for af, text in ALLOWED)]
    assert unexplained == [], "use a capability Protocol (enforcer.drivers.base) or the " \
        f"EngineAPI Protocol (enforcer.engine.contract) instead: {unexplained}"


def test_every_allowance_is_still_needed() -> None:
    found = _uses()
    stale = [a for a in ALLOWED if not any(f == a[0] and a[1] in code for f, _, code in found)]
    assert stale == []


def test_the_scan_sees_a_duck_typed_call() -> None:
    assert DUCK.search('x = await drv.ecm_mac(m) if hasattr(drv, "ecm_mac") else None')
    assert DUCK.search("getattr (drv, 'profile')")
    assert not DUCK.search("drv.getattribute_like()")
