"""The inventory file: devices (CMTS, headend), fiber nodes and which CMTS interfaces
serve them, and named credentials the devices refer to.

YAML shape (``enforcer-lab up --inventory-out`` writes exactly this)::

    credentials:
      lab-rw:
        snmp: {version: "3", user: enforcer, auth_protocol: SHA, auth_password: ...,
               priv_protocol: AES, priv_password: ...}
        ssh: {username: enforcer, password: ..., enable_secret: ...}
    devices:
      cbr8-1:
        kind: cmts
        profile: cisco-cbr8
        host: 127.0.0.1
        snmp_port: 16100
        ssh_port: 12200
        credentials: lab-rw
        host_key: "ssh-ed25519 AAAA..."     # pinned; absent = refused until trusted
    nodes:
      node-a1:
        serving: [{device: cbr8-1, interfaces: [1001]}]

Secrets are ``SecretStr`` and never printed. Unknown keys are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from enforcer.errors import ConfigError
from enforcer.transport.params import AuthProtocol, PrivProtocol

_STRICT = ConfigDict(extra="forbid", frozen=True)


class SnmpCredentials(BaseModel):
    """SNMPv3 authPriv (SHA/AES) by default. v2c needs ``allow_v2c``; writes over v2c
    need ``allow_v2c_writes`` as well."""

    model_config = _STRICT
    version: Literal["3", "2c"] = "3"
    user: str | None = None
    auth_protocol: AuthProtocol = "SHA"
    auth_password: SecretStr | None = None
    priv_protocol: PrivProtocol = "AES"
    priv_password: SecretStr | None = None
    community: SecretStr | None = None
    allow_v2c: bool = False
    allow_v2c_writes: bool = False

    @model_validator(mode="after")
    def _check(self) -> SnmpCredentials:
        if self.version == "3":
            if not self.user or self.auth_password is None or self.priv_password is None:
                raise ValueError("SNMPv3 needs user, auth_password and priv_password (authPriv)")
            for f in (self.auth_password, self.priv_password):
                if len(f.get_secret_value()) < 8:
                    raise ValueError("SNMPv3 passwords must be at least 8 characters")
        else:
            if not self.allow_v2c:
                raise ValueError("SNMP v2c needs an explicit allow_v2c: true on the credential")
            if self.community is None:
                raise ValueError("SNMP v2c needs a community")
        return self


class SshCredentials(BaseModel):
    model_config = _STRICT
    username: str
    password: SecretStr | None = None
    key_file: Path | None = None
    enable_secret: SecretStr | None = None


class Credentials(BaseModel):
    model_config = _STRICT
    snmp: SnmpCredentials | None = None
    ssh: SshCredentials | None = None


class Device(BaseModel):
    model_config = _STRICT
    kind: Literal["cmts", "headend", "dhcp"]
    profile: str
    host: str
    snmp_port: int = Field(161, ge=1, le=65535)
    ssh_port: int = Field(22, ge=1, le=65535)
    credentials: str
    host_key: str | None = None  # OpenSSH public key line, pinned
    enabled: bool = True
    description: str = ""


class NodeServing(BaseModel):
    model_config = _STRICT
    device: str
    interfaces: list[int] = Field(default_factory=list)  # MAC-domain ifIndexes


class Node(BaseModel):
    model_config = _STRICT
    serving: list[NodeServing]


class Inventory(BaseModel):
    model_config = _STRICT
    credentials: dict[str, Credentials] = Field(default_factory=dict)
    devices: dict[str, Device]
    nodes: dict[str, Node] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _refs(self) -> Inventory:
        for name, d in self.devices.items():
            if d.credentials not in self.credentials:
                raise ValueError(f"device {name}: unknown credentials {d.credentials!r}")
        for name, n in self.nodes.items():
            for s in n.serving:
                if s.device not in self.devices:
                    raise ValueError(f"node {name}: unknown device {s.device!r}")
        return self

    def cmtses(self) -> list[str]:
        return [n for n, d in self.devices.items() if d.kind == "cmts" and d.enabled]

    def headends(self) -> list[str]:
        return [n for n, d in self.devices.items() if d.kind == "headend" and d.enabled]

    def creds(self, device: str) -> Credentials:
        return self.credentials[self.devices[device].credentials]

    def node_devices(self, node: str) -> list[str]:
        return [s.device for s in self.nodes[node].serving]

    def secret_values(self) -> list[str]:
        """Every device secret (SNMP keys and community, SSH and enable passwords), for
        the log redaction filter."""
        out: list[str] = []
        for c in self.credentials.values():
            for s in (c.snmp and c.snmp.auth_password, c.snmp and c.snmp.priv_password,
                      c.snmp and c.snmp.community, c.ssh and c.ssh.password,
                      c.ssh and c.ssh.enable_secret):
                if s:
                    out.append(s.get_secret_value())
        return out


def load_inventory(path: Path) -> Inventory:
    """Load and validate an inventory file; errors name the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read inventory: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: an inventory is a mapping with devices and nodes")
    try:
        return Inventory.model_validate(raw)
    except ValidationError as e:
        errs = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"{path}: invalid inventory: {errs}") from None


def dump_inventory(inv: Inventory) -> str:
    """YAML text with secrets revealed (for writing the file, mode 0600)."""
    data = inv.model_dump(mode="python", exclude_none=True)

    def reveal(x: object) -> object:
        if isinstance(x, SecretStr):
            return x.get_secret_value()
        if isinstance(x, dict):
            return {k: reveal(v) for k, v in x.items()}
        if isinstance(x, list):
            return [reveal(v) for v in x]
        if isinstance(x, Path):
            return str(x)
        return x

    return yaml.safe_dump(reveal(data), sort_keys=False)
