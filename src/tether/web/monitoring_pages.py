"""The dashboards (OPS-07) on the first page of each face — /appliance/status
(above Status > Basics) and /login/status (above Status > Information) — and
/appliance/status/readiness (Status > Readiness, DR-01, with the form that
shows the appliance the off-appliance copies). The figures are those of
``GET /appliance/api/dashboard`` and ``GET /api/dashboard``: one function."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request

from tether.core import clock
from tether.core.errors import TetherError
from tether.monitoring import chart
from tether.monitoring.sampler import Sample
from tether.site import permissions as P

from . import appliance_pages, login_pages
from .appliance_pages import STATUS_LABELS
from .auth import appliance_of
from .monitoring_api import confirm_copies
from .pages import render
from .uploads import COPIES

router = APIRouter()


age = clock.span  # the templates' age(seconds)


def dashboard_context(request: Request) -> dict:
    dash = appliance_of(request).dashboard()
    samples = [Sample(**s) for s in dash["last_hour"]]
    return {"dash": dash, "age": age, "chart": chart.svg(samples, dash["at"], lag=dash["failover"]["paired"])}


@router.get("/appliance/status")
async def appliance_status(request: Request):
    async def h(p):
        app = appliance_of(request)
        b = app.status_basics()
        b["uptime"] = time.strftime("%H:%M:%S", time.gmtime(b["uptime_seconds"]))
        if b["uptime_seconds"] >= 86400:
            b["uptime"] = f"{b['uptime_seconds'] // 86400} d {b['uptime']}"
        items = [(k, label, b[k]) for k, label in STATUS_LABELS]
        ctx = await asyncio.to_thread(dashboard_context, request)
        return render(request, appliance_pages.FACE, "status.html", "Status", csrf_token=p.csrf_token, items=items,
                      table_id="status-basics", table_title="Basics", readiness_url="/appliance/status/readiness",
                      **ctx)
    return await appliance_pages._page(request, h)


def _readiness(request: Request, p, status: int = 200, **extra):
    report = appliance_of(request).readiness()
    return render(request, appliance_pages.FACE, "appliance/readiness.html", "Status › Readiness", status=status,
                  csrf_token=p.csrf_token, report=report,
                  checked_at=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(report["checked_at"])), **extra)


@router.get("/appliance/status/readiness")
async def readiness_page(request: Request):
    async def h(p):
        return await asyncio.to_thread(_readiness, request, p)
    return await appliance_pages._page(request, h)


@router.post("/appliance/status/readiness/copies")
async def readiness_copies(request: Request):
    request = COPIES.bounded(request)  # as the API: the CSRF token is read from the bounded body

    async def h(p):
        try:
            res = await confirm_copies(request, p)
        except TetherError as exc:
            return await asyncio.to_thread(_readiness, request, p, exc.status, error=exc.message)
        return await asyncio.to_thread(_readiness, request, p,
                                       notice=f"The copies match the installed site package {res['version']}.")
    return await appliance_pages._page(request, h)


@router.get("/login/status")
async def site_status(request: Request):
    async def h(p):
        i = appliance_of(request).site_information()
        c = i["connected_clients"]
        items = [("product_version", "Product version", i["product_version"]), ("site_name", "Site name", i["site_name"]),
                 ("edition", "Edition", i["edition"]), ("appliance_role", "Appliance role", i["appliance_role"]),
                 ("clients_representatives", "Connected representatives", c["representatives"]),
                 ("clients_jump", "Connected jump clients", c["jump_clients"]),
                 ("clients_jumpoints", "Connected jumpoints", c["jumpoints"])]
        ctx = await asyncio.to_thread(dashboard_context, request) if P.CONFIG_READ in p.granted else {}
        return render(request, login_pages.FACE, "status.html" if ctx else "keyvalue.html", "Status",
                      csrf_token=p.csrf_token, items=items, table_id="status-information", table_title="Information",
                      **ctx)
    return await login_pages._page(request, h)
