"""Device profiles: what a platform speaks and how each enforcement mechanism is done,
as data (docs/architecture.md §P2). One YAML file per platform in ``device_profiles/``; the format
is described in docs/profiles.md.

Templates use ``{name}`` placeholders (identifier syntax only, so regex quantifiers
such as ``{4}`` stay literal): ``{mac}`` (the profile's ``mac_format``), ``{mac_hex}``
(12 hex digits, for OCTET STRING values), ``{mac_index}`` (six decimal sub-ids,
docs/docsis.md section 1), ``{ifindex}`` (MAC-domain ifIndex), and in a mechanism's
SET values the names it fetches first (e.g. ``{cert}``). Unknown keys, unknown
placeholders, malformed OIDs, bad regexes and dangling references are refused at load
time with FILE:LINE and the reason (:func:`load_profiles`).

OIDs are written as MIB object names, ``docsIf3CmtsCmRegStatusValue`` or
``cdxCmCpeResetNow.{mac_index}``, resolved once here through the compiled index of
``mibs/`` (:mod:`enforcer.mib`); a name it does not know is a profile error. A list item
``{include: NAME}`` splices in the items of ``device_profiles/modules/NAME.yaml`` (shared
mechanisms and observe sources, docs/profiles.md "Shared modules").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from enforcer import mib
from enforcer.domain.model import DeviceKind, Verdict
from enforcer.errors import MibError, ProfileError
from enforcer.transport.params import refusal_line
from enforcer.transport.snmpwire.status import ErrorStatus

_STRICT = ConfigDict(extra="forbid", frozen=True)
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
OID_PLACEHOLDERS = frozenset({"mac_index", "ifindex"})
TEXT_PLACEHOLDERS = frozenset({"mac", "mac_hex", "mac_index", "ifindex"})
_SAMPLE = {"mac": "0011.2233.4455", "mac_hex": "001122334455", "mac_index": "0.17.34.51.68.85",
           "ifindex": "1001"}


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders; a name without a value raises KeyError."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _by_name(text: str) -> str:
    """A MIB object name (with an optional instance suffix) -> dotted decimal."""
    try:
        return mib.resolve(text)
    except MibError as e:
        raise ValueError(str(e)) from None


def _oid_template(text: str) -> str:
    text = _by_name(text)
    unknown = placeholders(text) - OID_PLACEHOLDERS
    if unknown:
        raise ValueError(f"unknown placeholder(s) in OID: {', '.join(sorted(unknown))}")
    if not re.fullmatch(r"\d+(\.\d+)+", fill(text, _SAMPLE)):
        raise ValueError(f"not an OID: {text!r} (an object name such as sysDescr.0, or "
                         "dotted decimal)")
    return text


def _oid(text: str) -> str:
    text = _by_name(text)
    if not re.fullmatch(r"\d+(\.\d+)+", text):
        raise ValueError(f"not an OID: {text!r} (an object name or dotted decimal, "
                         "no placeholders)")
    return text


def _text_template(text: str) -> str:
    unknown = placeholders(text) - TEXT_PLACEHOLDERS
    if unknown:
        raise ValueError(f"unknown placeholder(s): {', '.join(sorted(unknown))}")
    return text


def _regex_template(text: str) -> str:
    _text_template(text)
    try:
        re.compile(fill(text, {k: re.escape(v) for k, v in _SAMPLE.items()}))
    except re.error as e:
        raise ValueError(f"bad regular expression {text!r}: {e}") from None
    return text


OidTemplate = Annotated[str, AfterValidator(_oid_template)]
PlainOid = Annotated[str, AfterValidator(_oid)]
TextTemplate = Annotated[str, AfterValidator(_text_template)]
RegexTemplate = Annotated[str, AfterValidator(_regex_template)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
MacFormat = Literal["colon", "colon_upper", "dash", "dash_upper", "dotted", "bare", "bare_upper"]


class SnmpTransportSpec(BaseModel):
    """snmp_exporter defaults (docs/docsis.md section 6): 25 repetitions, 5 s, 3 retries."""

    model_config = _STRICT
    max_repetitions: int = Field(25, ge=1, le=100)
    timeout_s: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    # GETBULK streams in flight for one whole-table walk, each over its own range of row
    # indexes (cut where the device's previous walk of that table was): the device
    # answers one while the enforcer decodes another. 1 = one stream. In-flight requests
    # per device stay bounded by limits.max_sessions x 2 (the request budget).
    walk_ranges: int = Field(2, ge=1, le=4)
    # SETs on the lean BER client (default) or through pysnmp, for an agent that needs it.
    writer: Literal["lean", "pysnmp"] = "lean"


class SshTransportSpec(BaseModel):
    model_config = _STRICT
    device_type: str
    conn_args: dict[str, str | int | float | bool] = Field(default_factory=dict)
    enable: bool = True  # enter privileged mode after login (with enable_secret)
    save_after_config: bool = False  # e.g. "write memory" so config survives a reload
    # A line of an answer matching one of these is a refusal -> CliCommandError. Each
    # vendor's real refusal forms (docs/profiles.md "Error patterns").
    error_patterns: list[RegexTemplate] = Field(default_factory=list)
    check_command: str | None = None  # a harmless command for `enforcer devices check`

    def refusal(self, text: str) -> str | None:
        """The whole line of ``text`` that an error pattern matches, or None (the same
        rule the SSH session applies: enforcer/transport/params.py)."""
        return refusal_line(self.error_patterns, text)


class KeaTransportSpec(BaseModel):
    """Kea's control channel (a unix socket speaking JSON commands; the device's
    ``host`` in inventory is the socket path). See docs/dhcp.md."""

    model_config = _STRICT
    timeout_s: float = Field(5.0, gt=0)
    write_config: bool = True  # config-write after config-set, so bans survive a restart


class Transports(BaseModel):
    model_config = _STRICT
    snmp: SnmpTransportSpec | None = None
    ssh: SshTransportSpec | None = None
    kea: KeaTransportSpec | None = None


#: The Limits fields that bound a device table (``Capacity.limit``).
TableLimit = Literal["deny_list_size", "hotlist_size"]


class Limits(BaseModel):
    model_config = _STRICT
    max_sessions: int = Field(2, ge=1)
    resets_per_minute: float = Field(30, gt=0)
    deny_list_size: int | None = Field(None, ge=1)
    hotlist_size: int | None = Field(None, ge=1)
    retry_attempts: int = Field(3, ge=1)
    backoff_base_s: float = Field(0.2, gt=0)
    backoff_cap_s: float = Field(5.0, gt=0)

    def table_size(self, table: TableLimit) -> int | None:
        """The size of a bounded device table (a ``Capacity.limit``); None: not set."""
        return {"deny_list_size": self.deny_list_size,
                "hotlist_size": self.hotlist_size}[table]


class Varbind(BaseModel):
    """One SET varbind. ``hex`` values render to hex digits and are sent as octets."""

    model_config = _STRICT
    oid: OidTemplate
    type: Literal["integer", "unsigned32", "gauge32", "octets", "hex", "ipaddress"]
    value: str


class CliSteps(BaseModel):
    model_config = _STRICT
    mode: Literal["config", "exec"]
    lines: list[TextTemplate] = Field(min_length=1)


class Action(BaseModel):
    """SNMP: SET PDUs sent in order (each PDU atomic on the agent); CLI: lines."""

    model_config = _STRICT
    snmp: list[Annotated[list[Varbind], Field(min_length=1)]] | None = None
    cli: CliSteps | None = None


class Expect(BaseModel):
    """A GET (``oid``) or an observe source's state (``source``) whose value must be
    one of ``values``."""

    model_config = _STRICT
    oid: OidTemplate | None = None
    source: str | None = None
    values: list[int] = Field(min_length=1)


class CliCheck(BaseModel):
    """A read-back over the CLI. Fail closed: ``listing`` must match an answer that is
    the listing asked for (its header, or a line the filtered answer always carries),
    or ``empty`` the device's documented answer when there is nothing to list. An
    answer matching neither (an error, a blank or truncated answer, another layout)
    raises instead of reading as "absent"."""

    model_config = _STRICT
    command: TextTemplate
    pattern: RegexTemplate
    present_when: Literal["match", "no_match"] = "match"
    listing: RegexTemplate
    empty: RegexTemplate | None = None


class ReadBack(BaseModel):
    model_config = _STRICT
    snmp: list[Expect] | None = None
    cli: CliCheck | None = None


class Capacity(BaseModel):
    """A bounded device table: ``limit`` names a Limits field; ``count_walk`` a column
    whose rows are counted before adding; ``full_errors`` SNMP error-status names (or
    CLI regexes) that mean full. Either way the driver raises CapacityError."""

    model_config = _STRICT
    limit: TableLimit
    count_walk: PlainOid | None = None
    full_errors: list[str] = Field(default_factory=list)


class Mechanism(BaseModel):
    model_config = _STRICT
    name: Name
    description: str = ""
    transport: Literal["snmp", "ssh", "kea"]
    persistence: Literal["registration", "reboot", "persistent"]
    requires: list[str] = Field(default_factory=list)
    kinds: list[DeviceKind] = Field(default_factory=lambda: list(DeviceKind))
    fetch: dict[str, OidTemplate] = Field(default_factory=dict)
    apply: Action
    remove: Action
    read_back: ReadBack
    kick_after_apply: bool
    # A per-registration mechanism applied at once after this one, so the modem is cut
    # off now and the kick this mechanism needs can wait for the device's reset budget.
    immediate: Name | None = None
    capacity: Capacity | None = None
    # kea: what the DROP class matches for a banned MAC (docs/dhcp.md): the MAC itself
    # (pkt4.mac) and/or the option-82 remote-id the CMTS relay puts on CPE requests.
    drop: list[Literal["mac", "remote_id"]] = Field(default_factory=list)


class Kick(Action):
    """How to force re-registration; ``not_present`` error-status names mean the device
    does not list the MAC (nothing to kick)."""

    not_present: list[str] = Field(default_factory=list)


class IndexSpec(BaseModel):
    """How a MAC finds its row: ``mac`` (the row index is the MAC), ``pointer`` (GET
    ``pointer.<mac>`` gives the row, e.g. docsIfCmtsCmPtr), ``walk`` (walk
    ``mac_column`` and cache MAC -> row, e.g. DOCS-IF3 has no MAC table)."""

    model_config = _STRICT
    by: Literal["mac", "pointer", "walk"]
    pointer: PlainOid | None = None
    mac_column: PlainOid | None = None


class StateSpec(BaseModel):
    model_config = _STRICT
    name: str
    verdict: Verdict


class Lookup(BaseModel):
    model_config = _STRICT
    column: PlainOid
    index: IndexSpec


class Source(Lookup):
    name: str
    states: dict[int, StateSpec] = Field(min_length=1)


class SnmpObserve(BaseModel):
    model_config = _STRICT
    sources: list[Source] = Field(min_length=1)
    ifindex: Lookup | None = None


class CliState(BaseModel):
    model_config = _STRICT
    match: RegexTemplate
    verdict: Verdict


class CliObserve(BaseModel):
    """``state_pattern`` has a group ``state``; ``absent_pattern`` is the device's
    documented answer for a MAC it does not know; an answer matching neither is an
    error, never "absent". ``fields`` extract more groups."""

    model_config = _STRICT
    command: TextTemplate
    state_pattern: RegexTemplate
    absent_pattern: RegexTemplate | None = None
    states: list[CliState] = Field(min_length=1)
    fields: dict[str, RegexTemplate] = Field(default_factory=dict)


Meaning = Literal["forwarding", "blocked", "registering", "offline", "unknown"]
MEANING_VERDICT: dict[str, Verdict] = {
    "forwarding": Verdict.FORWARDING, "blocked": Verdict.BLOCKED,
    "registering": Verdict.UNKNOWN, "offline": Verdict.ABSENT, "unknown": Verdict.UNKNOWN,
}


class StateWord(BaseModel):
    """What one state word of a CLI listing means (``note``: the vendor's gloss)."""

    model_config = _STRICT
    meaning: Meaning
    note: str = ""


class ListingLayout(BaseModel):
    """Another layout the same listing command prints on some builds of the platform
    (e.g. a Remote PHY or vCCAP view with more columns): the same fields as the
    listing's own layout, and a ``name`` reported with what it reads."""

    model_config = _STRICT
    name: Name
    header: list[RegexTemplate] = Field(min_length=1)
    empty: RegexTemplate | None = None
    footer: RegexTemplate | None = None
    row: RegexTemplate


class ModemListing(BaseModel):
    """The device's modem listing (e.g. ``show cable modem``) as data: every ``header``
    regex matches a recognised listing (``empty``: the documented answer with no
    modems); ``footer`` closes a complete one (a listing without it is truncated);
    ``row`` matches one modem line with groups ``mac`` and ``state`` (other named groups
    are kept as the row's fields); any other line holding a MAC is an unrecognised row.
    ``layouts``: other layouts of the same command, each recognised by its own header
    (the listing's own layout is named ``classic``). ``states``: the state vocabulary,
    by exact word; a word not in it is surfaced as unknown, never guessed."""

    model_config = _STRICT
    command: TextTemplate
    header: list[RegexTemplate] = Field(min_length=1)
    empty: RegexTemplate | None = None
    footer: RegexTemplate | None = None
    row: RegexTemplate
    layouts: list[ListingLayout] = Field(default_factory=list)
    states: dict[str, StateWord] = Field(min_length=1)

    def all_layouts(self) -> list[ListingLayout]:
        """The listing's own layout (``classic``) and its other ``layouts``."""
        own = ListingLayout(name="classic", header=self.header, empty=self.empty,
                            footer=self.footer, row=self.row)
        return [own, *self.layouts]


class Observe(BaseModel):
    model_config = _STRICT
    snmp: SnmpObserve | None = None
    cli: CliObserve | None = None
    blocks: list[str] = Field(default_factory=list)  # mechanisms read back by observe()


class CliSweep(BaseModel):
    model_config = _STRICT
    command: TextTemplate
    row_pattern: RegexTemplate  # groups: mac, state


class Sweep(BaseModel):
    model_config = _STRICT
    snmp_sources: list[str] | None = None
    cli: CliSweep | None = None


class Capability(BaseModel):
    """A GET whose answer (anything but noSuchObject / noSuchInstance) proves it."""

    model_config = _STRICT
    snmp_present: OidTemplate


class Profile(BaseModel):
    model_config = _STRICT
    platform: Name
    description: str = ""
    kind: Literal["cmts", "headend", "dhcp"]
    transports: Transports
    mac_format: MacFormat = "dotted"
    limits: Limits = Field(default_factory=Limits)
    capabilities: dict[str, Capability] = Field(default_factory=dict)
    mechanisms: list[Mechanism] = Field(min_length=1)
    kick: Kick | None = None
    observe: Observe
    sweep: Sweep | None = None
    listing: ModemListing | None = None

    def mechanism(self, name: str) -> Mechanism:
        for m in self.mechanisms:
            if m.name == name:
                return m
        raise KeyError(name)


def cross_check(p: Profile) -> list[tuple[tuple[str | int, ...], str]]:
    """References between sections, and templates against what each one can use."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    mech_names = [m.name for m in p.mechanisms]
    sources = {s.name for s in (p.observe.snmp.sources if p.observe.snmp else [])}
    for i, m in enumerate(p.mechanisms):
        at: tuple[str | int, ...] = ("mechanisms", i)
        if mech_names.count(m.name) > 1:
            out.append(((*at, "name"), f"mechanism {m.name!r} is defined twice"))
        if getattr(p.transports, m.transport) is None:
            out.append(((*at, "transport"), f"transport {m.transport!r} is not configured"))
        for r in m.requires:
            if r not in p.capabilities:
                out.append(((*at, "requires"), f"unknown capability {r!r}"))
        if (m.transport == "kea") != bool(m.drop):
            out.append(((*at, "drop"), "a kea mechanism needs drop (and only kea ones)"))
        for part in ("apply", "remove", "read_back"):
            sec = getattr(m, part)
            if m.transport == "kea":
                if sec.snmp is not None or sec.cli is not None:
                    out.append(((*at, part), "a kea mechanism takes no snmp/cli section"))
                continue
            want, other = ("snmp", "cli") if m.transport == "snmp" else ("cli", "snmp")
            if getattr(sec, want) is None or getattr(sec, other) is not None:
                out.append(((*at, part), f"needs exactly a {want!r} section "
                            f"(the mechanism's transport is {m.transport})"))
        allowed = TEXT_PLACEHOLDERS | set(m.fetch)
        for part in ("apply", "remove"):
            for j, pdu in enumerate(getattr(m, part).snmp or []):
                for k, vb in enumerate(pdu):
                    bad = placeholders(vb.value) - allowed
                    if bad:
                        out.append(((*at, part, "snmp", j, k, "value"),
                                    f"unknown placeholder(s): {', '.join(sorted(bad))}"))
        for j, e in enumerate(m.read_back.snmp or []):
            if (e.oid is None) == (e.source is None):
                out.append(((*at, "read_back", "snmp", j), "give exactly one of oid, source"))
            elif e.source is not None and e.source not in sources:
                out.append(((*at, "read_back", "snmp", j, "source"),
                            f"unknown observe source {e.source!r}"))
        for j, status in enumerate(m.capacity.full_errors if m.capacity and
                                   m.transport == "snmp" else []):
            if status not in ErrorStatus.__members__:
                out.append(((*at, "capacity", "full_errors", j),
                            f"not an SNMP error-status name: {status!r}"))
        for j, pat in enumerate(m.capacity.full_errors if m.capacity and
                                m.transport == "ssh" else []):
            try:
                re.compile(pat)
            except re.error as e:
                out.append(((*at, "capacity", "full_errors", j), f"bad regular expression: {e}"))
        if m.capacity and p.limits.table_size(m.capacity.limit) is None:
            out.append(((*at, "capacity", "limit"), f"limits.{m.capacity.limit} is not set"))
        if m.immediate is not None:
            companion = next((x for x in p.mechanisms if x.name == m.immediate), None)
            if companion is None:
                out.append(((*at, "immediate"), f"unknown mechanism {m.immediate!r}"))
            elif companion.persistence != "registration" or companion.kick_after_apply:
                out.append(((*at, "immediate"), f"{m.immediate} must be a per-registration "
                            "mechanism that needs no kick"))
    for i, b in enumerate(p.observe.blocks):
        if b not in mech_names:
            out.append((("observe", "blocks", i), f"unknown mechanism {b!r}"))
    if p.observe.snmp is None and p.observe.cli is None and p.kind != "dhcp":
        out.append((("observe",), "needs an snmp or a cli section"))
    for i, s in enumerate(p.observe.snmp.sources if p.observe.snmp else []):
        ix = s.index
        if ix.by == "pointer" and (ix.pointer is None or ix.mac_column is None):
            out.append((("observe", "snmp", "sources", i, "index"),
                        "by: pointer needs pointer and mac_column (for sweeps)"))
        if ix.by == "walk" and ix.mac_column is None:
            out.append((("observe", "snmp", "sources", i, "index"), "by: walk needs mac_column"))
        hit = mib.index().name_of(tuple(int(x) for x in s.column.split(".")))
        if hit is not None and not hit[1] and hit[0].enums:
            for number, st in s.states.items():
                if hit[0].label(number) != st.name:
                    out.append((("observe", "snmp", "sources", i, "states", number),
                                f"{hit[0].name} value {number} is "
                                f"{hit[0].label(number) or 'not in its MIB enumeration'!s}, "
                                f"not {st.name!r} (mibs/)"))
    for i, name in enumerate(p.sweep.snmp_sources or [] if p.sweep else []):
        if name not in sources:
            out.append((("sweep", "snmp_sources", i), f"unknown observe source {name!r}"))
    if p.listing is not None:
        names = [lay.name for lay in p.listing.all_layouts()]
        for i, lay in enumerate(p.listing.all_layouts()):
            at = ("listing", "row") if i == 0 else ("listing", "layouts", i - 1, "row")
            groups = re.compile(fill(lay.row, {k: re.escape(v) for k, v in _SAMPLE.items()}))
            missing = {"mac", "state"} - set(groups.groupindex)
            if missing:
                out.append((at, f"needs the named group(s) {', '.join(sorted(missing))}"))
            if names.count(lay.name) > 1:
                out.append((at[:-1] + ("name",) if i else ("listing",),
                            f"layout {lay.name!r} is defined twice"))
    for j, status in enumerate(p.kick.not_present if p.kick and p.kick.snmp else []):
        if status not in ErrorStatus.__members__:
            out.append((("kick", "not_present", j), f"not an SNMP error-status name: {status!r}"))
    if p.kick is not None and (p.kick.snmp is None) == (p.kick.cli is None):
        out.append((("kick",), "needs exactly one of snmp, cli"))
    return out


MODULES_DIR = "modules"
_MAX_INCLUDE_DEPTH = 4


def _compose(path: Path) -> yaml.Node | None:
    try:
        text = path.read_text()
    except OSError as e:
        raise ProfileError(f"{path}: cannot read profile: {e.strerror}") from None
    loader = yaml.SafeLoader(text)
    loader.name = str(path)  # marks (error lines) name the file they come from
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ProfileError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    finally:
        loader.dispose()


def _include_name(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.MappingNode) and len(node.value) == 1 \
            and node.value[0][0].value == "include":
        value = node.value[0][1]
        if not isinstance(value, yaml.ScalarNode) or \
                not re.fullmatch(r"[a-z][a-z0-9-]*", str(value.value)):
            raise ProfileError(f"{node.start_mark.name}:{node.start_mark.line + 1}: include: "
                               "a module name (lower case, digits, '-')")
        return str(value.value)
    return None


def _splice(node: yaml.Node, modules: Path, depth: int = 0) -> None:
    """Replace every list item ``{include: NAME}`` by the items of modules/NAME.yaml."""
    if isinstance(node, yaml.MappingNode):
        for _, v in node.value:
            _splice(v, modules, depth)
    elif isinstance(node, yaml.SequenceNode):
        items: list[yaml.Node] = []
        for item in node.value:
            name = _include_name(item)
            if name is None:
                _splice(item, modules, depth)
                items.append(item)
                continue
            where = f"{item.start_mark.name}:{item.start_mark.line + 1}"
            path = modules / f"{name}.yaml"
            if depth >= _MAX_INCLUDE_DEPTH:
                raise ProfileError(f"{where}: include: {name}: includes nested too deep "
                                   f"(at most {_MAX_INCLUDE_DEPTH}; a cycle?)")
            if not path.is_file():
                raise ProfileError(f"{where}: include: no module {name!r} ({path})")
            inc = _compose(path)
            if not isinstance(inc, yaml.SequenceNode):
                raise ProfileError(f"{path}:1: a profile module is a list of items")
            _splice(inc, modules, depth + 1)
            items.extend(inc.value)
        node.value = items


def _where(node: yaml.Node, loc: tuple[Any, ...]) -> str:
    """``FILE:LINE`` of the YAML node at ``loc`` (or of its nearest parent)."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if str(k.value) == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) \
                and key < len(node.value):
            nxt = node.value[key]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
    return f"{node.start_mark.name}:{int(node.start_mark.line) + 1}"


def line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest parent)."""
    return int(_where(node, loc).rsplit(":", 1)[1])


def load_profile(path: Path) -> Profile:
    """One profile file; any problem raises ProfileError("FILE:LINE: reason")."""
    node = _compose(path)
    if node is not None:
        _splice(node, path.parent / MODULES_DIR)
    constructor = yaml.SafeLoader("")
    try:
        data: Any = constructor.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {getattr(e, 'problem', e)}") from None
    finally:
        constructor.dispose()
    if node is None or not isinstance(data, dict):
        raise ProfileError(f"{path}:1: a profile is a mapping (platform, transports, ...)")
    try:
        profile = Profile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        what = ".".join(map(str, loc)) or "(top)"
        msg = err["msg"].removeprefix("Value error, ")
        raise ProfileError(f"{_where(node, loc)}: {what}: {msg}") from None
    problems = cross_check(profile)
    if problems:
        loc, msg = problems[0]
        raise ProfileError(f"{_where(node, loc)}: {'.'.join(map(str, loc))}: {msg}")
    if profile.platform != path.stem:
        raise ProfileError(f"{path}:{line_of(node, ('platform',))}: platform "
                           f"{profile.platform!r} must match the file name {path.stem!r}")
    return profile


def load_profiles(directory: Path) -> dict[str, Profile]:
    """Every ``*.yaml`` profile in ``directory``, by platform name."""
    if not directory.is_dir():
        raise ProfileError(f"{directory}: no such profile directory")
    return {p.stem: load_profile(p) for p in sorted(directory.glob("*.yaml"))}
