"""The lab's SSH command lines: simulated CMTS and headend CLIs that real clients
(netmiko, OpenSSH) drive, one port per device, all in one asyncio process.

``SshDevice`` (``lab.ssh.server``) serves a device; ``lab.ssh.shell`` is the line
engine; ``lab.ssh.dialects`` holds each vendor's prompts, errors and commands.
"""

from lab.ssh.dialects import DIALECTS, NETMIKO_DEVICE_TYPES
from lab.ssh.server import CliFaults, SessionRecord, SshDevice
from lab.ssh.shell import Shell

__all__ = ["DIALECTS", "NETMIKO_DEVICE_TYPES", "CliFaults", "SessionRecord", "Shell",
           "SshDevice"]
