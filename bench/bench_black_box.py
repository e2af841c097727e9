"""Benchmark: 100 bans at once as a user sees them (issue "Performance, round two", first
three figures), from outside the daemon.

Everything a user would do, nothing more: ``enforcer-lab up`` (the default topology,
``lab/topologies/default.yaml``) and ``enforcer serve --config examples/lab.yaml`` as
subprocesses (the environment only moves the inventory, the state directory and the
listen port out of the way and gives a webhook secret), an auditor token from ``enforcer
users add``, webhooks signed here (Standard Webhooks, HMAC-SHA256, own code) and sent
with the standard library's HTTP client, orders read through ``GET /v1/orders``. No
import from ``enforcer``; from ``lab`` only the topology reader and its deterministic
MAC numbering (the lab's documented scheme), to name real modems.

Per round, two phases, each on a fresh lab and daemon (the default topology has 40
modems on its smallest CMTS, too few for two batches of 25):

- ``latency``: warm-up (one ban per CMTS, then up to 10 s after start), then 100 signed
  webhooks posted together from 16 client threads, 25 distinct modems on each of the
  four CMTSes (reason ``fraud``, the policy's default scope ``node``, the modem's node
  named); ``GET /v1/orders?state=verified`` every 100 ms until all are verified. Server
  latency: each order's ``verified_at - created_at``; client latency: 202 received ->
  ``verified`` seen (carries up to 0.1 s of polling bias).
- ``intake``: the same 100 at once, and from the last 202 on an open-loop stream of
  further signed webhooks at 50/s (each banning another real modem of the lab) until the
  100 are verified: acceptance = scheduled send -> 202 of each stream webhook.

Reference (same run): the lab's simulated re-registration time, a constant of its
timings (targets: p50 <= 1.0 s, p99 <= 2.0 s server side; client p50 <= 1.5 s; stream
202 p99 <= 25 ms). Machine load (``/proc/loadavg``) is recorded before each phase: on a
shared 2-core machine the figures move with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench.common import ROOT
from bench.registry import BenchContext, BenchResult, Figure, register
from lab.topology import CMTS_DIALECTS, generated_mac, load_topology

TOPOLOGY = ROOT / "lab" / "topologies" / "default.yaml"
CONFIG = ROOT / "examples" / "lab.yaml"
PER_CMTS = 25
CLIENT_THREADS = 16
POLL_S = 0.1
STREAM_RATE = 50.0
WARM_UNTIL_S = 10.0  # after /readyz: past the daemon's first periodic passes
START_TIMEOUT_S = 60.0
BATCH_TIMEOUT_S = 120.0
MAX_ROUNDS = 3


def _exe(name: str) -> str:
    """The installed console script (next to this interpreter in a virtualenv)."""
    here = Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name!r} is not installed (pip install -e .)")
    return found


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


# ---- the user's side: signer and HTTP client ---------------------------------------------

def sign(key: bytes, webhook_id: str, ts: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body``."""
    mac = hmac.new(key, f"{webhook_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Http:
    """One keep-alive HTTP/1.1 connection to the daemon (one per thread)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class Modem:
    mac: str
    cmts: str
    node: str


def lab_modems(topology: Path) -> dict[str, list[Modem]]:
    """The topology's generated cable modems per CMTS, round-robin over its nodes (the
    lab numbers devices and nodes from 1 in topology order, modems from 0)."""
    topo = load_topology(topology)
    out: dict[str, list[Modem]] = {}
    for dev_no, d in enumerate(topo.expanded_devices(), start=1):
        if d.dialect not in CMTS_DIALECTS:
            continue
        per_node = [[Modem(":".join(f"{b:02x}" for b in generated_mac(dev_no, node_no, i)),
                           d.name, n.name) for i in range(n.modems)]
                    for node_no, n in enumerate(d.nodes, start=1)]
        out[d.name] = [m for row in _zip_longest(per_node) for m in row]
    return out


def _zip_longest(lists: list[list[Modem]]) -> list[list[Modem]]:
    return [[lst[i] for lst in lists if i < len(lst)]
            for i in range(max((len(lst) for lst in lists), default=0))]


def ban_body(m: Modem, ticket: str) -> bytes:
    return json.dumps({"ticket": ticket, "account": f"ACC-{ticket}", "reason": "fraud",
                       "node": m.node, "devices": [{"mac": m.mac, "kind": "cable_modem"}],
                       "requested_by": "black-box benchmark"}).encode()


# ---- lab and daemon as subprocesses --------------------------------------------------------

@dataclass
class Stack:
    lab: subprocess.Popen[bytes]
    daemon: subprocess.Popen[bytes]
    port: int
    key: bytes
    token: str
    work: Path
    started: float

    def stop(self) -> None:
        for p in (self.daemon, self.lab):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_stack(work: Path) -> Stack:
    """``enforcer-lab up`` (default topology, free loopback ports) and ``enforcer serve
    --config examples/lab.yaml``; wait until /readyz answers 200 (bounded)."""
    work.mkdir(parents=True, exist_ok=True)
    lab_dir = work / "lab"
    lab_dir.mkdir(exist_ok=True)
    (lab_dir / "lab.json").unlink(missing_ok=True)
    inv = lab_dir / "inventory.yaml"
    lab_log = open(work / "lab.log", "wb")  # noqa: SIM115 - the child keeps it
    lab = subprocess.Popen([_exe("enforcer-lab"), "up", "--topology", str(TOPOLOGY),
                            "--inventory-out", str(inv), "--state-dir", str(lab_dir),
                            "--snmp-base", "0", "--ssh-base", "0", "--control-port", "0"],
                           stdout=lab_log, stderr=subprocess.STDOUT,
                           env={**os.environ, "COLUMNS": "200"})
    lab_log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (lab_dir / "lab.json").exists():
        if lab.poll() is not None or time.monotonic() > deadline:
            lab.kill()
            raise RuntimeError("lab did not start: "
                               + (work / "lab.log").read_text()[-2000:])
        time.sleep(0.05)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    port = _free_port()
    env = {**os.environ, "ENFORCER_INVENTORY": str(inv),
           "ENFORCER_STATE_DIR": str(work / "state"),
           "ENFORCER_HTTP__LISTEN": f"127.0.0.1:{port}",
           "ENFORCER_WEBHOOK__SECRETS": json.dumps([secret])}
    cfg = ["--config", str(CONFIG)]
    out = subprocess.run([_exe("enforcer"), "users", "add", "bench-auditor", "--role",
                          "auditor", "--json", *cfg], env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    token = str(json.loads(out)["token"])
    daemon_log = open(work / "enforcer.log", "wb")  # noqa: SIM115 - the child keeps it
    daemon = subprocess.Popen([_exe("enforcer"), "serve", *cfg], env=env,
                              stdout=daemon_log, stderr=subprocess.STDOUT)
    daemon_log.close()
    stack = Stack(lab, daemon, port, base64.b64decode(secret.removeprefix("whsec_")), token,
                  work, 0.0)
    conn = None
    try:
        while True:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("enforcer serve not ready: "
                                   + (work / "enforcer.log").read_text()[-2000:])
            try:
                conn = conn or Http(port)
                if conn.request("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                conn = None
            time.sleep(0.1)
    except BaseException:
        stack.stop()
        raise
    finally:
        if conn:
            conn.close()
    stack.started = time.monotonic()
    return stack


# ---- the measurement --------------------------------------------------------------------

@dataclass
class Batch:
    server: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    stream: list[float] = field(default_factory=list)  # stream webhook send -> 202 (s)
    stream_refused: int = 0
    span_s: float = 0.0  # first post -> last verified seen
    load: str = ""
    daemon_cpu_s: float = 0.0  # CPU the daemon and the lab used during the batch
    lab_cpu_s: float = 0.0


def post_ban(http: Http, key: bytes, m: Modem, ticket: str) -> str:
    raw = ban_body(m, ticket)
    wid = f"msg_{uuid.uuid4().hex}"
    ts = int(time.time())
    status, body = http.request("POST", "/v1/hooks/escalation", raw, {
        "webhook-id": wid, "webhook-timestamp": str(ts),
        "webhook-signature": sign(key, wid, ts, raw), "content-type": "application/json"})
    if status != 202:
        raise RuntimeError(f"webhook answered {status}: {body[:300]!r}")
    return str(json.loads(body)["order_id"])


def _latency(o: dict[str, Any]) -> float:
    return (datetime.fromisoformat(o["verified_at"])
            - datetime.fromisoformat(o["created_at"])).total_seconds()


def _thread_http(port: int, local: threading.local) -> Http:
    h: Http | None = getattr(local, "http", None)
    if h is None:
        h = local.http = Http(port)
    return h


def warm_up(stack: Stack, modems: list[Modem], until_s: float = WARM_UNTIL_S) -> None:
    """One ban per CMTS, verified, then wait until ``until_s`` after start."""
    http = Http(stack.port)
    auth = {"authorization": f"Bearer {stack.token}"}
    try:
        ids = {post_ban(http, stack.key, m, f"warm-{i}") for i, m in enumerate(modems)}
        deadline = time.monotonic() + BATCH_TIMEOUT_S
        while True:
            _s, body = http.request("GET", "/v1/orders?state=verified&limit=1000",
                                    headers=auth)
            if ids <= {o["id"] for o in json.loads(body)["orders"]}:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("warm-up bans not verified in time")
            time.sleep(POLL_S)
    finally:
        http.close()
    time.sleep(max(0.0, stack.started + until_s - time.monotonic()))


def batch(stack: Stack, modems: list[Modem], tag: str,
          stream_modems: list[Modem] | None = None, stream_rate: float = STREAM_RATE
          ) -> Batch:
    """Post ``modems`` at once from 16 threads, poll until all verified; with
    ``stream_modems``, an open-loop 50/s webhook stream from the last 202 on."""
    res = Batch(load=loadavg())
    local = threading.local()
    auth = {"authorization": f"Bearer {stack.token}"}

    def one(i: int, m: Modem) -> tuple[str, float]:
        oid = post_ban(_thread_http(stack.port, local), stack.key, m, f"{tag}-{i:03d}")
        return oid, time.perf_counter()

    all_verified = threading.Event()
    cpu0 = cpu_s(stack.daemon.pid), cpu_s(stack.lab.pid)
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        t0 = time.perf_counter()
        got = list(pool.map(one, range(len(modems)), modems))
        t202 = dict(got)
        stream_futs = []
        if stream_modems:
            def streamed(j: int, m: Modem, at: float) -> float | None:
                try:
                    post_ban(_thread_http(stack.port, local), stack.key, m, f"{tag}-s{j:03d}")
                except RuntimeError:
                    return None
                return time.perf_counter() - at

            def schedule() -> None:
                start = time.perf_counter()
                for j, m in enumerate(stream_modems):
                    at = start + j / stream_rate
                    time.sleep(max(0.0, at - time.perf_counter()))
                    if all_verified.is_set():
                        break
                    stream_futs.append(pool.submit(streamed, j, m, at))

            scheduler = threading.Thread(target=schedule, daemon=True)
            scheduler.start()
        poller = Http(stack.port)
        seen: dict[str, dict[str, Any]] = {}
        try:
            k = 0
            while len(seen) < len(t202):
                _s, body = poller.request("GET", "/v1/orders?state=verified&limit=1000",
                                          headers=auth)
                now = time.perf_counter()
                for o in json.loads(body)["orders"]:
                    if o["id"] in t202 and o["id"] not in seen:
                        seen[o["id"]] = o
                        res.client.append(now - t202[o["id"]])
                if now - t0 > BATCH_TIMEOUT_S:
                    raise RuntimeError(f"{tag}: {len(seen)} of {len(t202)} verified in "
                                       f"{BATCH_TIMEOUT_S:g} s")
                k += 1
                time.sleep(max(0.0, t0 + k * POLL_S - time.perf_counter()))
            res.span_s = time.perf_counter() - t0
            res.daemon_cpu_s = cpu_s(stack.daemon.pid) - cpu0[0]
            res.lab_cpu_s = cpu_s(stack.lab.pid) - cpu0[1]
        finally:
            all_verified.set()
            poller.close()
        if stream_modems:
            scheduler.join(timeout=30)
            for f in stream_futs:
                v = f.result(timeout=60)
                if v is None:
                    res.stream_refused += 1
                else:
                    res.stream.append(v)
    res.server = [_latency(o) for o in seen.values()]
    return res


def rereg_s(topology: Path) -> float:
    """The lab's re-registration time (reset to operational, BPI+), from the topology."""
    t = yaml.safe_load(topology.read_text())["timings"]
    return float(t["reset_offline_s"] + t["ranging_s"] + t["dhcp_s"] + t["config_s"]
                 + t["registration_s"] + t["bpi_init_s"])


@register("black_box", "100 bans at once, black box (default lab, examples/lab.yaml)")
def run(ctx: BenchContext) -> BenchResult:
    per_cmts = 2 if ctx.smoke else PER_CMTS
    rounds = 1 if ctx.smoke else min(ctx.rounds, MAX_ROUNDS)
    stream_rate = 10.0 if ctx.smoke else STREAM_RATE
    by_cmts = lab_modems(TOPOLOGY)
    if any(len(v) < per_cmts + 1 for v in by_cmts.values()):
        raise RuntimeError(f"every CMTS needs {per_cmts + 1} modems")
    warm = [v[-1] for v in by_cmts.values()]
    burst = [m for i in range(per_cmts) for v in by_cmts.values() for m in (v[i],)]
    used = set(warm) | set(burst)
    spare = [m for row in _zip_longest([[m for m in v if m not in used]
                                        for v in by_cmts.values()]) for m in row]
    rereg = rereg_s(TOPOLOGY)
    latency: list[Batch] = []
    intake: list[Batch] = []
    # Smoke (CI keeps it working, inside the suite's time limit): one lab and daemon,
    # no settling wait, the stream's batch gives the latency figures too.
    phases = ("both",) if ctx.smoke else ("latency", "intake")
    for r in range(rounds):
        for phase in phases:
            stack = start_stack(ctx.work / f"r{r}-{phase}")
            try:
                warm_up(stack, warm, until_s=0.0 if ctx.smoke else WARM_UNTIL_S)
                if phase == "latency":
                    latency.append(batch(stack, burst, f"bb{r}"))
                else:
                    intake.append(batch(stack, burst, f"bi{r}", stream_modems=spare,
                                        stream_rate=stream_rate))
                    if phase == "both":
                        latency.append(intake[-1])
            finally:
                stack.stop()
    if any(not b.stream for b in intake):
        raise RuntimeError("a stream sent nothing (the batch verified before its first tick)")
    ref = "lab re-registration time (topology timings)"
    figures = [
        Figure("server p50 (verified_at - created_at)", "s",
               [statistics.median(b.server) for b in latency], [rereg] * len(latency), ref,
               max_value=1.0),
        Figure("server p99 (verified_at - created_at)", "s",
               [pct(b.server, 99) for b in latency], [rereg] * len(latency), ref,
               max_value=2.0),
        Figure("client p50 (202 -> verified seen, 100 ms polling)", "s",
               [statistics.median(b.client) for b in latency], [rereg] * len(latency), ref,
               max_value=1.5),
        Figure("client p99 (202 -> verified seen, 100 ms polling)", "s",
               [pct(b.client, 99) for b in latency], [rereg] * len(latency), ref),
        Figure(f"webhook 202 p99 at {stream_rate:g}/s while the batch enforces", "ms",
               [pct(b.stream, 99) * 1000 for b in intake],
               max_value=25.0),
        Figure(f"webhook 202 median at {stream_rate:g}/s while the batch enforces", "ms",
               [statistics.median(b.stream) * 1000 for b in intake]),
        Figure("stream webhooks not answered 202", "requests",
               [float(b.stream_refused) for b in intake], max_value=0),
    ]
    details: dict[str, Any] = {
        "rereg_s": rereg,
        "latency_rounds": [{"load_before": b.load, "span_s": round(b.span_s, 3),
                            "daemon_cpu_s": b.daemon_cpu_s, "lab_cpu_s": b.lab_cpu_s,
                            "server_p50": statistics.median(b.server),
                            "server_p99": pct(b.server, 99),
                            "client_p50": statistics.median(b.client),
                            "client_p99": pct(b.client, 99)} for b in latency],
        "intake_rounds": [{"load_before": b.load, "span_s": round(b.span_s, 3),
                           "daemon_cpu_s": b.daemon_cpu_s, "lab_cpu_s": b.lab_cpu_s,
                           "stream_sent": len(b.stream) + b.stream_refused,
                           "stream_refused": b.stream_refused,
                           "stream_p99_ms": pct(b.stream, 99) * 1000 if b.stream else None,
                           "batch_server_p50": statistics.median(b.server),
                           "batch_server_p99": pct(b.server, 99)} for b in intake],
        "load_after": loadavg(),
    }
    notes = [
        f"Default lab topology; daemon `enforcer serve --config examples/lab.yaml` (env: "
        f"inventory, state dir, listen port, webhook secret); {per_cmts} modems on each of "
        f"the 4 CMTSes posted together from {CLIENT_THREADS} threads (reason fraud, default "
        "scope node, the modem's node named); fresh lab and daemon per phase, one warm-up "
        f"ban per CMTS first; {rounds} round(s).",
        f"Polling GET /v1/orders?state=verified every {POLL_S * 1000:.0f} ms; the stream is "
        f"open-loop at {stream_rate:g}/s from the batch's last 202 until it is verified, "
        "each webhook banning another real modem (so it loads the engine as well).",
        "Machine load (/proc/loadavg) before each phase: "
        + "; ".join(b.load for b in latency + intake) + ".",
    ]
    return BenchResult("black_box", "100 bans at once, black box",
                       {"per_cmts": per_cmts, "client_threads": CLIENT_THREADS,
                        "poll_s": POLL_S, "stream_rate": stream_rate, "rounds": rounds,
                        "topology": "lab/topologies/default.yaml",
                        "config": "examples/lab.yaml"}, figures, notes, details)
