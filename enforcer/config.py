"""Daemon configuration: a YAML file plus ``ENFORCER_*`` environment overrides.

Precedence (highest first): environment, file, built-in defaults. Nested keys use
``__`` in the environment (``ENFORCER_HTTP__LISTEN=0.0.0.0:8470``). Unknown keys are
refused everywhere, naming the key: in the file, and in the environment every
``ENFORCER_*`` variable that is not a key and not one of :data:`NON_CONFIG_ENV` (the
CLI's, the lab's, the test suite's). Numeric keys carry bounds. Secrets are
:class:`pydantic.SecretStr` and print as ``**********``. Every key is documented in
``docs/configuration.md``.
"""

from __future__ import annotations

import base64
import binascii
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from enforcer.errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:8470"
ENV_PREFIX: Final = "ENFORCER_"
#: ``ENFORCER_*`` variables that are not config keys, so the settings leave them alone:
#: the CLI's (``--url``, ``--token``, ``--config``), the lab's and the demo's, the compose
#: file's, the MIB index build's, and the test suite's (docs/configuration.md lists them).
NON_CONFIG_ENV: Final = frozenset({
    "ENFORCER_URL", "ENFORCER_TOKEN", "ENFORCER_CONFIG",
    "ENFORCER_LAB_STATE", "ENFORCER_DEMO_DIR", "ENFORCER_PROVISIONING_SECRET",
    "ENFORCER_INVENTORY_FILE", "ENFORCER_BASE_MIBS",
    "ENFORCER_UI_SCREENSHOTS", "ENFORCER_RELIABILITY_REPORT", "ENFORCER_TEST_PG_ADMIN",
    "ENFORCER_FUZZ_REQUESTS", "ENFORCER_FUZZ_SECONDS",
})
#: Prefixes of non-config variables: the policy's outbound webhook secrets
#: (``secret_env: ENFORCER_HOOK_BOARD_SECRET``, examples/policy.yaml).
NON_CONFIG_ENV_PREFIXES: Final = ("ENFORCER_HOOK_",)
_STRICT = ConfigDict(extra="forbid")


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def split_host_port(listen: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ValueError."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected host:port, got {listen!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


class HttpSettings(BaseModel):
    model_config = _STRICT
    listen: str = DEFAULT_LISTEN
    # Slow or idle clients: a request head must arrive within header_timeout_s, its
    # body within body_timeout_s after the head; connections beyond max_connections are
    # closed at once; an idle kept-alive connection is closed after keep_alive_s.
    header_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    body_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    max_connections: Annotated[int, Field(ge=1, le=100_000)] = 512
    keep_alive_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    max_header_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 16384

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, v: str) -> str:
        split_host_port(v)
        return v

    @property
    def host(self) -> str:
        return split_host_port(self.listen)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.listen)[1]


def decode_webhook_secret(secret: str) -> bytes:
    """``whsec_<base64>`` -> the HMAC key bytes (Standard Webhooks)."""
    if not secret.startswith("whsec_"):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret key must be at least 16 bytes")
    return key


class WebhookSettings(BaseModel):
    model_config = _STRICT
    secrets: list[SecretStr] = Field(default_factory=list)
    tolerance_s: Annotated[int, Field(gt=0, le=86_400)] = 300

    @field_validator("secrets")
    @classmethod
    def _check_secrets(cls, v: list[SecretStr]) -> list[SecretStr]:
        for i, s in enumerate(v):
            try:
                decode_webhook_secret(s.get_secret_value())
            except ValueError as e:
                raise ValueError(f"secrets[{i}]: {e}") from None
        return v

    def keys(self) -> list[bytes]:
        """HMAC keys, newest first as configured (all are accepted, for rotation)."""
        return [decode_webhook_secret(s.get_secret_value()) for s in self.secrets]


class ProvisioningSettings(WebhookSettings):
    """The provisioning feed: its own webhook secrets (``POST /v1/hooks/provisioning``),
    and a full export of the account <-> device links pulled periodically to repair
    what the events missed (a file path or an https URL; CSV or JSON)."""

    export: str | None = None
    export_interval_s: Annotated[float, Field(ge=5, le=86_400)] = 300.0
    max_devices_per_account: Annotated[int, Field(ge=1, le=1000)] = 32


class ApiSettings(BaseModel):
    model_config = _STRICT
    max_body_bytes: Annotated[int, Field(ge=256, le=16_777_216)] = 65536
    intake_rate_per_s: Annotated[float, Field(gt=0, le=100_000)] = 50.0
    intake_burst: Annotated[int, Field(gt=0, le=1_000_000)] = 100
    #: Lifetime of a web page (``/ui/``) session after signing in with a token.
    ui_session_minutes: Annotated[float, Field(gt=0, le=1440)] = 30
    # Unauthenticated refusals are audited at most once per this many seconds per client
    # address (each entry counts the ones folded into it); all are counted in metrics.
    refusal_audit_interval_s: Annotated[float, Field(ge=0, le=86400)] = 60.0
    # GET /v1/where asks every device: per user, this many per second, this burst.
    where_rate_per_s: Annotated[float, Field(gt=0, le=1000)] = 0.5
    where_burst: Annotated[int, Field(gt=0, le=1000)] = 5


class EngineSettings(BaseModel):
    model_config = _STRICT
    # Every numeric key has a lower and an upper bound (docs/configuration.md lists them;
    # tests/unit/test_config_bounds.py keeps the two in step).
    reconcile_interval_s: Annotated[float, Field(ge=1, le=86_400)] = 300
    watch_interval_s: Annotated[float, Field(ge=1, le=86_400)] = 900
    verify_poll_s: Annotated[float, Field(ge=0.05, le=60)] = 1.0
    verify_timeout_s: Annotated[float, Field(ge=1, le=3600)] = 120
    # Fraction of the reconcile / watch interval added at random to each run.
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.1
    max_retry_backoff_s: Annotated[float, Field(ge=0.5, le=86_400)] = 300
    retry_base_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    # After a kick, a modem shown offline / re-registering is waited for this long
    # before "absent" counts as verified (a real modem re-registers in 30-90 s).
    verify_settle_s: Annotated[float, Field(ge=0, le=3600)] = 90.0
    due_scan_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    # A device loop's passes (a few indexed queries each) are at least this far apart;
    # wakes in between (e.g. a burst of new orders) are served by one pass.
    pass_gap_s: Annotated[float, Field(ge=0, le=5)] = 0.1
    orders_per_device: Annotated[int, Field(ge=1, le=256)] = 16
    full_scan_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    reconcile_concurrency: Annotated[int, Field(ge=1, le=1024)] = 16
    store_threads: Annotated[int, Field(ge=2, le=256)] = 16
    lease_ttl_s: Annotated[float, Field(ge=3, le=3600)] = 15.0
    lift_expiry_check_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    # A later enforcement layer (policy ``layers``) waits at most this long for the
    # earlier ones before it applies its blocks anyway.
    layer_wait_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    # Management address to send SNMP and SSH from (CMTS ACLs often allow only it).
    source_address: str | None = None


class AnchorSettings(BaseModel):
    """Sinks the audit chain head is anchored to (so truncation and rewrites show)."""

    model_config = _STRICT
    # Append-only JSON lines of {seq, hash, at, key_id, evidence_key}; default
    # ``state_dir/anchors/anchors.jsonl`` (the verification checkpoint sits beside it).
    file: Path | None = None
    syslog: str | None = None  # host:port (UDP), tcp://host:port, or a unix socket path

    @field_validator("syslog")
    @classmethod
    def _check_syslog(cls, v: str | None) -> str | None:
        if v is None or v.startswith("/"):
            return v
        rest = v.removeprefix("udp://").removeprefix("tcp://")
        split_host_port(rest)
        return v


class AuditSettings(BaseModel):
    model_config = _STRICT
    anchor: AnchorSettings = Field(default_factory=AnchorSettings)
    anchor_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    # HMAC keys of the audit chain (one ``<key_id>.key`` per key, 0600); default
    # ``state_dir/audit-keys``. Never inside the database; the first key is made on
    # first start.
    key_dir: Path | None = None
    # Ed25519 private key (PEM, 0600) that signs evidence bundles; default
    # ``state_dir/audit-keys/evidence-ed25519.pem``, made on first use.
    evidence_key: Path | None = None


class LogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    level: str = "INFO"
    json_lines: bool = Field(default=False, alias="json")

    @field_validator("level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        up = v.upper()
        if up not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return up


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ENFORCER_", env_nested_delimiter="__", extra="forbid",
        populate_by_name=True,
    )

    inventory: Path = Path("inventory.yaml")
    policy: Path | None = None
    profiles_dir: Path | None = None  # device profiles; default: the bundled ones
    state_dir: Path = Path("state")
    database_url: SecretStr | None = None
    instance_id: str = Field(default_factory=_default_instance_id)
    http: HttpSettings = Field(default_factory=HttpSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    provisioning: ProvisioningSettings = Field(default_factory=ProvisioningSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's content arrives as init kwargs; the environment wins over it.
        return (env_settings, init_settings)

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL: ``database_url`` or SQLite ``state_dir/enforcer.db``."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.state_dir / 'enforcer.db'}"

    def audit_key_dir(self) -> Path:
        return self.audit.key_dir or self.state_dir / "audit-keys"

    def evidence_key_path(self) -> Path:
        return self.audit.evidence_key or self.audit_key_dir() / "evidence-ed25519.pem"

    def anchor_file(self) -> Path:
        return self.audit.anchor.file or self.state_dir / "anchors" / "anchors.jsonl"

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction filter."""
        out = [s.get_secret_value() for s in [*self.webhook.secrets, *self.provisioning.secrets]]
        if self.database_url is not None:
            pw = _url_password(self.database_url.get_secret_value())
            if pw:
                out.append(pw)
        return out


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
        return str(password) if password else None
    except Exception:  # noqa: BLE001 - an unparsable URL simply has no password to hide
        return None


def _format_errors(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{key}: {msg}")
    return f"{where}: " + "; ".join(parts)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _names(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's keys by lower-case field name and alias."""
    out: dict[str, FieldInfo] = {}
    for name, info in model.model_fields.items():
        out[name.lower()] = info
        if info.alias:
            out[info.alias.lower()] = info
    return out


def env_key(var: str) -> str | None:
    """The dotted config key an ``ENFORCER_*`` variable sets, or None when it names no
    key (``ENFORCER_ENGINE__JITTER`` -> ``engine.jitter``; ``ENFORCER_BOGUS`` -> None)."""
    parts = var[len(ENV_PREFIX):].lower().split("__")
    model: type[BaseModel] | None = Settings
    for part in parts:
        info = _names(model).get(part) if model is not None else None
        if info is None:
            return None
        ann = info.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return ".".join(parts)


def unknown_env(environ: Mapping[str, str]) -> list[str]:
    """``ENFORCER_*`` variables that are neither a config key nor a known non-config
    variable (:data:`NON_CONFIG_ENV`, :data:`NON_CONFIG_ENV_PREFIXES`), sorted."""
    return sorted(
        var for var in environ
        if var.upper().startswith(ENV_PREFIX) and var.upper() not in NON_CONFIG_ENV
        and not var.upper().startswith(NON_CONFIG_ENV_PREFIXES)
        and env_key(var.upper()) is None)


def load_settings(path: Path | None) -> Settings:
    """Load settings from ``path`` (YAML) with environment overrides; no file -> defaults
    plus environment. Raises :class:`ConfigError` naming the file and the bad key, or the
    environment variable that names no key."""
    data = _read_yaml(path) if path is not None else {}
    where = str(path) if path is not None else "configuration (defaults + environment)"
    unknown = unknown_env(os.environ)
    if unknown:
        raise ConfigError(f"{where}: " + "; ".join(
            f"environment variable {var}: unknown key (not a config key; "
            "docs/configuration.md lists the keys)" for var in unknown))
    try:
        return Settings(**data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, where)) from None
    except ValueError as e:  # pydantic-settings refuses badly formed env values this way
        raise ConfigError(f"{where}: {e}") from None


def default_config() -> Settings:
    """Embedded defaults (``enforcer serve`` without ``--config``), plus environment."""
    return load_settings(None)
