"""The readiness audit (DR-01), the dashboard (OPS-07) and /metrics (OPS-04)
on the wire: ``appliance_router`` (mounted under /appliance/api: readiness,
readiness/copies, dashboard), ``site_router`` (under /api: dashboard and
readiness for a site user holding config:read) and ``metrics_routes``
(/metrics, for Prometheus). The pages (web/monitoring_pages.py) call the
same functions."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.routing import Route

from tether.core.errors import Forbidden, Invalid, TetherError, Unauthorized
from tether.monitoring import metrics
from tether.monitoring.figures import Dashboard
from tether.readiness import Report, copies
from tether.site import permissions as P

from .appliance_api import Admin
from .auth import Principal, appliance_of, client_ip
from .bodies import reply
from .errors import error_response
from .site_deps import Caller
from .uploads import COPIES

appliance_router = APIRouter()
site_router = APIRouter()

COPIES_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["package", "vendor_key"], "properties": {
        "package": {"type": "string", "format": "binary", "description": "the site package (.tsp) installed last"},
        "vendor_key": {"type": "string", "format": "binary",
                       "description": "the vendor's Ed25519 public key (PEM) that signed it"}}}}}}}


@appliance_router.get("/readiness", summary="The readiness audit (DR-01): every named check, pass, warn or fail",
                      **reply(Report))
def get_readiness(request: Request, _p: Admin) -> dict:
    return appliance_of(request).readiness()


async def confirm_copies(request: Request, p: Principal) -> dict:
    """Shared by the page and the API: the two files from a ``COPIES.bounded`` request, compared."""
    async with request.form() as form:
        pkg, key = form.get("package"), form.get("vendor_key")
        package = await pkg.read(COPIES.limit + 1) if hasattr(pkg, "read") else b""
        vendor_key = await key.read(64 * 1024) if hasattr(key, "read") else str(key or "").encode()
    if len(package) > COPIES.limit:
        raise COPIES.too_large()
    if not package:
        raise Invalid("upload the site package (.tsp) you keep off the appliance", field="package")
    if not vendor_key.strip():
        raise Invalid("upload the vendor public key (PEM) you keep off the appliance", field="vendor_key")
    return await asyncio.to_thread(copies.confirm, appliance_of(request), package, vendor_key, p.name,
                                   client_ip(request))


@appliance_router.post("/readiness/copies", summary="Show the appliance your off-appliance copies of the site "
                       "package and the vendor key (DR-01)", openapi_extra=COPIES_BODY,
                      **reply(copies.CopiesConfirmed))
async def post_readiness_copies(request: Request) -> dict:
    from .appliance_api import admin

    request = COPIES.bounded(request)  # before authenticating: a cookie's CSRF token is in the body
    return await confirm_copies(request, await admin(request))


@appliance_router.get("/dashboard", summary="The dashboard's figures (OPS-07): role, peer, sync lag, readiness, "
                      "certificates, last backup, clients, the last hour",
                      **reply(Dashboard))
def get_dashboard(request: Request, _p: Admin) -> dict:
    return appliance_of(request).dashboard()


@site_router.get("/dashboard", summary="The dashboard's figures (OPS-07), as /login/status shows them",
                      **reply(Dashboard))
def get_site_dashboard(request: Request, p: Caller) -> dict:
    p.require(P.CONFIG_READ)
    return appliance_of(request).dashboard()


@site_router.get("/readiness", summary="The readiness audit (DR-01), as the /login dashboard summarises it",
                      **reply(Report))
def get_site_readiness(request: Request, p: Caller) -> dict:
    p.require(P.CONFIG_READ)
    return appliance_of(request).readiness()


def _metrics_allowed(request: Request) -> None:
    """An address in monitoring.metrics.allowed_networks, or an API account's bearer token with ``metrics``."""
    app = appliance_of(request)
    nets = app.settings.get("monitoring").metrics.allowed_networks
    if metrics.network_allowed(nets, client_ip(request)):
        return
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token:
        raise Unauthorized("/metrics needs a bearer token of an API account holding the 'metrics' permission",
                           hint="or add the scraper's network to monitoring.metrics.allowed_networks")
    site = app.site
    account = site.api_accounts.principal(token) if site is not None else None
    if account is None:
        raise Unauthorized("the token is invalid or has expired", hint="POST /api/oauth/token for a new one")
    if P.METRICS not in account.granted:
        raise Forbidden(f"API account {account.name!r} lacks the 'metrics' permission")


async def get_metrics(request: Request) -> Response:
    try:
        _metrics_allowed(request)
        body = await asyncio.to_thread(metrics.exposition, appliance_of(request))
    except TetherError as exc:
        resp = error_response(exc)
        if isinstance(exc, Unauthorized):
            resp.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return resp
    return Response(body, media_type=metrics.CONTENT_TYPE)


metrics_routes = [Route("/metrics", get_metrics, methods=["GET"])]
