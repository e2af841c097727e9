"""One exception root for the enforcer, mirroring its layers.

    EnforcerError
    +-- ConfigError                 config, policy, inventory or profile file is invalid
    |   +-- ProfileError            a device profile failed validation (file, line, reason)
    |   +-- MibError                an object name the compiled MIB index does not know
    +-- InputError                  a request or argument from a person or system is invalid
    |   +-- MacError                a MAC address cannot be parsed or is not a unicast MAC
    +-- StoreError                  the database refused or lost something
    +-- TransportError              talking to a device failed (carries device, and OID / command)
    |   +-- DeviceUnreachable       no answer within timeout and retries
    |   +-- SnmpError               the agent answered with an error
    |   |   +-- SnmpAuthError       wrong credentials, unknown user/engine, not in time window
    |   |   +-- SnmpStatusError     a non-zero error-status (noCreation, resourceUnavailable, ...)
    |   +-- SshError                SSH or CLI level failure
    |       +-- HostKeyError        unknown or changed SSH host key (never auto-accepted)
    |       +-- CliCommandError     the device rejected a command
    +-- DriverError                 a mechanism could not be applied / removed / read back
        +-- CapacityError           a device table (e.g. a deny list) is full

Third-party errors are translated at the boundary with ``raise ... from``.
Messages never contain secrets.
"""

from __future__ import annotations


class EnforcerError(Exception):
    """Root of every error the enforcer raises on purpose."""


class ConfigError(EnforcerError):
    """A configuration, policy, inventory or profile file is invalid."""


class ProfileError(ConfigError):
    """A device profile failed validation."""


class MibError(ConfigError):
    """A MIB object name (or OID) the compiled index (enforcer/mib) does not know, or an
    index that does not match mibs/."""


class InputError(EnforcerError):
    """Input from a person or another system is invalid."""


class MacError(InputError, ValueError):
    """A MAC address cannot be parsed, or is not usable (broadcast, multicast, zero)."""


class StoreError(EnforcerError):
    """The database refused or lost something."""


class TransportError(EnforcerError):
    """Talking to a device failed."""

    def __init__(self, message: str, *, device: str | None = None, detail: str | None = None):
        self.device = device
        self.detail = detail
        prefix = f"{device}: " if device else ""
        super().__init__(prefix + message + (f" ({detail})" if detail else ""))


class DeviceUnreachable(TransportError):
    """No answer from the device within the timeout and retries."""


class SnmpError(TransportError):
    """The SNMP agent answered with an error status, or a PDU could not be decoded."""


class SnmpAuthError(SnmpError):
    """SNMPv3 USM refused us: wrong credentials, unknown user/engine, not in time window."""


class SnmpStatusError(SnmpError):
    """The agent answered with a non-zero error-status (RFC 3416), e.g. noCreation:
    ``status`` is its RFC 3416 name, ``oid`` the varbind the error-index points at."""

    def __init__(self, *, device: str, op: str, oid: str, status: str) -> None:
        self.status = status
        self.oid = oid
        super().__init__(f"{op} {oid} -> {status}", device=device)


class SshError(TransportError):
    """SSH session or CLI failure."""


class HostKeyError(SshError):
    """The device presented an unknown or changed SSH host key. ``reason`` is
    ``"unknown"`` (nothing pinned, or not readable) or ``"changed"`` (differs from the
    pin); ``presented`` is the presented key's SHA256 fingerprint when known."""

    def __init__(self, message: str, *, device: str | None = None, detail: str | None = None,
                 reason: str = "unknown", presented: str | None = None):
        self.reason = reason
        self.presented = presented
        super().__init__(message, device=device, detail=detail)


class CliCommandError(SshError):
    """The device rejected a CLI command."""


class DriverError(EnforcerError):
    """A mechanism could not be applied, removed or read back."""


class CapacityError(DriverError):
    """A device table (deny list, hotlist) is full."""
