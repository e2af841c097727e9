"""Policy models (pydantic, unknown keys refused): per reason, how a ban is imposed,
its default scope, who must consent to lifting it, and who is notified of what.

A lift rule is evaluated over the *electorate*: the enabled, unexpired users with the
approver role who are members of the reason's ``group`` (every approver when ``group``
is null) at the moment the lift is requested, minus the requester unless
``requester_may_approve``. The electorate is frozen on the lift request.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from enforcer.config import decode_webhook_secret
from enforcer.domain.model import Reason, Scope

_STRICT = ConfigDict(extra="forbid")
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]


class Event(StrEnum):
    """Outbound notification events (the ``type`` of each webhook message)."""

    BAN_IMPOSED = "ban.imposed"
    BAN_AMENDED = "ban.amended"
    BAN_VERIFIED = "ban.verified"
    BAN_SIGHTING = "ban.sighting"
    LIFT_REQUESTED = "lift.requested"
    LIFT_APPROVED = "lift.approved"
    LIFT_REFUSED = "lift.refused"
    LIFT_EXPIRED = "lift.expired"
    LIFT_COMPLETED = "lift.completed"


class Rule(StrEnum):
    UNANIMOUS = "unanimous"  # every member of the electorate approves
    ANY = "any"  # one approval suffices
    N_OF_M = "n_of_m"  # ``n`` approvals out of the electorate


class LiftPolicy(BaseModel):
    """Who must consent to lifting a ban, and for how long a request stays open."""

    model_config = _STRICT
    group: Name | None = Field(None, description="approver group; null = every approver")
    rule: Rule
    n: Annotated[int, Field(ge=1, le=1000)] | None = None
    time_limit_hours: Annotated[float, Field(gt=0, le=24 * 90)] = 72
    requester_may_approve: bool = False

    @model_validator(mode="after")
    def _n_only_for_n_of_m(self) -> LiftPolicy:
        if self.rule is Rule.N_OF_M and self.n is None:
            raise ValueError("rule n_of_m needs n (how many approvals)")
        if self.rule is not Rule.N_OF_M and self.n is not None:
            raise ValueError(f"n is only for rule n_of_m, not {self.rule.value}")
        return self

    def needed(self, electorate_size: int) -> int:
        """Approvals needed with an electorate of ``electorate_size``."""
        if self.rule is Rule.UNANIMOUS:
            return electorate_size
        if self.rule is Rule.ANY:
            return 1
        assert self.n is not None
        return self.n


class NotifyRule(BaseModel):
    """Send ``events`` (default: all) of this reason's orders to the ``to`` targets."""

    model_config = _STRICT
    to: Annotated[list[Name], Field(min_length=1)]
    events: list[Event] = Field(default_factory=lambda: list(Event))


Layer = Literal["dhcp", "cmts", "headend"]


class ReasonPolicy(BaseModel):
    model_config = _STRICT
    impose: Literal["immediately"] = Field(
        "immediately", description="bans are imposed on intake, without approval (the "
        "order states have no 'awaiting approval to impose' step)")
    default_scope: Scope
    # Enforcement layers and the order they are applied in: ``dhcp`` (provisioning-side
    # refusal on DHCP servers), ``cmts`` (blocks on CMTSes), ``headend`` (set-top
    # entitlements). A later layer waits for the earlier ones to confirm, at most
    # ``engine.layer_wait_s``, so a sick DHCP server never delays the CMTS block long.
    layers: Annotated[list[Layer], Field(min_length=1)] = Field(
        default_factory=lambda: list[Layer](["cmts", "headend"]))
    lift: LiftPolicy
    notify: list[NotifyRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_layers(self) -> ReasonPolicy:
        if len(set(self.layers)) != len(self.layers):
            raise ValueError("layers: each layer at most once")
        return self


class WebhookTarget(BaseModel):
    """A receiver of signed outbound webhooks (Standard Webhooks)."""

    model_config = _STRICT
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2000)]
    secret: SecretStr | None = None
    secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookTarget:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret (whsec_...) and secret_env")
        self.key()  # validates the secret (and that the variable is set)
        return self

    def key(self) -> bytes:
        """The HMAC key (base64-decoded part of the ``whsec_`` secret)."""
        if self.secret is not None:
            return decode_webhook_secret(self.secret.get_secret_value())
        assert self.secret_env is not None
        value = os.environ.get(self.secret_env)
        if not value:
            raise ValueError(f"environment variable {self.secret_env} is not set")
        return decode_webhook_secret(value)

    def secret_value(self) -> str:
        if self.secret is not None:
            return self.secret.get_secret_value()
        return os.environ.get(self.secret_env or "", "")


class Delivery(BaseModel):
    """How outbound webhooks are delivered (in the background, with retries)."""

    model_config = _STRICT
    #: No longer used (every message goes through the store's outbox); still accepted,
    #: with its old bounds, so that older policy files load.
    queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    retry_base_s: Annotated[float, Field(gt=0)] = 2.0
    retry_max_s: Annotated[float, Field(gt=0)] = 600.0
    # The outbox (the daemon's store): how often due messages are looked for, and how
    # long delivered / failed / dropped messages are kept.
    poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    keep_days: Annotated[float, Field(gt=0, le=3650)] = 7.0


class Policy(BaseModel):
    """The whole policy file. Every reason must be listed."""

    model_config = _STRICT
    version: Literal[1] = 1
    reasons: dict[Reason, ReasonPolicy]
    webhooks: dict[Name, WebhookTarget] = Field(default_factory=dict)
    delivery: Delivery = Field(default_factory=Delivery)

    @field_validator("reasons")
    @classmethod
    def _every_reason(cls, v: dict[Reason, ReasonPolicy]) -> dict[Reason, ReasonPolicy]:
        missing = [r.value for r in Reason if r not in v]
        if missing:
            raise ValueError(f"every reason needs a policy; missing: {', '.join(missing)}")
        return v

    @model_validator(mode="after")
    def _targets_exist(self) -> Policy:
        for reason, rp in self.reasons.items():
            for rule in rp.notify:
                for name in rule.to:
                    if name not in self.webhooks:
                        raise ValueError(f"reasons.{reason.value}.notify: unknown webhook "
                                         f"target {name!r} (define it under webhooks)")
        return self

    def for_reason(self, reason: Reason | str) -> ReasonPolicy:
        return self.reasons[Reason(reason)]

    def default_scope(self, reason: Reason) -> Scope:
        return self.for_reason(reason).default_scope

    def targets_for(self, event: str, reason: Reason | str | None) -> list[str]:
        """Names of the webhook targets that receive ``event`` for an order of
        ``reason`` (any reason's routing when the reason is unknown), sorted."""
        reasons = [Reason(reason)] if reason is not None else list(self.reasons)
        out: set[str] = set()
        for r in reasons:
            for rule in self.reasons[r].notify:
                if event in rule.events:
                    out.update(rule.to)
        return sorted(out)

    def secret_values(self) -> list[str]:
        """Every webhook secret, for the log redaction filter."""
        return [t.secret_value() for t in self.webhooks.values() if t.secret_value()]
