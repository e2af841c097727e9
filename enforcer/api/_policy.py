"""Built-in policy defaults the API needs before the policy module exists. Private: the
lead moves this into the policy when it lands."""

from __future__ import annotations

from enforcer.domain.model import Reason, Scope

#: Safety reasons default to the whole footprint so the modem cannot be moved elsewhere.
DEFAULT_SCOPE: dict[Reason, Scope] = {
    Reason.THREAT_OF_VIOLENCE: Scope.FOOTPRINT,
    Reason.HARASSMENT: Scope.FOOTPRINT,
    Reason.FRAUD: Scope.NODE,
    Reason.THEFT_OF_SERVICE: Scope.NODE,
    Reason.NON_PAYMENT: Scope.NODE,
    Reason.OTHER: Scope.NODE,
}


def default_scope(reason: Reason) -> Scope:
    return DEFAULT_SCOPE[reason]
