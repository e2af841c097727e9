"""Load and validate the policy file (or the built-in ``default.yaml``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from enforcer.errors import ConfigError
from enforcer.policy.model import Policy

BUILTIN = Path(__file__).with_name("default.yaml")


def _format(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"{key}: {msg.removeprefix('Value error, ')}")
    return f"{where}: " + "; ".join(parts)


def parse_policy(data: Any, where: str = "policy") -> Policy:
    """Validate a parsed policy document; :class:`ConfigError` names each bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping")
    try:
        return Policy.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e, where)) from None


def load_policy(path: Path | None = None) -> Policy:
    """The policy in ``path``, or the built-in one when ``path`` is None."""
    target = path or BUILTIN
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{target}: cannot read policy file ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{target}: not valid YAML ({e})") from None
    return parse_policy(data, str(target))


@lru_cache(maxsize=1)
def builtin_policy() -> Policy:
    """The built-in policy (parsed once)."""
    return load_policy(None)


def policy_for(settings: Any) -> Policy:
    """The policy named by ``settings.policy`` (built-in when unset)."""
    path = getattr(settings, "policy", None)
    return load_policy(path) if path is not None else builtin_policy()
