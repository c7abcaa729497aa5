"""The figures of the dashboard (OPS-07): role and peer state, sync lag, the
readiness summary, the certificates presented and their expiry, the last
site backup, the connected clients, and the last hour of samples. The
/appliance and /login first pages, ``GET /appliance/api/dashboard`` and
``GET /api/dashboard`` all show this one document, and /metrics reads the
same functions, so no two of them can disagree."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from pydantic import BaseModel

from tether.readiness import ReadinessHost, run as run_readiness
from tether.readiness.checks import Counts

from .sampler import Sampler


class DashboardHost(ReadinessHost, Protocol):
    sampler: Sampler

    def client_counts(self) -> dict: ...
    def status_basics(self) -> dict: ...


class ConnectedClients(BaseModel):
    """The clients connected now, by kind, and their total (``ClientCounts.public``)."""
    representatives: int
    jump_clients: int
    jumpoints: int
    total: int


class FailoverFigures(BaseModel):
    role: str
    generation: int
    paired: bool
    peer: str | None
    peer_reachable: bool | None
    serving: bool | None
    suspended: Any
    lag_seconds: float | None
    lag_entries: int | None
    last_sync_result: Any


class CertificateFigures(BaseModel):
    id: int
    name: str
    builtin: bool
    addresses: list[str]
    not_after: str
    seconds_to_expiry: int
    days_to_expiry: int


class LastBackup(BaseModel):
    at: float
    age_seconds: int
    file: str | None
    by: str
    size: int | None


class ReadinessSummary(BaseModel):
    status: str
    counts: Counts
    failing: list[str]
    warning: list[str]


class Sample(BaseModel):
    at: float
    clients: int
    lag_seconds: float | None
    lag_entries: int | None


class Dashboard(BaseModel):
    """The dashboard's figures (OPS-07), as ``dashboard`` gathers them."""
    at: float
    failover: FailoverFigures
    readiness: ReadinessSummary
    certificates: list[CertificateFigures]
    last_backup: LastBackup | None
    connected_clients: ConnectedClients
    last_hour: list[Sample]


def failover_figures(host: DashboardHost) -> dict:
    """Role, generation, the peer and the sync lag, from the pair's live status."""
    doc = host.failover.status_doc()
    sync = doc.get("sync") or {}
    peer = doc.get("peer") or {}
    return {"role": doc["role"], "generation": doc["generation"], "paired": bool(doc.get("paired")),
            "peer": peer.get("peer_address") if peer else None,
            "peer_reachable": sync.get("peer_reachable") if doc.get("paired") else None,
            "serving": doc.get("serving"), "suspended": doc.get("suspended"),
            "lag_seconds": sync.get("lag_seconds") if doc.get("paired") else None,
            "lag_entries": sync.get("lag_entries") if doc.get("paired") else None,
            "last_sync_result": sync.get("last_sync_result") if doc.get("paired") else None}


def sync_lag(host: DashboardHost) -> tuple[float | None, int | None]:
    f = failover_figures(host)
    return f["lag_seconds"], f["lag_entries"]


def certificate_figures(host: DashboardHost, now: float) -> list[dict]:
    """Every certificate a listener presents (the built-in one where nothing else is assigned)."""
    listing = host.certificates.listing()
    served = host.certificates.served()
    out = []
    for c in listing["certificates"]:
        where = served.get(c["id"])
        if not where:
            continue
        try:
            end = dt.datetime.fromisoformat(c["not_after"].replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError, AttributeError):
            continue
        out.append({"id": c["id"], "name": c["name"], "builtin": c["builtin"], "addresses": where,
                    "not_after": c["not_after"], "seconds_to_expiry": round(end - now),
                    "days_to_expiry": int((end - now) // 86400)})
    return sorted(out, key=lambda c: c["seconds_to_expiry"])


def last_backup(host: DashboardHost, now: float) -> dict | None:
    site = host.site
    if site is None:
        return None
    found = [e for e in site.audit.latest(("backup.create",), limit=50)
             if not (e["details"] or {}).get("kept_on_appliance")]
    if not found:
        return None
    e = found[0]
    return {"at": e["at"], "age_seconds": round(now - e["at"]), "file": e["target"], "by": e["actor"],
            "size": (e["details"] or {}).get("size")}


def readiness_summary(report: dict) -> dict:
    return {"status": report["status"], "counts": report["counts"],
            "failing": [c["name"] for c in report["checks"] if c["status"] == "fail"],
            "warning": [c["name"] for c in report["checks"] if c["status"] == "warn"]}


def dashboard(host: DashboardHost, readiness: dict | None = None) -> dict:
    from tether.core import clock

    now = clock.now()
    report = readiness or run_readiness(host, now)
    return {"at": now, "failover": failover_figures(host), "readiness": readiness_summary(report),
            "certificates": certificate_figures(host, now), "last_backup": last_backup(host, now),
            "connected_clients": host.client_counts(),
            "last_hour": [s.public() for s in host.sampler.last_hour()]}
