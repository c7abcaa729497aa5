"""The desk's ASGI application and its server: FastAPI app (JSON API with
OpenAPI at /api/openapi.json, HTML pages), plus, on the same event loop, the
SMTP listener for incoming mail and the periodic job loop.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from tether.core import apidocs
from tether.core.apierrors import install_json_handlers
from tether.core.bodylimit import KIB, MIB, BodyLimit, BodyLimits, Limit

from . import api, api_ops, web
from .jobs import run_jobs
from .mailin import start_listener

log = logging.getLogger("tether.desk")
# as the appliance's faces: nothing inline, nothing from elsewhere, no framing
# every JSON or form body is at most JSON_MAX; those carrying attachments (base64 in JSON, or files in a
# form) the desk's attachment limits and their framing; all checked before a body is read (core.bodylimit)
JSON_MAX = 1 * MIB


def body_limits(config) -> BodyLimits:
    files = config.max_attachments * config.max_attachment_bytes
    as_form, as_json = files + 256 * KIB, files * 4 // 3 + 256 * KIB  # base64 is 4/3 of the bytes
    return BodyLimits(JSON_MAX, [Limit("POST", "/api/incidents", as_json),
                                 Limit("POST", "/api/incidents/{number}/messages", as_json),
                                 Limit("POST", "/api/appliance/incidents", as_form),
                                 Limit("POST", "/new", as_form)])


CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"


def create_app(desk, *, smtp_listen: tuple[str, int] | None = None, jobs_interval: float = 0) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        smtp = await start_listener(desk, *smtp_listen) if smtp_listen else None
        loop_task = asyncio.create_task(_job_loop(desk, jobs_interval)) if jobs_interval > 0 else None
        try:
            yield
        finally:
            if loop_task:
                loop_task.cancel()
            if smtp:
                smtp.close()
                await smtp.wait_closed()

    app = FastAPI(title="Tether support desk", version="1", lifespan=lifespan,
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    app.state.desk = desk
    # Swagger UI from the package itself: an air-gapped desk shows it too (no CDN)
    app.router.routes.extend(apidocs.routes("/api/docs", "/api/openapi.json", "Tether support desk API"))
    install_json_handlers(app)
    app.include_router(api.router)
    app.include_router(api_ops.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request, call_next):
        response = await call_next(request)
        response.headers.setdefault("content-security-policy", CSP)
        response.headers.setdefault("x-frame-options", "DENY")
        response.headers.setdefault("x-content-type-options", "nosniff")
        return response

    app.add_middleware(BodyLimit, limits=body_limits(desk.config))  # outermost: before any other code reads
    return app


async def _job_loop(desk, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(run_jobs, desk)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("job run failed")
