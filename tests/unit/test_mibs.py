"""mibs/ is the one source of OIDs: the compiled index matches it (rebuilt with pysmi),
every module loads in net-snmp with the OIDs the index gives, every object the code names
resolves, and no DOCSIS or vendor object's number is written anywhere else."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from enforcer import mib
from enforcer.errors import MibError, ProfileError
from enforcer.inventory.profiles import load_profile, load_profiles
from enforcer.mib.build import INDEX_PATH, base_mib_dir, build, module_files, render
from lab.model import states

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
INDEX = mib.index()

# Numeric prefixes of the DOCSIS and vendor objects in mibs/ (and of the lab's vendor-like
# sysObjectIDs): DOCS-IF (transmission 127), DOCS-IETF-BPI2 (mib-2 126), CableLabs 4491,
# Cisco 9, ARRIS 4115, CADANT 4998, Casa 20858.
_PREFIXES = ["1.3.6.1.2.1.10.127", "1.3.6.1.2.1.126", "1.3.6.1.4.1.4491", "1.3.6.1.4.1.9",
             "1.3.6.1.4.1.4115", "1.3.6.1.4.1.4998", "1.3.6.1.4.1.20858"]
NUMERIC = re.compile("|".join(
    [rf"(?<![\d.]){re.escape(p)}(?![\d])" for p in _PREFIXES]
    + [rf"(?<!\d)\({p.replace('.', ', ')},(?= )" for p in _PREFIXES]))
#: The SNMP codec tests encode and decode OIDs of their own; these lines keep theirs
#: (file, the exact text of the line, stripped).
ALLOWED = {
    ("tests/snmpwire/test_ber.py",
     "(Tag.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 4491, 2, 1, 20)),"),
    ("tests/snmpwire/test_fuzz.py", "(1, 3, 6, 1, 4, 1, 9, 1, 1),"),
    ("tests/snmpwire/test_fuzz.py",
     '((1, 3, 6, 1, 4, 1, 9, 1, 1, 2, 3), Tag.OCTET_STRING, b"\\x00" * 6),'),
    ("tests/snmpwire/test_fuzz.py", "((1, 3, 6, 1, 4, 1, 9, 1, 1, 3, 30), Tag.INTEGER, 4),"),
    ("tests/snmpwire/test_fuzz.py",
     "((1, 3, 6, 1, 4, 1, 9, 1, 1, 4, 1), Tag.COUNTER64, 2**64 - 1),"),
    ("tests/transport/test_fastsnmp_support.py",
     "9: (Syntax.OBJECT_IDENTIFIER, lambda i: (1, 3, 6, 1, 4, 1, 4491, i[0])),"),
}
SCANNED = ("enforcer", "lab", "device_profiles", "tests", "bench", "scripts")
#: Recorded benchmark output quotes the commands that were run, as they were run.
NOT_SCANNED = ("bench/results/",)


def test_numeric_prefix_pattern_finds_both_spellings() -> None:
    assert NUMERIC.search('column: "1.3.6.1.4.1.4491.2.1.20.1.3.1.6"')
    assert NUMERIC.search("X = (1, 3, 6, 1, 4, 1, 9, 9, 116)")
    assert NUMERIC.search("walk 1.3.6.1.2.1.10.127")
    assert not NUMERIC.search("ENT = (1, 3, 6, 1, 4, 1, 99999)")
    assert not NUMERIC.search("1.3.6.1.4.1.99999.7.7 and 1.3.6.1.2.1.1.1.0")


def test_no_docsis_or_vendor_oid_is_written_outside_mibs() -> None:
    found = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*")):
            # this file holds the patterns themselves
            if not path.is_file() or path in (INDEX_PATH, HERE) or "__pycache__" in path.parts \
                    or path.suffix not in {".py", ".yaml", ".yml", ".md", ".json", ".txt"}:
                continue
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith(NOT_SCANNED):
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if NUMERIC.search(line) and (rel, line.strip()) not in ALLOWED:
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "name these objects (mibs/, enforcer.mib) instead:\n" + "\n".join(found)


def test_the_allowlist_is_narrow() -> None:
    """Every allowed line still exists (a stale entry would allow nothing but hide intent)."""
    for rel, text in ALLOWED:
        assert text in [x.strip() for x in (REPO / rel).read_text().splitlines()], rel


_NAMED = re.compile(r"""\b(?:oid|dotted|col|obj)\(\s*["']([A-Za-z][A-Za-z0-9]*)["']\s*\)""")


def test_every_object_named_in_code_resolves() -> None:
    names: set[str] = set()
    for top in ("enforcer", "lab", "tests", "bench"):
        for path in (REPO / top).rglob("*.py"):
            if path != HERE:  # this file names a misspelt object on purpose
                names |= set(_NAMED.findall(path.read_text()))
    assert len(names) > 40
    missing = sorted(n for n in names if n not in INDEX)
    assert not missing


def test_every_profile_resolves_and_its_states_are_the_mib_enumerations() -> None:
    profiles = load_profiles(REPO / "device_profiles")
    checked = 0
    for p in profiles.values():
        for s in p.observe.snmp.sources if p.observe.snmp else []:
            hit = INDEX.name_of(tuple(int(x) for x in s.column.split(".")))
            assert hit is not None and hit[1] == (), s.column
            assert hit[0].name == s.name
            for number, st in s.states.items():
                assert hit[0].enums[st.name] == number
                checked += 1
    assert checked > 40


def test_lab_state_enumerations_match_the_mibs() -> None:
    def norm(text: str) -> str:
        return text.replace("_", "").lower()

    for enum, name in [(states.DocsIfStatus, "docsIfCmtsCmStatusValue"),
                       (states.CmtsRegState, "docsIf3CmtsCmRegStatusValue"),
                       (states.CdxStatus, "cdxCmtsCmStatusValue"),
                       (states.CadStatus, "cadIfCmtsCmStatusValue"),
                       (states.BpiCertValid, "docsBpi2CmtsAuthBpkmCmCertValid")]:
        enums = {norm(k): v for k, v in INDEX[name].enums.items()}
        for member in enum:
            assert enums.get(norm(member.name)) == member.value, (name, member)


def test_resolver_names_and_errors() -> None:
    assert mib.resolve("docsIf3CmtsCmCtrlCmdCommit.0").endswith(".27.5.0")
    assert mib.resolve("cdxCmCpeResetNow.{mac_index}").endswith(".{mac_index}")
    assert INDEX.symbolic((*mib.oid("docsIf3CmtsCmRegStatusValue"), 7)) == \
        "docsIf3CmtsCmRegStatusValue.7"
    assert mib.obj("docsIf3CmtsCmCtrlCmdCommit").value("disableForwarding") == 3
    assert mib.obj("cadCmDenyRowStatus").value("destroy") == 6
    with pytest.raises(MibError, match=r"did you mean docsIf3CmtsCmRegStatusValue"):
        mib.oid("docsIf3CmtsCmRegStatusvalue")
    with pytest.raises(MibError, match="not an object name"):
        mib.resolve("docsIf3CmtsCmCtrlCmdCommit.x")
    with pytest.raises(MibError, match="no value 'bogus'"):
        mib.obj("docsIf3CmtsCmCtrlCmdCommit").value("bogus")


def test_index_is_what_pysmi_makes_of_mibs() -> None:
    """The committed index is generated: a fresh pysmi build of mibs/ is identical."""
    assert INDEX.generated.startswith("by `python -m enforcer.mib build`")
    assert render(build()) == INDEX_PATH.read_text(), \
        "enforcer/mib/index.json is stale: run python -m enforcer.mib build"
    assert sorted(INDEX.modules) == sorted(module_files())


def test_every_module_loads_in_net_snmp_with_the_index_oids() -> None:
    snmptranslate = shutil.which("snmptranslate")
    assert snmptranslate, "net-snmp's snmptranslate is needed (Debian: snmp)"
    objs = [o for o in INDEX.objects.values() if o.module in INDEX.modules]
    search = f"+{REPO / 'mibs'}:{base_mib_dir()}"
    r = subprocess.run([snmptranslate, "-M", search, "-m", "ALL", "-On",
                        *(f"{o.module}::{o.name}" for o in objs)],
                       capture_output=True, text=True, timeout=60)
    ours = [line for line in r.stderr.splitlines()
            if not line.startswith("MIB search path")
            and (str(REPO / "mibs") in line or any(m in line for m in INDEX.modules))]
    assert not ours, "\n".join(ours)
    got = [line for line in r.stdout.splitlines() if line]
    assert got == ["." + o.dotted for o in objs]
    # and by name alone, the way an operator types it
    r = subprocess.run([snmptranslate, "-M", search, "-m", "ALL", "-IR", "-On",
                        "docsIf3CmtsCmRegStatusValue"], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() == "." + mib.dotted("docsIf3CmtsCmRegStatusValue")


MODULE = """\
- name: shared-block
  transport: snmp
  persistence: registration
  kick_after_apply: false
  apply:
    snmp:
      - - {oid: "docsIf3CmtsCmCtrlCmdMacAddr.0", type: hex, value: "{mac_hex}"}
        - {oid: "docsIf3CmtsCmCtrlCmdCommit.0", type: integer, value: "3"}
  remove:
    snmp:
      - - {oid: "docsIf3CmtsCmCtrlCmdCommit.0", type: integer, value: "3"}
  read_back:
    snmp:
      - {oid: "docsIf3CmtsCmRegStatusValue.{mac_index}", values: [17]}
"""
PROFILE = """\
platform: test-cmts
kind: cmts
transports:
  snmp: {timeout_s: 1}
mechanisms:
  - {include: shared}
observe:
  snmp:
    sources:
      - name: docsIf3CmtsCmRegStatusValue
        column: docsIf3CmtsCmRegStatusValue
        index: {by: walk, mac_column: docsIf3CmtsCmRegStatusMacAddr}
        states:
          8: {name: operational, verdict: forwarding}
"""


def _write(tmp: Path, profile: str, module: str = MODULE) -> Path:
    (tmp / "modules").mkdir(exist_ok=True)
    (tmp / "modules" / "shared.yaml").write_text(module)
    path = tmp / "test-cmts.yaml"
    path.write_text(profile)
    return path


def test_an_included_module_is_spliced_and_resolved(tmp_path: Path) -> None:
    p = load_profile(_write(tmp_path, PROFILE))
    m = p.mechanism("shared-block")
    assert m.apply.snmp is not None
    assert m.apply.snmp[0][0].oid == mib.dotted("docsIf3CmtsCmCtrlCmdMacAddr") + ".0"
    assert m.read_back.snmp and m.read_back.snmp[0].oid == \
        mib.dotted("docsIf3CmtsCmRegStatusValue") + ".{mac_index}"


def test_a_misspelt_name_is_a_profile_error_in_the_file_that_has_it(tmp_path: Path) -> None:
    path = _write(tmp_path, PROFILE, MODULE.replace("CmdCommit.0", "CmdComit.0", 1))
    with pytest.raises(ProfileError, match=r"modules/shared\.yaml:8: .*unknown MIB object "
                       r"'docsIf3CmtsCmCtrlCmdComit'"):
        load_profile(path)
    path = _write(tmp_path, PROFILE.replace("column: docsIf3CmtsCmRegStatusValue",
                                            "column: docsIf3CmtsCmRegStatus"))
    with pytest.raises(ProfileError, match=r"test-cmts\.yaml:11: .*unknown MIB object"):
        load_profile(path)


def test_an_unknown_include_or_a_wrong_state_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"test-cmts\.yaml:6: include: no module 'nope'"):
        load_profile(_write(tmp_path, PROFILE.replace("include: shared", "include: nope")))
    with pytest.raises(ProfileError, match=r"value 8 is operational, not 'online'"):
        load_profile(_write(tmp_path, PROFILE.replace("name: operational", "name: online")))
    with pytest.raises(ProfileError, match=r"a list of items"):
        load_profile(_write(tmp_path, PROFILE, "name: not-a-list\n"))


def test_a_self_including_module_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="nested too deep"):
        load_profile(_write(tmp_path, PROFILE, "- {include: shared}\n"))
