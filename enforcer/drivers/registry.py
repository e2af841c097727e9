"""Drivers by profile kind, built from inventory + profiles (docs/architecture.md §P3: the
registry's dict lives on an instance, never on a class)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from enforcer.drivers.base import DeviceDriver
from enforcer.drivers.headend import HeadendDriver
from enforcer.drivers.kea import KeaDriver
from enforcer.drivers.profile_driver import Factory, ProfileDriver
from enforcer.drivers.render import Scrubber
from enforcer.drivers.transport_args import snmp_auth, ssh_login, ssh_terminal
from enforcer.errors import ConfigError, HostKeyError
from enforcer.inventory.model import Inventory
from enforcer.inventory.profiles import Profile
from enforcer.transport.base import (
    Backoff,
    CliSession,
    DeviceLimiter,
    SnmpSession,
    TransportMetrics,
)
from enforcer.transport.fastsnmp import FastSnmpClient, RequestBudget
from enforcer.transport.hybrid import HybridSession
from enforcer.transport.snmp import PysnmpSession, SnmpEngineHandle
from enforcer.transport.ssh import NetmikoSession

DriverClass = Callable[..., DeviceDriver]
#: The SSH host key line pinned in the store (``enforcer devices trust``), by device.
PinLookup = Callable[[str], str | None]
#: Told about every refused host key (alert metric, audit entry), then it is re-raised.
HostKeyAlert = Callable[[str, HostKeyError], Awaitable[None]]


class DriverRegistry:
    """Profile kind -> driver class."""

    def __init__(self) -> None:
        self._kinds: dict[str, DriverClass] = {"cmts": ProfileDriver, "headend": HeadendDriver,
                                               "dhcp": KeaDriver}

    def build(self, device_name: str, inventory: Inventory, profiles: dict[str, Profile], *,
              snmp_engine: SnmpEngineHandle, state_dir: Path,
              metrics: TransportMetrics | None = None,
              source_address: str | None = None, pinned: PinLookup | None = None,
              on_host_key_error: HostKeyAlert | None = None) -> DeviceDriver:
        """``pinned`` supplies the stored pin when the inventory has no ``host_key`` (the
        inventory's pin always wins); it is read at every session open, so a new
        ``devices trust`` takes effect without a restart. ``on_host_key_error`` hears of
        every refused host key before the error propagates."""
        device = inventory.devices.get(device_name)
        if device is None:
            raise ConfigError(f"unknown device {device_name!r}")
        profile = profiles.get(device.profile)
        if profile is None:
            raise ConfigError(f"{device_name}: unknown profile {device.profile!r}")
        cls = self._kinds.get(profile.kind)
        if cls is None:
            raise ConfigError(f"{device_name}: no driver for profile kind {profile.kind!r}")
        creds = inventory.creds(device_name)
        limits = profile.limits
        limiter = DeviceLimiter(
            device_name, max_sessions=limits.max_sessions,
            resets_per_minute=limits.resets_per_minute, metrics=metrics,
            backoff=Backoff(limits.retry_attempts, limits.backoff_base_s, limits.backoff_cap_s))
        snmp: Factory[SnmpSession] | None = None
        snmp_spec, snmp_creds = profile.transports.snmp, creds.snmp
        if snmp_spec is not None and snmp_creds is not None:
            async def snmp() -> SnmpSession:
                # The lean BER client (transport/hybrid.py); pysnmp writes if asked.
                assert snmp_spec is not None and snmp_creds is not None
                auth = snmp_auth(snmp_creds)
                writer = None
                if snmp_spec.writer == "pysnmp":
                    writer = await PysnmpSession.open(
                        snmp_engine, device_name, device.host, device.snmp_port, auth,
                        timeout_s=snmp_spec.timeout_s, retries=snmp_spec.retries,
                        max_repetitions=snmp_spec.max_repetitions, metrics=metrics,
                        source_address=source_address)
                reader = FastSnmpClient(
                    device.host, device.snmp_port, auth, device=device_name,
                    max_repetitions=snmp_spec.max_repetitions, timeout_s=snmp_spec.timeout_s,
                    retries=snmp_spec.retries, source_address=source_address,
                    walk_ranges=snmp_spec.walk_ranges,
                    budget=RequestBudget(max_in_flight=limits.max_sessions * 2))
                return HybridSession(reader, writer, metrics=metrics)
        cli: Factory[CliSession] | None = None
        ssh_spec, ssh_creds = profile.transports.ssh, creds.ssh
        if ssh_spec is not None and ssh_creds is not None:
            known_hosts = state_dir / "known_hosts" / device_name

            async def cli() -> CliSession:
                assert ssh_spec is not None and ssh_creds is not None
                host_key = device.host_key
                if host_key is None and pinned is not None:
                    host_key = await asyncio.to_thread(pinned, device_name)
                try:
                    return await NetmikoSession.open(
                        device_name, device.host, device.ssh_port, ssh_login(ssh_creds),
                        ssh_terminal(ssh_spec),
                        host_key=host_key, known_hosts=known_hosts, metrics=metrics,
                        source_address=source_address)
                except HostKeyError as e:
                    if on_host_key_error is not None:
                        await on_host_key_error(device_name, e)
                    raise
        secrets = [s.get_secret_value() for s in (
            snmp_creds and snmp_creds.auth_password, snmp_creds and snmp_creds.priv_password,
            snmp_creds and snmp_creds.community, ssh_creds and ssh_creds.password,
            ssh_creds and ssh_creds.enable_secret) if s]
        # a dhcp device's host is its Kea control socket path (docs/dhcp.md)
        extra: dict[str, Any] = {"socket_path": device.host} if profile.kind == "dhcp" \
            else {}
        driver: DeviceDriver = cls(device_name, profile, limiter=limiter, snmp=snmp, cli=cli,
                                   scrub=Scrubber(secrets), **extra)
        return driver


def build_driver(device_name: str, inventory: Inventory, profiles: dict[str, Profile], *,
                 snmp_engine: SnmpEngineHandle, state_dir: Path,
                 metrics: TransportMetrics | None = None,
                 source_address: str | None = None, pinned: PinLookup | None = None,
                 on_host_key_error: HostKeyAlert | None = None) -> DeviceDriver:
    """The driver for one inventory device, by its profile's kind."""
    return DriverRegistry().build(device_name, inventory, profiles, snmp_engine=snmp_engine,
                                  state_dir=state_dir, metrics=metrics,
                                  source_address=source_address, pinned=pinned,
                                  on_host_key_error=on_host_key_error)
