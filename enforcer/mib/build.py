"""Compile ``mibs/`` into ``enforcer/mib/index.json`` with pysmi (a development tool:
pysmi is a dev dependency; the enforcer itself only reads the JSON).

pysmi (and net-snmp) need the SNMPv2 base modules (SNMPv2-SMI, -TC, -CONF, -MIB and
RFC1213-MIB) that every module imports from. They are not part of this repository:
:func:`base_mib_dir` finds a directory holding them (net-snmp's MIB directories, or the
copies Debian's erlang-snmp package ships), or ``ENFORCER_BASE_MIBS`` names one.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from enforcer.errors import MibError

REPO = Path(__file__).resolve().parents[2]
MIBS_DIR = REPO / "mibs"
INDEX_PATH = Path(__file__).with_name("index.json")
BASE_MODULES = ("SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF", "SNMPv2-MIB", "RFC1213-MIB")
#: Objects of the base modules the code names (the system group); the rest of a base
#: module is not indexed.
BASE_OBJECTS = {"SNMPv2-MIB": ("system", "sysDescr", "sysObjectID", "sysUpTime", "sysName")}
_CANDIDATES = ("/usr/share/snmp/mibs", "/usr/share/snmp/mibs/ietf", "/usr/share/mibs/ietf",
               "/usr/lib/erlang/lib/snmp-*/mibs")
_EXTS = ("", ".txt", ".mib", ".my")


def _has(directory: Path, module: str) -> bool:
    return any((directory / (module + ext)).is_file() for ext in _EXTS)


def base_mib_dir() -> Path:
    """A directory holding every base module (MibError naming what to install if none)."""
    env = os.environ.get("ENFORCER_BASE_MIBS")
    candidates = [env] if env else [d for pat in _CANDIDATES for d in sorted(glob.glob(pat))]
    for d in candidates:
        if all(_has(Path(d), m) for m in BASE_MODULES):
            return Path(d)
    raise MibError("no directory holds the SNMPv2 base MIB modules "
                   f"({', '.join(BASE_MODULES)}); install Debian's erlang-snmp (or "
                   "snmp-mibs-downloader), or set ENFORCER_BASE_MIBS to such a directory")


def module_files(mibs_dir: Path = MIBS_DIR) -> dict[str, Path]:
    """Module name -> source file, for every module in ``mibs_dir``."""
    out: dict[str, Path] = {}
    for p in sorted(mibs_dir.glob("*.txt")):
        first = p.read_text().split(None, 1)[0]
        if first != p.stem:
            raise MibError(f"{p}: the file must be named after its module ({first})")
        out[first] = p
    return out


def _compile(modules: list[str], sources: list[Path]) -> dict[str, dict[str, Any]]:
    from pysmi.codegen import JsonCodeGen
    from pysmi.compiler import MibCompiler
    from pysmi.parser import SmiStarParser
    from pysmi.reader import FileReader
    from pysmi.searcher import StubSearcher
    from pysmi.writer import CallbackWriter

    out: dict[str, dict[str, Any]] = {}

    def keep(name: str, text: str, ctx: Any) -> None:
        out[name] = json.loads(text)

    compiler = MibCompiler(SmiStarParser(), JsonCodeGen(), CallbackWriter(keep))
    compiler.add_sources(*(FileReader(str(s)) for s in sources))
    wanted = set(modules)
    compiler.add_searchers(StubSearcher(*[m for m in JsonCodeGen.baseMibs if m not in wanted]))
    # Base modules pull in others (e.g. IF-MIB) that are not needed for symbols; each
    # module asked for must still compile, which is checked below.
    status = compiler.compile(*modules, rebuild=True, genTexts=False, ignoreErrors=True)
    bad = {m: f"{status.get(m)}: {getattr(status.get(m), 'error', '')}" for m in modules
           if str(status.get(m)) != "compiled" or m not in out}
    if bad:
        raise MibError("pysmi could not compile: " + "; ".join(f"{m} ({why})"
                                                                 for m, why in bad.items()))
    return out


def _syntax(sym: dict[str, Any], tcs: dict[str, dict[str, Any]]) -> tuple[str, dict[str, int]]:
    syn = sym.get("syntax") or {}
    typ = syn.get("type", "")
    enums = dict(syn.get("constraints", {}).get("enumeration", {}))
    tc = tcs.get(typ)
    if tc is not None:
        base = tc["type"]
        typ = base.get("type", typ)
        enums = enums or dict(base.get("constraints", {}).get("enumeration", {}))
    if typ in ("MacAddress", "DisplayString", "DateAndTime", "OctetString"):
        typ = "OCTET STRING"
    return typ, enums


def build(mibs_dir: Path = MIBS_DIR, base_dir: Path | None = None) -> dict[str, Any]:
    """The index as a JSON-ready dict (deterministic: same sources, same output)."""
    import pysmi

    files = module_files(mibs_dir)
    base = base_dir or base_mib_dir()
    extra = ["SNMPv2-TC", *BASE_OBJECTS]
    compiled = _compile([*files, *extra], [mibs_dir, base])
    tcs: dict[str, dict[str, Any]] = {}
    for mod in compiled.values():
        for name, sym in mod.items():
            if isinstance(sym, dict) and sym.get("class") == "textualconvention":
                tcs[name] = sym
    objects: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    for module in [*files, *BASE_OBJECTS]:
        only = BASE_OBJECTS.get(module)
        for name, sym in sorted(compiled[module].items()):
            if not isinstance(sym, dict) or "oid" not in sym or (only and name not in only):
                continue
            if sym["oid"] in seen:
                raise MibError(f"{module}::{name} and {seen[sym['oid']]} share {sym['oid']}")
            if name in objects:
                raise MibError(f"{name} is defined in {objects[name]['module']} and {module}")
            seen[sym["oid"]] = f"{module}::{name}"
            entry: dict[str, Any] = {"module": module, "oid": sym["oid"]}
            if sym.get("class") == "objecttype":
                entry["nodetype"] = sym.get("nodetype", "node")
                typ, enums = _syntax(sym, tcs)
                if typ:
                    entry["syntax"] = typ
                entry["access"] = sym.get("maxaccess", "")
                if enums:
                    entry["enums"] = dict(sorted(enums.items(), key=lambda kv: kv[1]))
            else:
                entry["nodetype"] = "node"
            objects[name] = entry
    return {
        "generated": (f"by `python -m enforcer.mib build` with pysmi {pysmi.__version__} "
                      "from mibs/; do not edit (a test rebuilds it and compares)"),
        "modules": {m: {"file": f"mibs/{p.name}",
                        "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                    for m, p in files.items()},
        "base_objects": {m: list(names) for m, names in BASE_OBJECTS.items()},
        "objects": dict(sorted(objects.items(), key=lambda kv: tuple(
            int(x) for x in kv[1]["oid"].split(".")))),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1) + "\n"
