"""Fuzzing the HTTP API of a live daemon (the lab behind it) as an integrator's tooling
would: Schemathesis draws requests from ``/openapi.json`` for every operation, valid and
invalid (positive and negative generation), sends each one with an admin token, an
engineer token, an auditor token, no token and a wrong token (the signed webhooks also
correctly signed, so the fuzzed body reaches validation), and checks every answer with
``not_a_server_error``, ``response_schema_conformance``, ``status_code_conformance`` and
``content_type_conformance``. Failures are counted, not raised: a run ends only at its
request or time budget.

Then a corpus of validly signed malformed webhook bodies (:func:`malformed_bodies`):
none may answer 5xx or create an order, and the valid orders sent between them must all
be kept with their devices (nothing lost).

``tests/security/test_fuzz_live.py`` runs a short campaign in the suite;
``python -m bench.fuzz_api --requests 100000`` runs a long one and records its counts
in ``bench/results/fuzz_api.json``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from enforcer.api.signature import sign

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]
#: Operations that contact every device of the lab per request: fewer examples each.
SLOW = {"/v1/reconcile", "/v1/plan", "/v1/where/{mac}", "/v1/devices/{name}/check",
        "/v1/devices/{name}/trust"}
HOOKS = {"/v1/hooks/escalation", "/v1/hooks/provisioning"}
IDENTITIES = ("admin", "engineer", "auditor", "none", "wrong")
WRONG_TOKEN = "enf_00000000_" + "A" * 43
MAX_EXAMPLES_KEPT = 20


class _Budget(Exception):
    """The request or time budget is spent (ends a hypothesis run early)."""


@dataclass
class Tally:
    requests: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    by_identity: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    accepted_orders: list[str] = field(default_factory=list)
    lost_orders: list[str] = field(default_factory=list)
    corpus_bodies: int = 0
    corpus_valid_orders: int = 0
    seconds: float = 0.0

    @property
    def conformance_failures(self) -> int:
        return sum(n for name, n in self.failures.items() if name != "not_a_server_error")

    def note(self, text: str) -> None:
        if len(self.examples) < MAX_EXAMPLES_KEPT:
            self.examples.append(text[:1500])

    def as_dict(self) -> dict[str, Any]:
        d = {k: dict(v) if isinstance(v, Counter) else v for k, v in vars(self).items()}
        d.pop("accepted_orders")
        d["orders_accepted"] = len(self.accepted_orders)
        d["conformance_failures"] = self.conformance_failures
        return d


@dataclass
class Target:
    """The daemon under test: its URL, a token per role and its webhook keys."""

    base: str
    tokens: dict[str, str]
    webhook_key: bytes
    provisioning_key: bytes | None = None


def key_of(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def _signed_headers(key: bytes, raw: bytes) -> dict[str, str]:
    wid, ts = f"msg_fuzz_{secrets.token_hex(8)}", int(time.time())
    return {"webhook-id": wid, "webhook-timestamp": str(ts),
            "webhook-signature": sign(key, wid, ts, raw), "content-type": "application/json"}


class Campaign:
    def __init__(self, target: Target, *, max_requests: int, max_seconds: float) -> None:
        self.t = target
        self.max_requests, self.deadline = max_requests, time.monotonic() + max_seconds
        self.tally = Tally()
        self.progress = False
        self.session = requests.Session()
        self.schema = schemathesis.openapi.from_url(target.base + "/openapi.json")

    def _spent(self) -> bool:
        return (self.tally.requests >= self.max_requests
                or time.monotonic() >= self.deadline)

    def _validate(self, case: Any, response: Any, label: str) -> None:
        t = self.tally
        t.requests += 1
        if self.progress and t.requests % 1000 == 0:
            print(f"{t.requests} requests, {t.server_errors} 5xx, "
                  f"{t.conformance_failures} conformance failures", file=sys.stderr,
                  flush=True)
        t.by_status[str(response.status_code)] += 1
        t.by_operation[f"{case.method} {case.operation.path}"] += 1
        t.by_identity[label] += 1
        if response.status_code >= 500:
            t.server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for f in group.exceptions:
                name = f.checks[0] if f.checks else type(f).__name__
                t.failures[name] += 1
            t.note(f"[{label}] {case.method} {case.operation.path} -> "
                   f"{response.status_code}: {group}")
        except AssertionError as f:  # a single failure
            checks = getattr(f, "checks", ()) or (type(f).__name__,)
            t.failures[checks[0]] += 1
            t.note(f"[{label}] {case.method} {case.operation.path} -> "
                   f"{response.status_code}: {f}")
        if (response.status_code == 202 and case.method == "POST"
                and case.operation.path in ("/v1/orders", "/v1/hooks/escalation")):
            body = response.json()
            if body.get("created"):
                self.tally.accepted_orders.append(body["order_id"])

    def _send(self, case: Any) -> None:
        base = {k: v for k, v in (case.headers or {}).items()
                if k.lower() != "authorization"}
        for who in IDENTITIES:
            if self._spent():
                raise _Budget
            auth = {"none": None, "wrong": f"Bearer {WRONG_TOKEN}"}.get(
                who, f"Bearer {self.t.tokens.get(who, WRONG_TOKEN)}")
            headers = {**base, **({"Authorization": auth} if auth else {})}
            try:
                response = case.call(base_url=self.t.base, session=self.session,
                                     headers=headers, timeout=60)
            except (requests.RequestException, ValueError, UnicodeError) as e:
                self.tally.transport_errors += 1
                self.tally.note(f"[{who}] {case.method} {case.operation.path}: "
                                f"transport {type(e).__name__}: {e}")
                continue
            self._validate(case, response, who)
            if case.operation.path in HOOKS:
                break  # a bearer token means nothing to a webhook: send it once unsigned
        if case.operation.path in HOOKS:
            self._send_signed(case)

    def _send_signed(self, case: Any) -> None:
        key = (self.t.webhook_key if case.operation.path == "/v1/hooks/escalation"
               else self.t.provisioning_key)
        if key is None or self._spent():
            return
        body = case.body
        raw = (json.dumps(body).encode() if not isinstance(body, bytes | str)
               else body if isinstance(body, bytes) else body.encode("utf-8", "replace"))
        try:
            response = self.session.post(self.t.base + case.operation.path, data=raw,
                                         headers=_signed_headers(key, raw), timeout=60)
        except requests.RequestException as e:
            self.tally.transport_errors += 1
            self.tally.note(f"[signed] {case.operation.path}: transport {e}")
            return
        self._validate(case, response, "signed")

    def run_operations(self, examples: int, seed: int) -> None:
        ops = [cast(Any, r).ok() for r in self.schema.get_all_operations()]
        while not self._spent():
            for op in ops:
                # Negative data needs something to break: a parameter or a body.
                modes = ((GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                         if _has_inputs(op) else (GenerationMode.POSITIVE,))
                for mode in modes:
                    n = max(1, examples // 5) if op.path in SLOW else examples
                    self._run_one(op, mode, n, seed)
                    seed += 1
                    if self._spent():
                        return

    def _run_one(self, op: Any, mode: GenerationMode, n: int, seed: int) -> None:
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), derandomize=False)
        def explore(case: Any) -> None:
            self._send(case)

        explore._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
        try:
            explore()
        except _Budget:
            pass
        except Exception as e:  # noqa: BLE001 - a generator error is counted, not fatal
            self.tally.failures["generation_error"] += 1
            self.tally.note(f"{op.method.upper()} {op.path} ({mode}): {type(e).__name__}: "
                            f"{e}")

    def check_nothing_lost(self) -> None:
        """Every order answered 202 ``created`` is there, complete with its devices."""
        auth = {"Authorization": f"Bearer {self.t.tokens['auditor']}"}
        with httpx.Client(base_url=self.t.base, headers=auth, timeout=60) as c:
            for oid in self.tally.accepted_orders:
                r = c.get(f"/v1/orders/{oid}")
                if r.status_code != 200 or not (r.json()["devices"]
                                                or r.json()["all_devices"]):
                    self.tally.lost_orders.append(oid)


def _has_inputs(op: Any) -> bool:
    raw = op.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


def malformed_bodies() -> Iterator[bytes]:
    """About 200 bodies that are not a valid order or amendment, each a different way:
    syntax, types, bounds, depth, duplicates, numbers, encodings, control characters."""
    good = {"ticket": "T-1", "account": "ACC-1", "reason": "threat_of_violence",
            "devices": [{"mac": "00:11:22:33:44:55", "kind": "cable_modem"}]}
    raw_cases = [b"", b" ", b"{", b"}", b"[", b"[]", b"null", b"true", b"0", b"-1", b'""',
                 b'"order"', b"{}", b"{,}", b'{"ticket"}', b'{"ticket":}', b"\xff\xfe",
                 b"\xef\xbb\xbf{}", b"\x00", b'{"a":1}\x00', b"{'ticket': 'x'}",
                 b'{"ticket": "T"', b"NaN", b"Infinity", b'{"n": NaN}', b'{"n": -Infinity}',
                 b'{"n": 1e99999}', b'{"n": 123456789012345678901234567890}',
                 b'{"ticket": "\\ud800"}', b'{"ticket": "\\u0000"}', b'{"\\u0000": 1}',
                 b'{"ticket": "a\\u0000b", "account": "x"}', b"\x80abc", b"\xc3\x28",
                 b"{\"a\":1}{\"b\":2}", b"[1,2,]", b"{\"a\":1,}", b"/* c */ {}",
                 b'{"ticket": "x"} trailing', b"\t\n\r ", b'{"a": 01}', b'{"a": .5}',
                 b'{"a": +1}', b'{"a": 0x10}', b'{"a": "\\x41"}', b'{"a": "\\u12"}',
                 b'{"ticket": "T", "account": "A", "reason": "fraud", "devices": [',
                 b'{"ticket": "T", "account": "A", "reason": "fraud", "devices": []}',
                 b'\x00{"ticket": "T"}', b'{"ticket": "\x00"}', b'{"ticket": "\t\n"}',
                 b'{"a": "\x7f\x80"}', b"\xf0\x28\x8c\x28", b"\xed\xa0\x80"]
    yield from raw_cases
    for depth in (33, 40, 100, 500, 900, 950, 990, 999, 1000, 1100, 3000, 20000):
        yield b'{"a":' * depth + b"1" + b"}" * depth
        yield b"[" * depth + b"]" * depth
    yield b'{"ticket": "a", "ticket": "b"}'
    yield json.dumps(good).replace(b"T-1".decode(), "T-1").encode()[:-1] + b', "ticket": "x"}'
    for key, bad in [
        ("ticket", ""), ("ticket", "x" * 201), ("ticket", "A\u0000B"), ("ticket", "a\nb"),
        ("ticket", "\x1b[31m"), ("ticket", "\x7f"), ("ticket", "\u0085"), ("ticket", 1),
        ("ticket", None), ("ticket", ["x"]), ("ticket", {"x": 1}), ("ticket", True),
        ("account", ""), ("account", "A\u0000B"), ("account", "a" * 201), ("account", 0),
        ("account", "\t"), ("reason", "nope"), ("reason", ""), ("reason", None),
        ("reason", 1), ("reason", "THREAT_OF_VIOLENCE"), ("scope", "everything"),
        ("scope", 1), ("node", "A\u0000B"), ("node", "no-such-node"), ("node", ""),
        ("node", "x" * 201), ("requested_by", "\u0000"), ("requested_by", "x" * 201),
        ("note", "x" * 4001), ("note", "a\u0000b"), ("note", "a\x0bb"), ("note", 5),
        ("note", "a\x1fb"), ("note", "a\x85b"), ("note", ["n"]), ("all_devices", "true"),
        ("all_devices", None), ("all_devices", "1"), ("scope", ""), ("scope", ["footprint"]),
        ("ticket", "\u2028\u0000"), ("account", "\x9f"), ("node", 5),
        ("requested_by", ["x"]), ("devices", {"mac": "00:11:22:33:44:55"}),
        ("devices", [{"mac": 1122334455, "kind": "cable_modem"}]),
        ("devices", [{"mac": None, "kind": "cable_modem"}]),
        ("devices", [{"mac": "00:11:22:33:44:55", "kind": None}]),
        ("devices", [{"mac": "00:11:22:33:44:55", "kind": "set_top", "ecm_mac": "bad"}]),
        ("devices", [{"mac": "00:11:22:33:44:55", "kind": "cable_modem"}, None]),
        ("evidence", [{"kind": "k", "ref": "r", "offset": "o\u0000"}]),
        ("evidence", [{"kind": "k", "ref": "r", "note": "x" * 4001}]),
        ("evidence", [{"kind": "k", "ref": ""}]), ("evidence", {"kind": "k"}),
        ("all_devices", "yes"), ("all_devices", 2), ("devices", []), ("devices", None),
        ("devices", "00:11:22:33:44:55"), ("devices", [{}]), ("devices", [1]),
        ("devices", [{"mac": "00:11:22:33:44:55"}]),
        ("devices", [{"kind": "cable_modem"}]),
        ("devices", [{"mac": "ff:ff:ff:ff:ff:ff", "kind": "cable_modem"}]),
        ("devices", [{"mac": "01:00:5e:00:00:01", "kind": "cable_modem"}]),
        ("devices", [{"mac": "00:00:00:00:00:00", "kind": "cable_modem"}]),
        ("devices", [{"mac": "00:11:22:33:44", "kind": "cable_modem"}]),
        ("devices", [{"mac": "00:11:22:33:44:55:66", "kind": "cable_modem"}]),
        ("devices", [{"mac": "zz:11:22:33:44:55", "kind": "cable_modem"}]),
        ("devices", [{"mac": "00:11:22:33:44:5\u0000", "kind": "cable_modem"}]),
        ("devices", [{"mac": "００:11:22:33:44:55", "kind": "cable_modem"}]),
        ("devices", [{"mac": "00:11:22:33:44:55", "kind": "toaster"}]),
        ("devices", [{"mac": "00:11:22:33:44:55", "kind": "cable_modem",
                      "ecm_mac": "00:11:22:33:44:56"}]),
        ("devices", [{"mac": "00:11:22:33:44:55", "kind": "cable_modem", "x": 1}]),
        ("devices", [{"mac": "00:11:22:33:44:55", "kind": "cable_modem"}] * 2),
        ("devices", [{"mac": f"00:11:22:33:{i // 256:02x}:{i % 256:02x}",
                      "kind": "cable_modem"} for i in range(1, 34)]),
        ("evidence", "not a list"), ("evidence", [1]), ("evidence", [None]),
        ("evidence", ["x" * 2001]), ("evidence", ["a\u0000"]), ("evidence", [{}]),
        ("evidence", [{"kind": "k"}]), ("evidence", [{"kind": "", "ref": "r"}]),
        ("evidence", [{"kind": "k", "ref": "r", "extra": 1}]),
        ("evidence", [{"kind": "k\u0000", "ref": "r"}]), ("evidence", ["r"] * 51),
        ("unknown_field", 1), ("", 1), ("\u0000", 1),
    ]:
        yield json.dumps({**good, key: bad}).encode()
    for missing in ("ticket", "account", "reason", "devices"):
        yield json.dumps({k: v for k, v in good.items() if k != missing}).encode()
    amend_bad: list[Any] = [
        None, 1, "x", [], {}, {"order_id": "ord_x"}, {"ticket": "T-1"},
        {"order_id": "a\u0000b", "reason": "threat_of_violence"},
        {"order_id": "x" * 41, "note": "n"}, {"ticket": "T\u0000", "note": "n"},
        {"order_id": "ord_nope", "reason": "nope"}, {"order_id": "ord_nope", "x": 1},
        {"order_id": "ord_nope", "add_devices": [{"mac": "bad", "kind": "cable_modem"}]},
        {"order_id": "ord_nope", "remove_macs": ["ff:ff:ff:ff:ff:ff"]},
        {"order_id": "ord_nope", "add_layers": ["moon"]},
        {"order_id": "ord_nope", "add_layers": ["dhcp"] * 4},
        {"order_id": "ord_nope", "note": "x" * 4001},
        {"order_id": "ord_nope", "node": "\u0000"},
        {"order_id": "ord_nope", "scope": "everything"},
    ]
    for a in amend_bad:
        yield json.dumps({"amend": a}).encode()
    yield json.dumps({"amend": {"order_id": "ord_nope", "note": "n"}, "ticket": "x"}).encode()
    yield b'{"amend": {"order_id": "ord_nope"}, "amend": {"ticket": "T"}}'
    yield b'{"amend": ' + b"[" * 995 + b"]" * 995 + b"}"
    yield json.dumps({**good, "devices": [{"mac": "00:11:22:33:44:55", "kind": "set_top",
                                            "ecm_mac": "00:11:22:33:44:55"}]}).encode()
    yield json.dumps({**good, "ticket": "x" * 70_000}).encode()  # over max_body_bytes
    yield b"{" + b'"k":1,' * 12_000 + b'"z":1}'  # over max_body_bytes, many keys
    yield json.dumps({f"k{i}": i for i in range(500)}).encode()
    yield json.dumps({**good, "reason": "threat_of_violence\u0000"}).encode()
    yield json.dumps(good).encode().replace(b"{", b"{\x00", 1)
    yield json.dumps(good, ensure_ascii=False).encode("utf-16")
    yield json.dumps(good).encode()[:-5]


def run_corpus(c: Campaign) -> None:
    """Each malformed body, signed with the real key, to the escalation webhook; a valid
    order every 20 bodies. No 5xx, no order from a refused body, no valid order lost."""
    t = c.tally
    auth = {"Authorization": f"Bearer {c.t.tokens['auditor']}"}
    valid: list[str] = []
    with httpx.Client(base_url=c.t.base, timeout=60) as h:
        def count() -> int:
            return len(h.get("/v1/orders", params={"limit": 1000}, headers=auth)
                       .json()["orders"])

        before = count()
        for i, raw in enumerate(malformed_bodies()):
            r = h.post("/v1/hooks/escalation", content=raw,
                       headers=_signed_headers(c.t.webhook_key, raw))
            t.corpus_bodies += 1
            t.requests += 1
            t.by_status[str(r.status_code)] += 1
            t.by_identity["signed-corpus"] += 1
            if r.status_code >= 500 or r.status_code < 400:
                t.server_errors += r.status_code >= 500
                t.failures["corpus_not_refused"] += 1
                t.note(f"corpus #{i} {raw[:120]!r} -> {r.status_code} {r.text[:300]}")
            if i % 20 == 19:
                mac = f"02:00:5e:{i // 256 % 256:02x}:{i % 256:02x}:{secrets.randbelow(256):02x}"
                body = json.dumps({"ticket": f"CORPUS-{i}", "account": f"ACC-C{i}",
                                   "reason": "threat_of_violence",
                                   "devices": [{"mac": mac, "kind": "cable_modem"}]}).encode()
                ok = h.post("/v1/hooks/escalation", content=body,
                            headers=_signed_headers(c.t.webhook_key, body))
                t.requests += 1
                if ok.status_code != 202:
                    t.failures["corpus_valid_refused"] += 1
                    t.note(f"valid order between corpus bodies -> {ok.status_code} {ok.text}")
                else:
                    valid.append(ok.json()["order_id"])
        after = count()
    t.corpus_valid_orders = len(valid)
    if after - before != len(valid):
        t.failures["corpus_orders_created"] += 1
        t.note(f"orders before {before}, after {after}, valid sent {len(valid)}")
    t.accepted_orders.extend(valid)


def fuzz(target: Target, *, max_requests: int, max_seconds: float, examples: int = 10,
         seed: int = 0, corpus: bool = True, progress: bool = False) -> Tally:
    """One campaign against a running daemon: the corpus (when asked), then Schemathesis
    until the budget is spent, then the check that no accepted order was lost."""
    started = time.monotonic()
    c = Campaign(target, max_requests=max_requests, max_seconds=max_seconds)
    c.progress = progress
    if corpus:
        run_corpus(c)
    c.run_operations(examples, seed)
    c.check_nothing_lost()
    c.tally.seconds = round(time.monotonic() - started, 1)
    return c.tally


def merge(tallies: list[Tally]) -> Tally:
    """One tally of several workers' campaigns (run side by side)."""
    out = Tally()
    for t in tallies:
        for name, value in vars(t).items():
            mine = getattr(out, name)
            if isinstance(value, Counter):
                mine.update(value)
            elif isinstance(value, list):
                mine.extend(value)
            elif name == "seconds":
                out.seconds = max(out.seconds, value)
            else:
                setattr(out, name, mine + value)
    out.examples = out.examples[:MAX_EXAMPLES_KEPT]
    return out


def _worker(args: tuple[Target, int, float, int, int, bool]) -> Tally:
    target, requests_, seconds, examples, seed, corpus = args
    return fuzz(target, max_requests=requests_, max_seconds=seconds, examples=examples,
                seed=seed, corpus=corpus, progress=corpus)


def daemon_env(prov_secret: str) -> dict[str, str]:
    """Settings for a fuzzed daemon: the intake bucket wide enough that fuzzed orders
    reach validation (429 is still declared and still answered past it)."""
    return {"ENFORCER_API__INTAKE_RATE_PER_S": "500", "ENFORCER_API__INTAKE_BURST": "500",
            "ENFORCER_PROVISIONING__SECRETS": json.dumps([prov_secret])}


def add_user(env: dict[str, str], name: str, role: str) -> str:
    """A bearer token for a new user (``enforcer users add``, as an operator would)."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "enforcer.cli.main", "users", "add", name,
                          "--role", role, "--json"], env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return str(json.loads(out)["token"])


def main(argv: list[str] | None = None) -> int:
    from bench.common import rel
    from bench.daemon import start_daemon
    from lab.testing import running_lab

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=3600.0)
    p.add_argument("--examples", type=int, default=25)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=1,
                   help="campaigns side by side against the one daemon (split budget)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" /
                   "fuzz_api.json")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="enforcer-fuzz-bench-"))
    prov = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with running_lab(state_dir=work / "lab") as lab:
        d = start_daemon(lab, work, **daemon_env(prov))
        try:
            tokens = {role: add_user(d.env, f"fuzz-{role}", role)
                      for role in ("admin", "engineer", "auditor")}
            target = Target(d.base, tokens, d.key, key_of(prov))
            jobs = [(target, args.requests // args.workers, args.seconds, args.examples,
                     args.seed + 1_000_003 * w, w == 0) for w in range(args.workers)]
            if args.workers == 1:
                tally = _worker(jobs[0])
            else:
                import multiprocessing

                with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
                    tally = merge(pool.map(_worker, jobs))
        finally:
            d.stop()
    result = {"benchmark": "fuzz_api", "command": "nice -n 10 python -m bench.fuzz_api "
              + " ".join(argv if argv is not None else sys.argv[1:]),
              "budget": {"requests": args.requests, "seconds": args.seconds,
                         "workers": args.workers},
              "cpus": os.cpu_count(), "daemon": "enforcer serve with the default lab",
              **tally.as_dict()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("requests", "server_errors",
                                              "conformance_failures", "lost_orders",
                                              "seconds")}))
    print(f"recorded in {rel(args.out)}")
    ok = not (tally.server_errors or tally.conformance_failures or tally.lost_orders
              or tally.failures)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
