"""The policy: per reason, how a ban is imposed, its default scope, who must consent to
lifting it, and the outbound notifications. See ``examples/policy.yaml``."""

from enforcer.policy.loader import builtin_policy, load_policy, parse_policy, policy_for
from enforcer.policy.model import (
    Delivery,
    Event,
    LiftPolicy,
    NotifyRule,
    Policy,
    ReasonPolicy,
    Rule,
    WebhookTarget,
)

__all__ = [
    "Delivery", "Event", "LiftPolicy", "NotifyRule", "Policy", "ReasonPolicy", "Rule",
    "WebhookTarget", "builtin_policy", "load_policy", "parse_policy", "policy_for",
]
