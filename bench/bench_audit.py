"""Benchmark: the audit chain with one million entries (HMAC-keyed, SQLite).

Ours: the daemon's start-up (``enforcer.daemon.build``: migrations, keys, the chain
check from the checkpoint against the newest anchor, the ``audit.keys`` entry, a new
anchor) and its periodic check (``check-and-anchor-audit``: the same check and anchor
after 1,000 new entries), each on a database of 1,000,000 entries, and for comparison on
one of 10,000: the cost must not grow with history. Reference: a full walk of the
whole chain (``enforcer audit verify --full``'s chain walk), which does.
Target (the issue): start-up and periodic check each under 2 s at 1,000,000 entries.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import scaled_topology
from bench.registry import BenchContext, BenchResult, Figure, register
from enforcer.config import Settings
from enforcer.store.audit import GENESIS_HASH, canonical_json, entry_hash
from enforcer.store.auditkey import load_keyring
from enforcer.store.db import upgrade
from lab.testing import running_lab

TARGET_S = 2.0
BIG, SMALL, NEW = 1_000_000, 10_000, 1_000


def fill(state: Path, n: int) -> None:
    """``n`` keyed entries (written the way ``append_audit`` writes them, in bulk)."""
    url = f"sqlite:///{state / 'enforcer.db'}"
    upgrade(url)
    keys = load_keyring(state / "audit-keys")
    conn = sqlite3.connect(state / "enforcer.db")
    prev, t0 = GENESIS_HASH, datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[tuple[object, ...]] = []
    for seq in range(1, n + 1):
        at = t0 + timedelta(milliseconds=seq)
        payload = {"order_id": f"ord_{seq % 5000:05d}", "state": "verified", "i": seq}
        text = canonical_json(payload)
        h = entry_hash(seq=seq, at=at, actor="engine", action="target.verified",
                       order_id=f"ord_{seq % 5000:05d}", payload=json.loads(text),
                       prev_hash=prev, key_id=keys.current, keys=keys)
        batch.append((seq, at.replace(tzinfo=None).isoformat(sep=" "), "engine",
                      "target.verified", f"ord_{seq % 5000:05d}", text, prev, h,
                      keys.current))
        prev = h or ""
        if len(batch) == 20_000:
            conn.executemany("INSERT INTO audit_log (seq, at, actor, action, order_id, "
                             "payload, prev_hash, hash, key_id) VALUES (?,?,?,?,?,?,?,?,?)",
                             batch)
            batch.clear()
    if batch:
        conn.executemany("INSERT INTO audit_log (seq, at, actor, action, order_id, payload, "
                         "prev_hash, hash, key_id) VALUES (?,?,?,?,?,?,?,?,?)", batch)
    conn.commit()
    conn.close()


def _settings(state: Path, inventory: Path) -> Settings:
    return Settings(inventory=inventory, state_dir=state,
                    http={"listen": "127.0.0.1:0"})


def measure(state: Path, inventory: Path, rounds: int) -> dict[str, list[float]]:
    from enforcer.daemon import build

    out: dict[str, list[float]] = {"first": [], "startup": [], "periodic": [], "full": []}
    t0 = time.perf_counter()
    parts = build(_settings(state, inventory))  # first start: no checkpoint, full walk
    out["first"].append(time.perf_counter() - t0)
    parts["store"].dispose()
    for _ in range(rounds):
        t0 = time.perf_counter()
        parts = build(_settings(state, inventory))
        out["startup"].append(time.perf_counter() - t0)
        store = parts["store"]
        assert parts["metrics"].audit_chain_ok._value.get() == 1.0
        for i in range(NEW):
            store.record_event("bench", "bench.event", None, {"i": i})
        t0 = time.perf_counter()
        parts["anchor"]()
        out["periodic"].append(time.perf_counter() - t0)
        assert parts["metrics"].audit_chain_ok._value.get() == 1.0
        t0 = time.perf_counter()
        ok, _, why = store.verify_audit()
        out["full"].append(time.perf_counter() - t0)
        assert ok, why
        store.dispose()
    return out


@register("audit_chain", "Audit chain: start-up and periodic check with 1M entries")
def run(ctx: BenchContext) -> BenchResult:
    big, small = (20_000, 2_000) if ctx.smoke else (BIG, SMALL)
    rounds = max(1, min(ctx.rounds, 3))
    ctx.work.mkdir(parents=True, exist_ok=True)
    topo = scaled_topology("audit", 1, 1, ctx.work)
    results: dict[int, dict[str, list[float]]] = {}
    fill_s: dict[int, float] = {}
    with running_lab(topo, state_dir=ctx.work / "lab") as lab:
        for n in (small, big):
            state = ctx.work / f"state-{n}"
            state.mkdir(parents=True)
            t0 = time.perf_counter()
            fill(state, n)
            fill_s[n] = time.perf_counter() - t0
            results[n] = measure(state, lab.inventory_path, rounds)
    b, s = results[big], results[small]
    figures = [
        Figure(f"daemon start-up, {big:,} entries", "s", b["startup"],
               reference_samples=s["startup"], reference=f"the same with {small:,} entries",
               max_value=TARGET_S),
        Figure(f"periodic check + anchor after {NEW:,} new, {big:,} entries", "s",
               b["periodic"], reference_samples=s["periodic"],
               reference=f"the same with {small:,} entries", max_value=TARGET_S),
        Figure(f"full chain walk (audit verify --full), {big:,} entries", "s", b["full"],
               reference_samples=s["full"], reference=f"the same with {small:,} entries"),
    ]
    notes = [
        f"Databases filled in {fill_s[big]:.0f} s ({big:,}) and {fill_s[small]:.1f} s "
        f"({small:,}) by bulk inserts of keyed entries (the same hashing as append_audit).",
        f"The first start on a database with no checkpoint walks the whole chain once "
        f"(adopting it): {b['first'][0]:.1f} s at {big:,}, {s['first'][0]:.2f} s at "
        f"{small:,}; every later start and check begins at the checkpoint.",
        "Start-up includes migrations, loading the inventory and profiles and building "
        "the engine and API (nothing is started), with the chain check and anchor.",
    ]
    return BenchResult("audit_chain", "Audit chain: start-up and periodic check with 1M "
                       "entries", {"entries": big, "compare": small, "new_entries": NEW,
                                   "rounds": rounds}, figures, notes)
