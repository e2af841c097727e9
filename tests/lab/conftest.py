"""Fixtures for the lab SNMP agent tests (all named ``snmp_agent_*``)."""

from __future__ import annotations

import asyncio
import threading
from bisect import insort
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from lab.snmp.agent import AgentFaults, SnmpAgent, UsmUser
from lab.snmp.mibtree import Column, ErrorStatus, MibTree, Scalar, SetError, Syntax, Table

T = TypeVar("T")
OID = tuple[int, ...]

ENT = (1, 3, 6, 1, 4, 1, 99999)
ROWS_ENTRY = (*ENT, 10, 1)
PAIRS_ENTRY = (*ENT, 20, 1)
ENGINE_ID = bytes.fromhex("80001f8880aabbccdd01")


class SnmpAgentLoop:
    """An asyncio loop in a daemon thread hosting agents, so tests can call blocking
    clients (net-snmp subprocesses, ``asyncio.run`` pysnmp code) from the main thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.agents: list[SnmpAgent] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_agent(
        self,
        tree: MibTree,
        *,
        host: str = "127.0.0.1",
        communities: dict[str, Any] | None = None,
        users: list[UsmUser] | None = None,
        engine_id: bytes = ENGINE_ID,
        faults: AgentFaults | None = None,
        name: str = "test",
    ) -> SnmpAgent:
        agent = SnmpAgent(
            tree,
            communities=communities if communities is not None else default_communities(),
            users=users if users is not None else default_users(),
            engine_id=engine_id,
            faults=faults,
            name=name,
        )
        self.run(agent.start(host, 0))
        self.agents.append(agent)
        return agent

    def close(self) -> None:
        for agent in self.agents:
            self.run(agent.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def default_communities() -> dict[str, Any]:
    return {"public": "ro", "private": "rw"}


def default_users() -> list[UsmUser]:
    return [
        UsmUser("admin", "SHA", "authpass123", "AES", "privpass123", "rw"),
        UsmUser("reader", "SHA", "readpass123", "AES", "readpriv123", "ro"),
        UsmUser("strong", "SHA-256", "strongauth1", "AES-256", "strongpriv1", "rw"),
        UsmUser("authonly", "SHA-512", "authonly123", None, None, "ro"),
        UsmUser("noauth", None, None, None, None, "ro"),
    ]


@dataclass
class SnmpAgentModel:
    """A small synthetic device: a few scalars, a creatable table, a two-part-index table."""

    sys_name: bytes = b"cmts-1"
    ip: bytes = bytes((10, 0, 0, 1))
    rows: list[OID] = field(default_factory=lambda: [(i,) for i in range(1, 51)])
    macs: dict[OID, bytes] = field(default_factory=dict)
    status: dict[OID, int] = field(default_factory=dict)
    pairs: list[OID] = field(default_factory=lambda: [(1, 1), (1, 2), (2, 5), (3, 1)])
    tree: MibTree = field(default_factory=MibTree)

    def __post_init__(self) -> None:
        for r in self.rows:
            self.macs[r] = bytes((0, 0x11, 0x22, 0x33, 0x44, r[0]))
            self.status[r] = 6
        t = self.tree
        t.add(Scalar((1, 3, 6, 1, 2, 1, 1, 1), Syntax.OCTET_STRING, lambda: b"lab CMTS"))
        t.add(Scalar((1, 3, 6, 1, 2, 1, 1, 3), Syntax.TIMETICKS, lambda: 123456))
        t.add(
            Scalar(
                (1, 3, 6, 1, 2, 1, 1, 5),
                Syntax.OCTET_STRING,
                lambda: self.sys_name,
                set=self._set_name,
                validate=self._validate_name,
            )
        )
        t.add(Scalar((*ENT, 1), Syntax.OBJECT_IDENTIFIER, lambda: (*ENT, 7, 7)))
        t.add(Scalar((*ENT, 2), Syntax.IP_ADDRESS, lambda: self.ip, set=self._set_ip))
        t.add(Scalar((*ENT, 3), Syntax.COUNTER64, lambda: 2**64 - 1))
        t.add(Scalar((*ENT, 4), Syntax.INTEGER, lambda: 0, set=self._fail))
        t.add(
            Table(
                ROWS_ENTRY,
                [
                    Column(
                        2,
                        Syntax.OCTET_STRING,
                        self.macs.get,
                        set=self._set_mac,
                        validate=self._validate_mac,
                    ),
                    Column(
                        3,
                        Syntax.INTEGER,
                        self.status.get,
                        set=self._set_status,
                        validate=self._validate_status,
                    ),
                    Column(4, Syntax.UNSIGNED32, lambda i: i[0] * 1000),
                    Column(5, Syntax.COUNTER32, lambda i: i[0] if i[0] % 2 else None),
                    Column(
                        9,
                        Syntax.INTEGER,
                        lambda i: 1,
                        set=self._row_status,
                        validate=self._validate_row_status,
                        creates_row=True,
                    ),
                ],
                lambda: self.rows,
                create=self._create,
                index_len=1,
            )
        )
        t.add(
            Table(
                PAIRS_ENTRY,
                [Column(1, Syntax.INTEGER, lambda i: i[0] * 10 + i[1], set=lambda i, v: None)],
                lambda: self.pairs,
                index_len=2,
            )
        )

    # callbacks -------------------------------------------------------------------------------
    def _set_name(self, v: bytes) -> None:
        self.sys_name = v

    def _validate_name(self, v: bytes) -> None:
        if v == b"forbidden":
            raise SetError(ErrorStatus.inconsistentValue, "name reserved")

    def _set_ip(self, v: bytes) -> None:
        self.ip = v

    def _fail(self, v: int) -> None:
        raise RuntimeError("simulated commit failure")

    def _set_mac(self, i: OID, v: bytes) -> None:
        self.macs[i] = v

    def _validate_mac(self, i: OID, v: bytes) -> None:
        if len(v) != 6:
            raise SetError(ErrorStatus.wrongLength)

    def _set_status(self, i: OID, v: int) -> None:
        self.status[i] = v

    def _validate_status(self, i: OID, v: int) -> None:
        if not 1 <= v <= 6:
            raise SetError(ErrorStatus.wrongValue)

    def _validate_row_status(self, i: OID, v: int) -> None:
        exists = i in self.status
        if (not exists and v not in (4, 5)) or (exists and v not in (1, 6)):
            raise SetError(ErrorStatus.inconsistentValue)

    def _row_status(self, i: OID, v: int) -> None:
        if v == 6:
            self.rows.remove(i)
            del self.macs[i], self.status[i]

    def _create(self, i: OID, values: dict[int, Any]) -> None:
        insort(self.rows, i)
        self.macs[i] = values.get(2, bytes(6))
        self.status[i] = values.get(3, 1)

    def instances(self) -> list[tuple[OID, Any]]:
        """Every instance in lexicographic order, computed independently of MibTree."""
        out: list[tuple[OID, Any]] = [
            ((1, 3, 6, 1, 2, 1, 1, 1, 0), b"lab CMTS"),
            ((1, 3, 6, 1, 2, 1, 1, 3, 0), 123456),
            ((1, 3, 6, 1, 2, 1, 1, 5, 0), self.sys_name),
            ((*ENT, 1, 0), (*ENT, 7, 7)),
            ((*ENT, 2, 0), self.ip),
            ((*ENT, 3, 0), 2**64 - 1),
            ((*ENT, 4, 0), 0),
        ]
        for r in self.rows:
            out.append(((*ROWS_ENTRY, 2, *r), self.macs[r]))
        for r in self.rows:
            out.append(((*ROWS_ENTRY, 3, *r), self.status[r]))
        for r in self.rows:
            out.append(((*ROWS_ENTRY, 4, *r), r[0] * 1000))
        for r in self.rows:
            if r[0] % 2:
                out.append(((*ROWS_ENTRY, 5, *r), r[0]))
        for r in self.rows:
            out.append(((*ROWS_ENTRY, 9, *r), 1))
        for p in self.pairs:
            out.append(((*PAIRS_ENTRY, 1, *p), p[0] * 10 + p[1]))
        return out


@pytest.fixture
def snmp_agent_loop() -> Iterator[SnmpAgentLoop]:
    runner = SnmpAgentLoop()
    yield runner
    runner.close()


@pytest.fixture
def snmp_agent_model_factory() -> type[SnmpAgentModel]:
    return SnmpAgentModel


@pytest.fixture
def snmp_agent_model() -> SnmpAgentModel:
    return SnmpAgentModel()


@pytest.fixture
def snmp_agent_running(
    snmp_agent_loop: SnmpAgentLoop, snmp_agent_model: SnmpAgentModel
) -> tuple[SnmpAgent, SnmpAgentModel]:
    agent = snmp_agent_loop.start_agent(snmp_agent_model.tree)
    return agent, snmp_agent_model
