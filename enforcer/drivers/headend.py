"""The headend controller driver (Cisco/SA DNCS): entitlements, not registrations.

apply / remove / observe act on the set-top's own MAC: blocked = digital service off
and the Service Disconnect Avoidance package gone (the box goes dark at its next
check, docs/docsis.md section 5); forwarding = decoding. The CMTS side sees the
box's embedded modem under a different MAC, which :meth:`ecm_mac` reports.
"""

from __future__ import annotations

from enforcer.domain.mac import Mac
from enforcer.drivers.profile_driver import ProfileDriver
from enforcer.errors import DriverError, MacError


class HeadendDriver(ProfileDriver):
    """A ProfileDriver whose observe section is CLI-only, plus the eCM MAC look-up."""

    async def ecm_mac(self, mac: Mac) -> Mac | None:
        """The box's eCM MAC as the controller records it; None for an unknown box."""
        spec = self.profile.observe.cli
        if spec is None or "ecm_mac" not in spec.fields:
            raise DriverError(f"{self.name}: profile {self.profile.platform} does not "
                              "extract ecm_mac")

        async def look() -> Mac | None:
            _, fields = await self._cli_mech.observe(spec, mac, [])
            text = fields.get("ecm_mac")
            if text is None:
                return None
            try:
                return Mac(text)
            except MacError as e:
                raise DriverError(f"{self.name}: bad eCM MAC {text!r} for {mac}") from e
        return await self._guarded("ecm_mac", look)
