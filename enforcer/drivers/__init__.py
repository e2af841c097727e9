"""Enforcement drivers: one Protocol (DeviceDriver), one profile-driven
implementation, results that fail closed. See docs/profiles.md."""

from enforcer.drivers.base import DeviceDriver, Observation, PushResult
from enforcer.drivers.headend import HeadendDriver
from enforcer.drivers.profile_driver import ProfileDriver
from enforcer.drivers.registry import DriverRegistry, build_driver

__all__ = [
    "DeviceDriver",
    "DriverRegistry",
    "HeadendDriver",
    "Observation",
    "ProfileDriver",
    "PushResult",
    "build_driver",
]
