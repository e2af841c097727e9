"""``enforcer serve``: the daemon. Wires settings, store, inventory, profiles, drivers,
engine, metrics and the HTTP API into one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from enforcer.api.embedded import EmbeddedServer
from enforcer.api.server import uvicorn_config
from enforcer.audit.guard import GuardVerdict
from enforcer.config import Settings, default_config, load_settings
from enforcer.errors import ConfigError, HostKeyError

log = logging.getLogger(__name__)


def profiles_dir(settings: Settings) -> Path:
    """Configured profiles, else the ones shipped beside the package (or in the image)."""
    if settings.profiles_dir is not None:
        return settings.profiles_dir
    for candidate in (Path(__file__).resolve().parent.parent / "device_profiles",
                      Path("/usr/share/enforcer/device_profiles")):
        if candidate.is_dir():
            return candidate
    raise ConfigError("no device_profiles directory found; set profiles_dir")


def build(settings: Settings) -> dict[str, Any]:
    """Everything the daemon runs, built but not started (tests use this too)."""
    from enforcer.api.app import create_app
    from enforcer.audit import build_sinks
    from enforcer.audit.anchor import anchor_now
    from enforcer.audit.guard import ChainGuard
    from enforcer.audit.keys import announce_keys, evidence_public_key, open_keys
    from enforcer.audit.proof import LiftGate
    from enforcer.drivers import build_driver
    from enforcer.engine.bridge import EngineBridge
    from enforcer.engine.core import Engine
    from enforcer.engine.device_ops import DeviceOps
    from enforcer.engine.pool import DriverPool
    from enforcer.engine.reconciler import Reconciler
    from enforcer.engine.watcher import Watcher
    from enforcer.inventory.model import load_inventory
    from enforcer.inventory.profiles import load_profiles
    from enforcer.lifts import expire_lifts
    from enforcer.metrics import Metrics, TransportMetricsAdapter
    from enforcer.notify import OutboxDelivery, OutboxNotifier, build_notifier
    from enforcer.policy import policy_for
    from enforcer.store.db import private_dir, upgrade
    from enforcer.store.repository import Store
    from enforcer.transport.snmp import SnmpEngineHandle

    private_dir(settings.state_dir)
    url = settings.resolved_database_url()
    upgrade(url)
    keyring, evidence_fpr = open_keys(settings)
    store = Store.from_url(url, audit_keys=keyring)
    inventory = load_inventory(settings.inventory)
    profiles = load_profiles(profiles_dir(settings))
    for name, dev in inventory.devices.items():
        if dev.profile not in profiles:
            raise ConfigError(f"{settings.inventory}: device {name}: unknown profile "
                              f"{dev.profile!r} (have: {', '.join(sorted(profiles))})")
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    notifier = build_notifier(settings, store)
    policy = policy_for(settings)
    delivery = OutboxDelivery(policy, store, metrics=metrics) if policy.webhooks else None
    if delivery is not None and isinstance(notifier, OutboxNotifier):
        notifier.wake = delivery.wake
    snmp_engine = SnmpEngineHandle()
    transport_metrics = TransportMetricsAdapter(metrics)
    def pinned(name: str) -> str | None:
        st = store.get_device_state(name)
        return st.host_key if st else None

    async def host_key_refused(name: str, e: HostKeyError) -> None:
        if e.reason == "changed":
            metrics.host_key_mismatch.labels(name).inc()
        log.error("%s", e, extra={"event": "device.host_key_refused", "device": name,
                                  "reason": e.reason})
        try:
            await asyncio.to_thread(store.record_event, "engine", "device.host_key_refused",
                                    None, {"device": name, "reason": e.reason,
                                           "presented": e.presented, "message": str(e)})
        except Exception as err:  # noqa: BLE001 - the refusal itself must still propagate
            log.error("could not audit a refused host key: %s", type(err).__name__)

    pool = DriverPool(lambda name: build_driver(name, inventory, profiles,
                                                snmp_engine=snmp_engine,
                                                state_dir=settings.state_dir,
                                                metrics=transport_metrics,
                                                source_address=settings.engine.source_address,
                                                pinned=pinned,
                                                on_host_key_error=host_key_refused))

    engine_ref: list[Engine] = []

    def requeue(order_id: str, device: str) -> None:
        engine_ref[0].enforce_again(order_id, device)

    sinks = build_sinks(settings)
    guard = ChainGuard(store, settings.anchor_file())
    lift_gate = LiftGate(store, policy, metrics, guard, settings.audit.anchor_interval_s)
    # Mechanism and transport facts (kick, persistence, immediate block, GETBULK size)
    # reach the engine one way: the device's profile, through its driver (``pool``).
    ops = DeviceOps(store=store, inventory=inventory, pool=pool, settings=settings,
                    metrics=metrics,
                    policy_layers=lambda reason: list(policy.for_reason(reason).layers),
                    lift_gate=lift_gate)
    reconciler = Reconciler(store=store, pool=pool, settings=settings,
                            metrics=metrics, requeue=requeue, breach=ops.breach)
    watcher = Watcher(store=store, inventory=inventory, pool=pool, metrics=metrics,
                      requeue=requeue, notify=notifier.notify, breach=ops.breach)

    def check_and_anchor() -> None:
        """The chain from the last checkpoint against the newest anchor, then (only
        when it is intact) a new anchor of the head."""
        if metrics.check_audit(lambda: _logged(guard.check())):
            anchor_now(store, sinks, evidence_fpr)

    async def check_chain() -> None:
        await asyncio.to_thread(check_and_anchor)

    housekeeping = [
        ("expire-lifts", settings.engine.lift_expiry_check_s,
         lambda: expire_lifts(store, notifier)),
        ("check-and-anchor-audit", settings.audit.anchor_interval_s, check_chain),
    ]
    engine = Engine(store=store, inventory=inventory, pool=pool, ops=ops, settings=settings,
                    metrics=metrics, reconciler=reconciler, watcher=watcher,
                    url=f"http://{settings.http.listen}", notifier=notifier,
                    housekeeping=housekeeping)
    engine_ref.append(engine)
    bridge = EngineBridge(engine)
    app = create_app(settings=settings, store=store, engine=bridge, registry=registry,
                     metrics=metrics, notifier=notifier, policy=policy)
    if settings.provisioning.export:
        housekeeping.append(("pull-links-export", settings.provisioning.export_interval_s,
                             _export_job(app.state.ctx.feed, settings.provisioning.export,
                                         store)))
    announce_keys(store, keyring.current, evidence_fpr, evidence_public_key(settings))
    check_and_anchor()
    return {"store": store, "inventory": inventory, "profiles": profiles, "engine": engine,
            "bridge": bridge, "app": app, "metrics": metrics, "registry": registry,
            "pool": pool, "guard": guard, "anchor": check_and_anchor, "delivery": delivery}


def _logged(v: GuardVerdict) -> tuple[bool, int | None, str]:
    if not v.ok:
        log.critical("AUDIT CHAIN BROKEN at seq %s: %s", v.first_bad_seq, v.reason,
                     extra={"event": "audit.chain_broken", "audit_seq": v.first_bad_seq})
    return v.as_tuple()


def _export_job(feed: Any, source: str, store: Any) -> Any:
    """The periodic pull of the provisioning export (repairs missed events); a bad or
    unreadable export changes nothing and is audited."""
    import httpx

    from enforcer.errors import InputError

    async def job() -> None:
        try:
            counts = await asyncio.to_thread(feed.pull, source)
            log.info("links export %s: %s", source, counts,
                     extra={"event": "links.export_applied", **counts})
        except (InputError, OSError, httpx.HTTPError, UnicodeDecodeError) as e:
            log.error("links export %s refused: %s", source, e)
            await asyncio.to_thread(store.record_event, "provisioning",
                                    "links.export_refused", None,
                                    {"source": source, "error": str(e)[:2000]})
    return job


async def run(settings: Settings, *, stop: asyncio.Event | None = None,
              on_ready: Any = None) -> None:
    parts = build(settings)
    engine = parts["engine"]
    # Store calls run in threads; enough of them that device loops do not queue long.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=settings.engine.store_threads,
                           thread_name_prefix="store"))
    host, _, port = settings.http.listen.rpartition(":")
    closed = parts["metrics"].http_connections_closed
    server = EmbeddedServer(uvicorn_config(
        parts["app"], listen_host=host.strip("[]"), port=int(port), http=settings.http,
        on_close=lambda reason: closed.labels(reason=reason).inc()))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await engine.start()
    if parts["delivery"] is not None:
        # One instance of a cluster delivers notifications: the housekeeping lease holder.
        from enforcer.engine.core import HOUSEKEEPING
        parts["delivery"].start(lambda: engine.leases.holds(HOUSEKEEPING))
    parts["bridge"].bind(loop)
    # The HTTP API runs on its own event loop in its own thread: intake latency does not
    # queue behind device work on the engine's loop.
    api = threading.Thread(target=lambda: asyncio.run(server.serve()), name="api",
                           daemon=True)
    api.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not api.is_alive() or time.monotonic() > deadline:
            await engine.stop()
            raise ConfigError(f"cannot listen on {settings.http.listen}")
        await asyncio.sleep(0.02)
    log.info("enforcer listening on %s (%d devices)", settings.http.listen,
             len(parts["inventory"].devices))
    if on_ready:
        on_ready(parts)
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        await asyncio.to_thread(api.join, 15)
        await engine.stop()
        if parts.get("delivery") is not None:
            parts["delivery"].close()
        await asyncio.to_thread(parts["anchor"])  # the head at a clean stop
        parts["store"].dispose()


def _all_secrets(settings: Settings) -> list[str]:
    """Configured secrets plus the inventory's device credentials, the policy's
    notification secrets and the audit chain keys: none of them may reach a log line.
    (A file that does not load is reported by ``build`` a moment later.)"""
    from enforcer.inventory.model import load_inventory
    from enforcer.policy import policy_for

    out = settings.secret_values()
    with contextlib.suppress(ConfigError):
        out += load_inventory(settings.inventory).secret_values()
    with contextlib.suppress(ConfigError):
        out += policy_for(settings).secret_values()
    with contextlib.suppress(ConfigError):  # the audit chain's keys (made later if none)
        from enforcer.store.auditkey import load_keyring

        out += [k.hex() for k in load_keyring(settings.audit_key_dir(), create=False)
                .keys.values()]
    return out


def serve(config: Path | None) -> None:
    from enforcer.logging import setup_logging

    settings = load_settings(config) if config else default_config()
    setup_logging(settings.log.level, json_lines=settings.log.json_lines,
                  secrets=_all_secrets(settings))
    asyncio.run(run(settings))
