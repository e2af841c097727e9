"""CLI mechanisms and CLI state reading, as the profile's templates say.

Config lines go through ``send_config`` (netmiko enters and leaves config mode for
the platform); exec lines through ``send_command`` one by one. Read back is a show
command and a regex with ``{mac}`` in the profile's mac_format (docsis-facts.md
section 3: all four CMTS families show lower-case dotted MACs).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from enforcer.domain.mac import Mac
from enforcer.domain.model import Verdict
from enforcer.drivers.render import Context, Scrubber
from enforcer.errors import CapacityError, CliCommandError, DriverError, MacError
from enforcer.inventory.profiles import CliCheck, CliObserve, CliSteps, CliSweep, Profile
from enforcer.transport.base import CliSession

Reading = tuple[Verdict, str]


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
        ctx = self.context(mac)
        out = await self.command(ctx.text(check.command), transcript)
        found = ctx.regex(check.pattern).search(out) is not None
        return found if check.present_when == "match" else not found

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
        if spec.absent_pattern and ctx.regex(spec.absent_pattern).search(out):
            return (Verdict.ABSENT, "not listed"), fields
        m = ctx.regex(spec.state_pattern).search(out)
        if m is None:
            return (Verdict.ABSENT, "not listed"), fields
        return map_state(spec, ctx, m.group("state")), fields

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
