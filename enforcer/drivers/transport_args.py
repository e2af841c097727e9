"""Inventory credentials and profile specs -> the transport layer's plain arguments
(enforcer/transport/params.py). The one place the two meet: the transport imports nothing
from ``enforcer.inventory``; drivers, the lab's clients and the benchmarks convert here."""

from __future__ import annotations

from types import MappingProxyType

from pydantic import SecretStr

from enforcer.errors import ConfigError
from enforcer.inventory.model import Inventory, SnmpCredentials, SshCredentials
from enforcer.inventory.profiles import SshTransportSpec
from enforcer.transport.params import Secret, SnmpAuth, SshLogin, SshTerminal


def _secret(s: SecretStr | None) -> Secret | None:
    return None if s is None else Secret(s.get_secret_value())


def snmp_auth(creds: SnmpCredentials) -> SnmpAuth:
    return SnmpAuth(
        version=creds.version, user=creds.user, auth_protocol=creds.auth_protocol,
        auth_password=_secret(creds.auth_password), priv_protocol=creds.priv_protocol,
        priv_password=_secret(creds.priv_password), community=_secret(creds.community),
        allow_v2c=creds.allow_v2c, allow_v2c_writes=creds.allow_v2c_writes)


def ssh_login(creds: SshCredentials) -> SshLogin:
    return SshLogin(username=creds.username, password=_secret(creds.password),
                    key_file=creds.key_file, enable_secret=_secret(creds.enable_secret))


def ssh_terminal(spec: SshTransportSpec) -> SshTerminal:
    return SshTerminal(device_type=spec.device_type,
                       conn_args=MappingProxyType(dict(spec.conn_args)), enable=spec.enable,
                       save_after_config=spec.save_after_config,
                       error_patterns=tuple(spec.error_patterns))


def snmp_target(inventory: Inventory, device_name: str) -> tuple[str, int, SnmpAuth]:
    """An inventory device's SNMP ``(host, port, auth)``; ConfigError when the device is
    unknown or its credentials have no SNMP part."""
    device = inventory.devices.get(device_name)
    if device is None:
        raise ConfigError(f"unknown device {device_name!r}")
    creds = inventory.creds(device_name).snmp
    if creds is None:
        raise ConfigError(f"device {device_name}: its credentials have no SNMP part")
    return device.host, device.snmp_port, snmp_auth(creds)
