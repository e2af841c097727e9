"""A large footprint split over several lab processes: each shard numbers its devices
from ``first_device_number``, so generated MACs never repeat across shards."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.bench_sweep_million import shard_topologies
from lab.fleetbuild import build_fleet
from lab.topology import Topology, load_topology


def test_shards_hold_every_cmts_once_and_no_mac_twice(tmp_path: Path) -> None:
    paths = shard_topologies(tmp_path, cmtses=7, modems=30, shards=3)
    fleets = [build_fleet(load_topology(p)).fleet for p in paths]
    names = [n for f in fleets for n in f.cmtses]
    assert len(names) == len(set(names)) == 7
    assert [len(f.cmtses) for f in fleets] == [3, 2, 2]
    macs = [m for f in fleets for m in f.modems]
    assert len(macs) == len(set(macs)) == 7 * 30


def test_first_device_number_sets_the_mac_octets() -> None:
    topo = Topology.model_validate({
        "first_device_number": 0x0102,
        "devices": [{"name": "c", "dialect": "docsis3-generic", "ssh": False,
                     "nodes": [{"name": "n", "modems": 1}]}]})
    (mac,) = build_fleet(topo).fleet.modems
    assert mac[:3] == bytes([0x02, 0x01, 0x02])


@pytest.mark.parametrize("first,count", [(0, 1), (0xFFFF, 2), (0x10000, 1)])
def test_device_numbers_beyond_a_mac_are_refused(first: int, count: int) -> None:
    with pytest.raises(ValidationError):
        Topology.model_validate({
            "first_device_number": first,
            "devices": [{"name": "c", "dialect": "docsis3-generic", "ssh": False,
                         "count": count, "nodes": [{"name": "n", "modems": 1}]}]})
