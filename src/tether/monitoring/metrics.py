"""/metrics (OPS-04): a ``prometheus_client`` collector that reads the
appliance's live state at scrape time (nothing is updated along the way), in
the Prometheus text format. The families are listed in docs/formats/metrics.md;
the figures are the dashboard's (``figures``) and the readiness audit's.
Who may scrape is ``allowed``: an address in the ``monitoring.metrics``
allowed networks, or a bearer token of an API account holding the
``metrics`` permission (checked by the web layer)."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterator, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from tether.readiness import run as run_readiness

from . import figures

ROLES = ("none", "primary", "backup")
STATUS_VALUE = {"pass": 0, "warn": 1, "fail": 2}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SYNC_RESULTS = ("ok", "failed", "paused", "not_started")


def sync_result(text: str) -> str:
    """The backup's last sync result as one of ``SYNC_RESULTS`` (a label never carries free text)."""
    for r in ("ok", "failed", "paused"):
        if text.startswith(r):
            return r
    return "not_started"


class MetricsHost(figures.DashboardHost, Protocol):
    clients: Any  # the hub: refused_busy
    connections: Any  # the connection guard: refused

    def serving(self) -> bool: ...


class ApplianceCollector:
    """Reads everything at ``collect`` time."""

    def __init__(self, host: MetricsHost):
        self.host = host

    def collect(self) -> Iterator[Metric]:
        from tether.core import clock

        h = self.host
        now = clock.now()
        b = h.status_basics()
        info = InfoMetricFamily("tether_appliance", "This appliance: software version and identity")
        info.add_metric([], {"version": b["appliance_version"], "appliance_id": b["appliance_id"],
                             "hostname": b["hostname"], "model": b["model"]})
        yield info

        f = figures.failover_figures(h)
        role = GaugeMetricFamily("tether_role", "1 for the failover role this appliance holds", labels=["role"])
        for r in ROLES:
            role.add_metric([r], 1.0 if f["role"] == r else 0.0)
        yield role
        yield GaugeMetricFamily("tether_generation", "The failover generation (raised at every role change)",
                                value=f["generation"])
        yield GaugeMetricFamily("tether_failover_paired", "1 while this appliance is in a failover pair",
                                value=1.0 if f["paired"] else 0.0)
        yield GaugeMetricFamily("tether_serving", "1 while this appliance serves its site (/health is 200)",
                                value=1.0 if h.serving() else 0.0)
        if f["paired"]:
            yield GaugeMetricFamily("tether_peer_reachable", "1 while the failover peer answers",
                                    value=1.0 if f["peer_reachable"] else 0.0)
            if f["lag_seconds"] is not None:
                yield GaugeMetricFamily("tether_sync_lag_seconds", "How far the backup is behind the primary, "
                                        "in seconds", value=f["lag_seconds"])
            if f["lag_entries"] is not None:
                yield GaugeMetricFamily("tether_sync_lag_entries", "How far the backup is behind the primary, "
                                        "in change-log entries", value=f["lag_entries"])
            if f["last_sync_result"] is not None:
                res = GaugeMetricFamily("tether_sync_last_result", "1 for the result of the backup's last sync "
                                        "(ok, failed, paused, not_started)", labels=["result"])
                got = sync_result(str(f["last_sync_result"]))
                for r in SYNC_RESULTS:
                    res.add_metric([r], 1.0 if r == got else 0.0)
                yield res

        last = figures.last_backup(h, now)
        if last is not None:
            yield GaugeMetricFamily("tether_last_backup_timestamp_seconds", "When the last site backup was taken "
                                    "(Unix time)", value=last["at"])
            yield GaugeMetricFamily("tether_last_backup_age_seconds", "Age of the last site backup",
                                    value=now - last["at"])

        counts = h.client_counts()
        clients = GaugeMetricFamily("tether_connected_clients", "Clients connected now, by kind", labels=["kind"])
        for kind in ("representatives", "jump_clients", "jumpoints"):
            clients.add_metric([kind], counts[kind])
        yield clients
        busy = CounterMetricFamily("tether_connections_refused_busy", "Client connections refused as busy "
                                   "(the site's connection rate) since the appliance started")
        busy.add_metric([], h.clients.refused_busy)
        yield busy
        per_source = CounterMetricFamily("tether_connections_refused_per_source", "TCP connections closed at once: "
                                         "their source held its maximum of connections")
        per_source.add_metric([], h.connections.refused)
        yield per_source

        expiry = GaugeMetricFamily("tether_certificate_expiry_seconds", "Seconds until each presented certificate "
                                   "expires (negative: expired)", labels=["id", "name", "addresses"])
        for c in figures.certificate_figures(h, now):
            expiry.add_metric([str(c["id"]), c["name"], ",".join(c["addresses"])], c["seconds_to_expiry"])
        yield expiry

        report = run_readiness(h, now)
        check = GaugeMetricFamily("tether_readiness_check", "Each readiness check: 0 pass, 1 warn, 2 fail",
                                  labels=["check"])
        for c in report["checks"]:
            check.add_metric([c["name"]], STATUS_VALUE[c["status"]])
        yield check
        yield GaugeMetricFamily("tether_readiness_checks_failing", "Readiness checks failing now",
                                value=report["counts"]["fail"])

        job = ["background_job"]  # not "job": Prometheus's own target label
        runs = CounterMetricFamily("tether_job_runs", "Runs of each background job", labels=job)
        fails = CounterMetricFamily("tether_job_failures", "Failed runs of each background job", labels=job)
        running = GaugeMetricFamily("tether_job_running", "1 while the job runs", labels=job)
        erring = GaugeMetricFamily("tether_job_last_run_failed", "1 when the job's last run failed", labels=job)
        for j in h.jobs.status():
            runs.add_metric([j["name"]], j["runs"])
            fails.add_metric([j["name"]], j["failures"])
            running.add_metric([j["name"]], 1.0 if j["running"] else 0.0)
            erring.add_metric([j["name"]], 1.0 if j["last_error"] else 0.0)
        yield from (runs, fails, running, erring)


def exposition(host: MetricsHost) -> bytes:
    """The text exposition of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApplianceCollector(host))
    return generate_latest(registry)


def network_allowed(networks: list[str], client_ip: str | None) -> bool:
    if not client_ip:
        return False
    try:
        ip = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in map(ipaddress.ip_network, networks))
