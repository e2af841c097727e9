"""A tiny benchmark registry: each benchmark module registers a function that runs its own
side and its reference side by side and returns figures with targets.

To add a benchmark (e.g. "ban latency"): write ``bench/bench_<name>.py`` with a function
``def run(ctx: BenchContext) -> BenchResult`` decorated with ``@register("<name>", title)``
and add the module to :data:`BENCHMARK_MODULES`.
"""

from __future__ import annotations

import importlib
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCHMARK_MODULES = (
    "bench.bench_lab_agent",
    "bench.bench_sweep",
    "bench.bench_footprint",
    "bench.bench_sweep_million",
    "bench.bench_many_bans",
    "bench.bench_ban_latency",
    "bench.bench_intake",
    "bench.bench_audit",
    "bench.bench_codec",
    "bench.bench_black_box",
)


@dataclass
class Figure:
    """One measured figure: our median, optionally a reference median and a target."""

    name: str
    unit: str
    samples: list[float]
    reference_samples: list[float] = field(default_factory=list)
    reference: str = ""  # what the reference is, e.g. "net-snmp snmpbulkwalk"
    max_ratio: float | None = None  # target: value / reference at most this
    max_value: float | None = None  # target: value at most this

    @property
    def value(self) -> float:
        return statistics.median(self.samples)

    @property
    def reference_value(self) -> float | None:
        return statistics.median(self.reference_samples) if self.reference_samples else None

    @property
    def ratio(self) -> float | None:
        ref = self.reference_value
        return self.value / ref if ref else None

    @property
    def target(self) -> str:
        parts = []
        if self.max_ratio is not None:
            parts.append(f"ratio <= {self.max_ratio:g}")
        if self.max_value is not None:
            parts.append(f"<= {self.max_value:g} {self.unit}")
        return ", ".join(parts)

    def passed(self) -> bool | None:
        """None when the figure has no target."""
        if self.max_ratio is None and self.max_value is None:
            return None
        ok = True
        if self.max_ratio is not None:
            ok = ok and self.ratio is not None and self.ratio <= self.max_ratio
        if self.max_value is not None:
            ok = ok and self.value <= self.max_value
        return ok

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(median=self.value, reference_median=self.reference_value, ratio=self.ratio,
                 target=self.target, passed=self.passed())
        return d


@dataclass
class BenchResult:
    name: str
    title: str
    params: dict[str, Any]
    figures: list[Figure]
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchContext:
    """What a run gives a benchmark: smoke (tiny sizes, targets not judged), the number of
    rounds, and a scratch directory for lab state."""

    smoke: bool
    rounds: int
    work: Path


BenchFn = Callable[[BenchContext], BenchResult]


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    run: BenchFn


REGISTRY: dict[str, Benchmark] = {}


def register(name: str, title: str) -> Callable[[BenchFn], BenchFn]:
    def deco(fn: BenchFn) -> BenchFn:
        REGISTRY[name] = Benchmark(name, title, fn)
        return fn

    return deco


def load_all() -> dict[str, Benchmark]:
    for module in BENCHMARK_MODULES:
        importlib.import_module(module)
    return REGISTRY
