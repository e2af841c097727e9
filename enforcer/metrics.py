"""Prometheus metrics, all on one injected ``CollectorRegistry``.

Counters and histograms are instrumented where things happen (API, engine, transports);
``enforcer_orders`` and ``enforcer_targets`` are read from the store at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

TIME_TO_VERIFIED_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800,
                            3600)
PUSH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class CountingStore(Protocol):
    def count_orders(self) -> dict[tuple[str, str], int]: ...
    def count_targets(self) -> dict[str, int]: ...


class StoreCollector(Collector):
    """``enforcer_orders{state,reason}`` and ``enforcer_targets{state}`` at scrape time."""

    def __init__(self, store: CountingStore) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return [_orders_family(), _targets_family()]  # the outbox families are optional

    def collect(self) -> Iterator[Metric]:
        try:
            orders, targets = self._store.count_orders(), self._store.count_targets()
        except Exception as e:  # noqa: BLE001 - a scrape must not fail because the DB did
            log.warning("metrics: cannot read counts from the store: %s", type(e).__name__)
            return
        fam = _orders_family()
        for (state, reason), n in sorted(orders.items()):
            fam.add_metric([state, reason], n)
        yield fam
        tfam = _targets_family()
        for state, n in sorted(targets.items()):
            tfam.add_metric([state], n)
        yield tfam
        count_outbox = getattr(self._store, "count_outbox", None)
        if count_outbox is None:
            return
        try:
            by_state, oldest = count_outbox()
        except Exception as e:  # noqa: BLE001
            log.warning("metrics: cannot read the outbox: %s", type(e).__name__)
            return
        nfam = _outbox_family()
        for state in ("pending", "delivered", "failed", "dropped"):
            nfam.add_metric([state], by_state.get(state, 0))
        yield nfam
        age = GaugeMetricFamily(
            "enforcer_notification_oldest_pending_seconds", "Age of the oldest outbound "
            "webhook message not yet delivered (0 when none is pending).")
        age.add_metric([], max(0.0, (datetime.now(UTC) - oldest).total_seconds())
                       if oldest is not None else 0.0)
        yield age


def _orders_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("enforcer_orders", "Orders by state and reason.",
                             labels=["state", "reason"])


def _outbox_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("enforcer_notifications", "Outbound webhook messages in the "
                             "outbox by state (pending, delivered, failed, dropped).",
                             labels=["state"])


def _targets_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("enforcer_targets", "Targets by state.", labels=["state"])


class Metrics:
    """Every metric the enforcer exports. Build one per registry and share it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.orders_accepted = Counter(
            "enforcer_orders_accepted", "Orders accepted.", ["source", "reason"], registry=r)
        self.intake_refused = Counter(
            "enforcer_intake_refused", "Order requests refused, by reason.", ["reason"],
            registry=r)
        self.unauthenticated_refused = Counter(
            "enforcer_unauthenticated_refused", "Requests refused with no valid token or "
            "webhook signature (audited at most once per interval per client address).",
            ["route", "code"], registry=r)
        self.http_connections_closed = Counter(
            "enforcer_http_connections_closed", "Connections the server closed: request "
            "head or body not received in time, or too many connections open.", ["reason"],
            registry=r)
        self.http_requests = Counter(
            "enforcer_http_requests", "HTTP requests served.", ["route", "method", "code"],
            registry=r)
        self.pushes = Counter(
            "enforcer_pushes", "Enforcement pushes to devices.",
            ["device", "mechanism", "result"], registry=r)
        self.push_duration = Histogram(
            "enforcer_push_duration_seconds", "Time to push one target.",
            ["device", "mechanism"], buckets=PUSH_BUCKETS, registry=r)
        self.time_to_verified = Histogram(
            "enforcer_time_to_verified_seconds", "From order accepted to verified.",
            buckets=TIME_TO_VERIFIED_BUCKETS, registry=r)
        self.device_up = Gauge(
            "enforcer_device_up", "1 if the device answered its last check.", ["device"],
            registry=r)
        self.snmp_requests = Counter(
            "enforcer_snmp_requests", "SNMP requests sent.", ["device", "op"], registry=r)
        self.snmp_retries = Counter(
            "enforcer_snmp_retries", "SNMP requests retried.", ["device"], registry=r)
        self.snmp_errors = Counter(
            "enforcer_snmp_errors", "SNMP errors.", ["device", "kind"], registry=r)
        self.ssh_sessions = Counter(
            "enforcer_ssh_sessions", "SSH sessions opened.", ["device", "result"], registry=r)
        self.host_key_mismatch = Counter(
            "enforcer_host_key_mismatch", "SSH host keys refused because they differ from "
            "the pinned key (inventory or `devices trust`): alert on any increase.",
            ["device"], registry=r)
        self.banned_mac_sightings = Counter(
            "enforcer_banned_mac_sightings", "Banned MACs seen registered by the watcher.",
            ["device"], registry=r)
        self.ban_breaches = Counter(
            "enforcer_ban_breaches", "A MAC under an active, already verified ban seen "
            "forwarding (by the engine, the reconciler or the watcher): pushed again at "
            "once.", ["device", "source"], registry=r)
        self.fallbacks = Counter(
            "enforcer_mechanism_fallbacks", "A mechanism refused (e.g. deny list full): the "
            "next one in the profile was used.", ["device", "mechanism"], registry=r)
        self.drift_repairs = Counter(
            "enforcer_drift_repairs", "Blocks found missing or ineffective by the reconciler.",
            ["device", "mechanism"], registry=r)
        self.unowned_blocks = Gauge(
            "enforcer_unowned_blocks", "Blocks on a device that no active ban owns "
            "(reported, never removed).", ["device"], registry=r)
        self.capacity_used = Gauge(
            "enforcer_device_table_used_ratio", "Share of a device table (deny list, hotlist) "
            "in use.", ["device", "mechanism"], registry=r)
        self.owned_devices = Gauge(
            "enforcer_owned_devices", "Devices whose lease this instance holds.", registry=r)
        self.lease_failovers = Counter(
            "enforcer_lease_failovers", "Device leases taken over from another instance.",
            registry=r)
        self.notifications_delivered = Counter(
            "enforcer_notifications_delivered", "Outbound webhook messages a target "
            "acknowledged (2xx).", ["target"], registry=r)
        self.notifications_failed = Counter(
            "enforcer_notifications_failed", "Outbound webhook messages a target refused "
            "(4xx other than 408/429): not retried.", ["target"], registry=r)
        self.notifications_dropped = Counter(
            "enforcer_notifications_dropped", "Outbound webhook messages given up after the "
            "policy's max_attempts (or whose target left the policy).", ["target"],
            registry=r)
        self.audit_chain_ok = Gauge(
            "enforcer_audit_chain_ok", "1 if the last audit chain verification passed.",
            registry=r)
        self.lift_unproven = Counter(
            "enforcer_lift_unproven", "Lifts the engine refused because the audit trail does "
            "not prove them (counted once per order per audit interval); every block stays "
            "in place.", registry=r)
        self._store_collector: StoreCollector | None = None

    def bind_store(self, store: CountingStore) -> None:
        """Export ``enforcer_orders`` and ``enforcer_targets`` from ``store`` (once)."""
        if self._store_collector is None:
            self._store_collector = StoreCollector(store)
            self.registry.register(self._store_collector)

    def check_audit(self, verify: Callable[[], tuple[bool, int | None, str]]) -> bool:
        """Run an audit verification and publish the result."""
        ok = verify()[0]
        self.audit_chain_ok.set(1 if ok else 0)
        return ok


class TransportMetricsAdapter:
    """Feeds the transports' instrumentation (``enforcer.transport.base.TransportMetrics``)
    into the Prometheus metrics: ``op`` is e.g. ``snmp.get`` or ``ssh.command``."""

    def __init__(self, m: Metrics) -> None:
        self._m = m
        self.transport_latency = Histogram(
            "enforcer_transport_request_duration_seconds", "Latency of device requests.",
            ["device", "op"], buckets=PUSH_BUCKETS, registry=m.registry)

    def request(self, device: str, op: str, seconds: float) -> None:
        self.transport_latency.labels(device, op).observe(seconds)
        if op.startswith("snmp"):
            self._m.snmp_requests.labels(device, op.removeprefix("snmp.")).inc()
        elif op in ("ssh.connect", "ssh.open"):
            self._m.ssh_sessions.labels(device, "ok").inc()

    def retry(self, device: str, op: str) -> None:
        if op.startswith("snmp"):
            self._m.snmp_retries.labels(device).inc()

    def error(self, device: str, op: str, kind: str) -> None:
        if op.startswith("snmp"):
            self._m.snmp_errors.labels(device, kind).inc()
        else:
            self._m.ssh_sessions.labels(device, kind).inc()
