"""CLI mechanisms and CLI state reading, as the profile's templates say.

Config lines go through ``send_config`` (netmiko enters and leaves config mode for
the platform); exec lines through ``send_command`` one by one. Read back is a show
command and a regex with ``{mac}`` in the profile's mac_format (docs/docsis.md
section 3: all four CMTS families show lower-case dotted MACs).

Fail closed (docs/profiles.md "Reading CLI answers"): a read-back answer is first
recognised as the listing asked for (``CliCheck.listing``) or as the device's documented
empty answer (``CliCheck.empty``); anything else (an error the error patterns missed, a
blank or truncated answer, another layout) raises :class:`UnrecognisedAnswer`, so a
ban or lift ends in an error (target retrying) and never concludes "absent".
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from enforcer.domain.mac import Mac
from enforcer.domain.model import Verdict
from enforcer.drivers.render import Context, Scrubber
from enforcer.errors import CapacityError, CliCommandError, DriverError, MacError
from enforcer.inventory.profiles import (
    MEANING_VERDICT,
    CliCheck,
    CliObserve,
    CliSteps,
    CliSweep,
    ListingLayout,
    ModemListing,
    Profile,
)
from enforcer.transport.base import CliSession

Reading = tuple[Verdict, str]
_ANY_MAC = re.compile(r"\b[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\b|"
                      r"\b(?:[0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}\b")


class UnrecognisedAnswer(DriverError):
    """A device answer that is neither the listing asked for nor its documented empty
    answer: an error, never a verdict."""


def _excerpt(text: str) -> str:
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return repr(first[:120]) if first else "an empty answer"


class CliMechanisms:
    """Apply / remove / read back / kick / observe over one device's CLI."""

    def __init__(self, device: str, profile: Profile,
                 session: Callable[[], Awaitable[CliSession]], scrub: Scrubber) -> None:
        self.device = device
        self.profile = profile
        self._session = session
        self._scrub = scrub

    def context(self, mac: Mac) -> Context:
        return Context(mac, self.profile.mac_format)

    async def command(self, line: str, transcript: list[str]) -> str:
        cli = await self._session()
        out = await cli.send_command(line)
        transcript.append(self._scrub(f"> {line}\n{out}".rstrip()))
        return out

    async def run(self, steps: CliSteps, ctx: Context, transcript: list[str]) -> None:
        lines = [ctx.text(t) for t in steps.lines]
        if steps.mode == "exec":
            for line in lines:
                await self.command(line, transcript)
            return
        cli = await self._session()
        out = await cli.send_config(lines)
        transcript.append(self._scrub("config> " + " / ".join(lines) + f"\n{out}".rstrip()))

    async def check(self, check: CliCheck, mac: Mac, transcript: list[str]) -> bool:
        """True when the block reads back present; UnrecognisedAnswer when the answer is
        not positively recognised (never "absent" by default)."""
        ctx = self.context(mac)
        command = ctx.text(check.command)
        out = await self.command(command, transcript)
        try:
            return read_check(check, ctx, out, device=self.device, command=command)
        except UnrecognisedAnswer as e:  # the message quotes the device: scrub it
            raise UnrecognisedAnswer(self._scrub(str(e))) from None

    async def change(self, steps: CliSteps, check: CliCheck, mac: Mac,
                     transcript: list[str], *, apply: bool, name: str,
                     full_errors: list[str] | None = None) -> bool:
        """Bring the block to the wanted state; False when it already was there. A
        rejection matching ``full_errors`` means the device table is full."""
        if await self.check(check, mac, transcript) == apply:
            transcript.append(f"read back: {'present' if apply else 'absent'} already")
            return False
        try:
            await self.run(steps, self.context(mac), transcript)
        except CliCommandError as e:
            if any(re.search(p, str(e)) for p in full_errors or []):
                raise CapacityError(f"{self.device}: {name} is full ({e})") from e
            raise
        if await self.check(check, mac, transcript) != apply:
            raise DriverError(f"{self.device}: {name} sent for {mac} but read back says "
                              f"{'absent' if apply else 'still present'}")
        return True

    async def observe(self, spec: CliObserve, mac: Mac, transcript: list[str],
                      ) -> tuple[Reading, dict[str, str]]:
        """(verdict, raw state) and the extra ``fields`` the profile extracts."""
        ctx = self.context(mac)
        out = await self.command(ctx.text(spec.command), transcript)
        fields: dict[str, str] = {}
        for key, pattern in spec.fields.items():
            m = ctx.regex(pattern).search(out)
            if m:
                fields[key] = m.group(1)
        m = ctx.regex(spec.state_pattern).search(out)
        if m is not None:
            return map_state(spec, ctx, m.group("state")), fields
        if spec.absent_pattern and ctx.regex(spec.absent_pattern).search(out):
            return (Verdict.ABSENT, "not listed"), fields
        raise UnrecognisedAnswer(self._scrub(
            f"{self.device}: {ctx.text(spec.command)!r} answered {_excerpt(out)}: neither a "
            "state nor the not-found answer"))

    async def listing(self, spec: ModemListing, transcript: list[str]) -> ListingResult:
        """The device's modem listing, parsed with the profile's layout and vocabulary."""
        ctx = Context(Mac("02:00:00:00:00:01"), self.profile.mac_format)
        command = ctx.text(spec.command)
        out = await self.command(command, transcript)
        try:
            return parse_listing(spec, out, device=self.device, command=command)
        except UnrecognisedAnswer as e:
            raise UnrecognisedAnswer(self._scrub(str(e))) from None

    async def sweep(self, spec: CliSweep, observe: CliObserve,
                    transcript: list[str]) -> dict[Mac, Reading]:
        ctx = Context(Mac("02:00:00:00:00:01"), self.profile.mac_format)
        out = await self.command(ctx.text(spec.command), transcript)
        result: dict[Mac, Reading] = {}
        for m in ctx.regex(spec.row_pattern).finditer(out):
            try:
                mac = Mac(m.group("mac"), allow_group=True)
            except MacError:
                continue
            result[mac] = map_state(observe, ctx, m.group("state"))
        return result


def map_state(spec: CliObserve, ctx: Context, state: str) -> Reading:
    for st in spec.states:
        if ctx.regex(st.match).fullmatch(state):
            return st.verdict, state
    return Verdict.UNKNOWN, state


def read_check(check: CliCheck, ctx: Context, out: str, *, device: str, command: str) -> bool:
    """Whether ``out`` (the answer to ``command``) shows the block present, after
    recognising it as the listing or the documented empty answer."""
    out = out.replace("\r\n", "\n")
    recognised = ctx.regex(check.listing).search(out) is not None
    if not recognised and check.empty is not None and ctx.regex(check.empty).search(out):
        found = False
    elif not recognised:
        raise UnrecognisedAnswer(f"{device}: {command!r} answered {_excerpt(out)}: not the "
                                 "listing the profile describes; cannot read the block back")
    else:
        found = ctx.regex(check.pattern).search(out) is not None
    return found if check.present_when == "match" else not found


class ListingResult:
    """A parsed modem listing: MAC -> (verdict, state word, meaning); ``unknown`` holds
    the state words the profile's vocabulary does not know (surfaced, not guessed);
    ``layout`` names the layout recognised; ``fields`` the row's other named groups
    (e.g. a Remote PHY node)."""

    def __init__(self, layout: str = "classic") -> None:
        self.layout = layout
        self.rows: dict[Mac, tuple[Verdict, str, str]] = {}
        self.fields: dict[Mac, dict[str, str]] = {}
        self.unknown: set[str] = set()


def _layout_of(spec: ModemListing, out: str, *, device: str, command: str,
               ) -> ListingLayout | None:
    """The one layout whose every header line is in ``out``; None for a documented empty
    answer; UnrecognisedAnswer for anything else (no layout, or more than one)."""
    layouts = spec.all_layouts()
    matched = [lay for lay in layouts if all(re.search(h, out) for h in lay.header)]
    if len(matched) > 1:
        raise UnrecognisedAnswer(f"{device}: {command!r}: the answer fits more than one "
                                 f"layout ({', '.join(lay.name for lay in matched)})")
    if matched:
        return matched[0]
    if any(lay.empty is not None and re.search(lay.empty, out) for lay in layouts):
        return None
    if len(layouts) == 1:
        missing = next(h for h in layouts[0].header if not re.search(h, out))
        why = f"no {missing!r}"
    else:
        why = f"the header of none of its layouts: {', '.join(lay.name for lay in layouts)}"
    raise UnrecognisedAnswer(f"{device}: {command!r} answered {_excerpt(out)}: not the "
                             f"listing the profile describes ({why})")


def parse_listing(spec: ModemListing, out: str, *, device: str, command: str) -> ListingResult:
    """Parse a modem listing; UnrecognisedAnswer unless every header line of exactly one
    of the profile's layouts is there (or the answer is the documented empty one), that
    layout's footer closes it, and every line that holds a MAC is a row its ``row``
    pattern reads."""
    out = out.replace("\r\n", "\n")
    layout = _layout_of(spec, out, device=device, command=command)
    if layout is None:
        return ListingResult()
    result = ListingResult(layout.name)
    if layout.footer is not None and not re.search(layout.footer, out):
        raise UnrecognisedAnswer(f"{device}: {command!r}: the listing is truncated (no "
                                 f"closing {layout.footer!r})")
    row = re.compile(layout.row)
    for line in out.splitlines():
        m = row.search(line)
        if m is None:
            if _ANY_MAC.search(line):
                raise UnrecognisedAnswer(f"{device}: {command!r}: a row the profile cannot "
                                         f"read: {line.strip()[:120]!r}")
            continue
        try:
            mac = Mac(m.group("mac"), allow_group=True)
        except MacError as e:
            raise UnrecognisedAnswer(f"{device}: {command!r}: bad MAC in "
                                     f"{line.strip()[:120]!r}") from e
        word = m.group("state")
        known = spec.states.get(word)
        if known is None:
            result.unknown.add(word)
            result.rows[mac] = (Verdict.UNKNOWN, word, "unknown")
        else:
            result.rows[mac] = (MEANING_VERDICT[known.meaning], word, known.meaning)
        extra = {k: v for k, v in m.groupdict().items()
                 if k not in ("mac", "state") and v is not None}
        if extra:
            result.fields[mac] = extra
    return result
