"""The topology file: which devices a lab runs, their fiber nodes, how many modems and
set-tops each node has, timings, and the named subscribers (the story's among them).

Modem MACs are generated deterministically from the device's position and a counter,
so the same topology always yields the same fleet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from enforcer.domain.mac import Mac

_STRICT = ConfigDict(extra="forbid")
CMTS_DIALECTS = ("cisco-cbr8", "arris-e6000", "casa-c100g", "docsis3-generic")
HEADEND_DIALECTS = ("dncs-headend",)
# The CLI listing layouts beyond "classic", and the dialect that has each: a cBR-8 with
# Remote PHY devices ("rphy"), a Casa vCCAP ("vccap"). lab/README.md "Fidelity".
LAYOUTS = {"rphy": "cisco-cbr8", "vccap": "casa-c100g"}


class TimingsSpec(BaseModel):
    model_config = _STRICT
    reset_offline_s: float = 0.15
    ranging_s: float = 0.05
    dhcp_s: float = 0.05
    config_s: float = 0.05
    registration_s: float = 0.05
    bpi_init_s: float = 0.05
    retry_s: float = 0.5
    reboot_s: float = 1.0
    reboot_spread_s: float = 0.5
    offline_retention_s: float = 30.0
    stb_check_s: float = 0.5


class NodeSpec(BaseModel):
    model_config = _STRICT
    name: str
    modems: int = Field(0, ge=0)
    set_tops: int = Field(0, ge=0)


class DeviceSpec(BaseModel):
    model_config = _STRICT
    name: str
    dialect: Literal["cisco-cbr8", "arris-e6000", "casa-c100g", "docsis3-generic",
                     "dncs-headend"]
    nodes: list[NodeSpec] = Field(default_factory=list)
    deny_capacity: int = Field(1000, ge=1)
    count: int = Field(1, ge=1, le=1000)  # >1: devices name-1 .. name-N (scale labs)
    ssh: bool = True  # run the SSH CLI (docsis3-generic has none)
    layout: Literal["classic", "rphy", "vccap"] = "classic"  # `show cable modem` view

    @model_validator(mode="after")
    def _layout_fits_dialect(self) -> DeviceSpec:
        if self.layout != "classic" and LAYOUTS[self.layout] != self.dialect:
            raise ValueError(f"layout {self.layout!r} is a {LAYOUTS[self.layout]} view, "
                             f"not one of {self.dialect}")
        return self


class SubscriberDevice(BaseModel):
    model_config = _STRICT
    kind: Literal["cable_modem", "set_top"]
    mac: Mac
    ecm_mac: Mac | None = None  # set-tops: the embedded modem's MAC
    cmts: str
    node: str
    bpi_plus: bool = True


class Subscriber(BaseModel):
    model_config = _STRICT
    account: str
    name: str = ""
    headend: str | None = None
    devices: list[SubscriberDevice]


class Topology(BaseModel):
    model_config = _STRICT
    name: str = "lab"
    timings: TimingsSpec = Field(default_factory=TimingsSpec)
    bpi_plus_ratio: float = Field(0.9, ge=0, le=1)
    v2c: bool = True  # serve a read-only v2c community too (for net-snmp and benchmarks)
    devices: list[DeviceSpec]
    subscribers: list[Subscriber] = Field(default_factory=list)
    story_account: str | None = None  # the account the README's demo bans
    # Generated MACs carry the device's number (second and third octets), counted from
    # here. Shards of one large footprint, each served by its own lab process, give
    # each shard its own range so no two modems share a MAC (bench: sweep_million).
    first_device_number: int = Field(1, ge=1, le=0xFFFF)

    @model_validator(mode="after")
    def _device_numbers_fit(self) -> Topology:
        last = self.first_device_number + sum(d.count for d in self.devices) - 1
        if last > 0xFFFF:
            raise ValueError(f"device numbers run to {last}: a generated MAC holds "
                             "at most 65535 (lower first_device_number or the count)")
        return self

    def expanded_devices(self) -> list[DeviceSpec]:
        """Devices with ``count`` > 1 expanded to one spec per device."""
        out: list[DeviceSpec] = []
        for d in self.devices:
            if d.count == 1:
                out.append(d)
                continue
            for i in range(1, d.count + 1):
                nodes = [NodeSpec(name=f"{n.name}-{i}", modems=n.modems, set_tops=n.set_tops)
                         for n in d.nodes]
                out.append(d.model_copy(update={"name": f"{d.name}-{i}", "nodes": nodes,
                                                "count": 1}))
        return out


def load_topology(path: Path) -> Topology:
    try:
        return Topology.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as e:
        raise SystemExit(f"{path}: cannot read topology: {e}") from None
    except ValidationError as e:
        raise SystemExit(f"{path}: invalid topology:\n{e}") from None


DEFAULT_TOPOLOGY = Path(__file__).parent / "topologies" / "default.yaml"


def generated_mac(device_no: int, node_no: int, n: int, *, set_top: bool = False) -> bytes:
    """Deterministic lab MACs: locally administered (0x02), per device and node."""
    first = 0x06 if set_top else 0x02
    return bytes([first, device_no >> 8 & 0xFF, device_no & 0xFF, node_no & 0xFF,
                  n >> 8 & 0xFF, n & 0xFF])


def ecm_of(stb_mac: bytes) -> bytes:
    """A generated set-top's eCM MAC: the box MAC with the locally administered
    prefix of a modem (the box itself is 0x06...)."""
    return bytes([0x0A]) + stb_mac[1:]
