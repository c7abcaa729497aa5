"""The ASGI app factory: one app per appliance process, composed of the
/appliance pages and API, the /login pages, the /api site API, the /client channel, /health, /metrics and
static files, behind the security-header and admin-network middleware."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.core import apidocs
from tether.core.bodylimit import BodyLimit
from tether.runtime import Appliance

from . import appliance_api, appliance_pages, cert_pages, client_channel, drill_pages, failover_pages, login_pages, maintenance_pages, monitoring_api, monitoring_pages, peer_api, site_api, site_clients_pages, site_data_pages, software_pages
from .errors import install_page_handlers
from .uploads import BODY_LIMITS

SECURITY_HEADERS = [
    (b"strict-transport-security", b"max-age=31536000"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                 b"form-action 'self'"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AdminNetworks:
    """APPL-03: /appliance answers only to the allowed networks and ports."""

    def __init__(self, app: ASGIApp, appliance: Appliance):
        self.app = app
        self.appliance = appliance

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] == "http" and scope["path"].startswith("/appliance"):
            client = scope.get("client") or (None, None)
            server = scope.get("server") or (None, None)
            if not self.appliance.admin_allowed(client[0], server[1]):
                body = {"error": "forbidden", "message": "/appliance is not reachable from this network or port"}
                return await JSONResponse(body, status_code=403)(scope, receive, send)
        await self.app(scope, receive, send)


class ReplicationBarrier:
    """Synchronous failover mode: a change made by an unsafe /api or /login request is answered only
    once the backup has applied it (tether.failover.syncmode); 503 ``not_replicated`` when it does not
    confirm in time in strict mode."""

    UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

    def __init__(self, app: ASGIApp, appliance: Appliance):
        self.app = app
        self.appliance = appliance

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        path = scope.get("path", "")
        if (scope["type"] != "http" or scope["method"] not in self.UNSAFE or path.startswith("/api/failover")
                or not path.startswith(("/api/", "/login/")) or not self.appliance.failover.syncmode.active()):
            return await self.app(scope, receive, send)
        import asyncio

        from tether.core.errors import TetherError

        from .errors import error_response
        replaced = False

        async def barrier_send(message):
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start" and message["status"] < 400:
                failover = self.appliance.failover
                try:
                    await failover.syncmode.barrier(await asyncio.to_thread(failover.head))
                except TetherError as exc:
                    replaced = True
                    return await error_response(exc)(scope, receive, send)
            await send(message)

        await self.app(scope, receive, barrier_send)


def create_app(appliance: Appliance) -> ASGIApp:
    app = FastAPI(title="Tether", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.appliance = appliance
    install_page_handlers(app)
    # browsable API documentation, served from the package (no CDN), ahead of the API mounts
    app.router.routes.extend(apidocs.routes("/api/docs", "/api/openapi.json", "Tether site API"))
    app.router.routes.extend(apidocs.routes("/appliance/api/docs", "/appliance/api/openapi.json",
                                            "Tether /appliance API"))
    for sub, prefix in ((appliance_api.create(), "/appliance/api"), (site_api.create(), "/api")):
        sub.state.appliance = appliance
        app.mount(prefix, sub)
    app.include_router(appliance_pages.router)
    app.include_router(monitoring_pages.router)
    app.include_router(cert_pages.router)
    app.include_router(maintenance_pages.router)
    app.include_router(drill_pages.router)
    app.include_router(login_pages.router)
    app.include_router(site_data_pages.router)
    app.include_router(site_clients_pages.router)
    app.include_router(software_pages.router)
    app.include_router(failover_pages.router)
    app.router.routes.extend(client_channel.routes)
    app.router.routes.extend(peer_api.routes)
    app.router.routes.extend(monitoring_api.metrics_routes)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():  # what a browser asks for when a page names no icon (the pages name /static/favicon.svg)
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/")
    async def root():
        return RedirectResponse("/login", status_code=303)

    @app.get("/health")
    async def health(request: Request):
        """200 only where this appliance serves its site (role none or primary), 503 otherwise: for load balancers."""
        ok, text = request.app.state.appliance.health()
        return PlainTextResponse(text + "\n", status_code=200 if ok else 503)

    @app.get("/check_health")
    async def check_health(request: Request):
        """IC-04's unauthenticated form: 200 or 500 with a one-line message and nothing else."""
        ok, text = request.app.state.appliance.health()
        return PlainTextResponse(text + "\n", status_code=200 if ok else 500)

    # /client WebSockets before the framework (PERF-08); then the body cap: a request over its limit is
    # answered 413 before any other code reads it
    return client_channel.ClientChannel(
        SecurityHeaders(BodyLimit(AdminNetworks(ReplicationBarrier(app, appliance), appliance), BODY_LIMITS)),
        appliance)
