"""The /appliance JSON API (``/appliance/api``), the twin of the /appliance
HTML pages: session login with the prerequisite agreement, first-login
password change, Status > Basics, Networking, Security, the audit log and
site-package installation, configuration export/import, snapshot, the
recovery kit, factory reset and shut down. OpenAPI at /appliance/api/openapi.json.
The maintenance actions are functions here that the pages (appliance_pages)
call too: one check, one audit record each."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, JSONResponse, Response

from tether.appliance import config_export
from tether.appliance.settings import SECTIONS, LoginAgreement
from tether.appliance.support import DeskAnswer, PendingIncident
from tether.core.audit import AuditEntry
from tether.runtime.appliance import FactoryReset, SiteInstalled, StatusBasics
from tether.runtime.jobs import JobStatus
from tether.backup.writer import sha256_file
from tether.core.errors import Invalid, Unauthorized
from tether.core.validate import Bool, Int, Natural
from tether.site.package import MAX_PACKAGE_BYTES

from . import auth, bodies, cert_api, drill_api
from .auth import Principal, appliance_of, client_ip
from .bodies import Ok, file_reply, reply
from .errors import ERROR_RESPONSES, install_json_handlers
from .uploads import FORM_OVERHEAD, SITE_PACKAGE


class LoginBody(BaseModel):
    username: str
    password: str
    accept_agreement: Bool = False


class IncidentBody(BaseModel):
    summary: Annotated[str, Field(min_length=3, max_length=200)]
    details: Annotated[str | None, Field(max_length=20000)] = None
    severity: Annotated[int, Field(ge=1, le=3)] = 2


class SnapshotBody(BaseModel):
    password: str


class ConfirmBody(BaseModel):
    confirm: str


class KitBody(BaseModel):
    password: str


class PasswordBody(BaseModel):
    current_password: str
    new_password: str


class ApplianceSession(BaseModel):
    """The answer of an /appliance login: the bearer token, and the CSRF token of its cookie twin."""
    token: str
    csrf_token: str
    expires_at: float
    must_change_password: bool


class InstalledSite(BaseModel):
    """The installed site (``SiteInfo.public``), or ``installed: false`` alone."""
    installed: bool
    name: str | None = None
    edition: str | None = None
    version: str | None = None
    installed_at: float | None = None
    updated_at: float | None = None


class ShuttingDown(Ok):
    message: str


async def admin(request: Request) -> Principal:
    return await auth.appliance_principal(request)


async def admin_pending(request: Request) -> Principal:
    return await auth.appliance_principal(request, allow_pending_password=True)


Admin = Annotated[Principal, Depends(admin)]


def login(request: Request, username: str, password: str, accepted: bool) -> tuple[str, Any]:
    """Shared by the HTML and JSON logins: agreement, throttle, password, session, audit."""
    app = appliance_of(request)
    agreement = app.settings.get("security").login_agreement
    if agreement.enabled and not accepted:
        raise Invalid("accept the login agreement first", field="accept_agreement",
                      hint="read it (GET /appliance/api/agreement, or /appliance in a browser), then accept it: "
                           "tether ... --accept-agreement, or accept_agreement=true in the API")
    ip = client_ip(request)
    try:
        app.admin.authenticate(username, password, ip)
    except Unauthorized:
        app.audit.record(username or "-", "login.failed", "appliance", ip)
        raise
    token, session = app.sessions.create(username, ip)
    app.audit.record(username, "login", "appliance", ip)
    return token, session


def change_password(request: Request, p: Principal, current: str, new: str) -> None:
    app = appliance_of(request)
    app.admin.change_password(p.name, current, new, client_ip(request))
    app.sessions.delete_user(p.name, keep=p.token)
    app.audit.record(p.name, "password.change", "appliance", client_ip(request))


# --- maintenance: what the /appliance/maintenance page and these routes share ------------------------------
FACTORY_RESET_PHRASE = "factory reset"


def export_config(request: Request, p: Principal) -> tuple[str, str]:
    """(file name, YAML) of the /appliance configuration export (APPL-04), audited."""
    app = appliance_of(request)
    name, text = config_export.export_document(app)
    app.audit.record(p.name, "config.export", name, client_ip(request),
                     {"sha256": config_export.digest(app)})  # the readiness audit compares it (DR-01)
    return name, text


async def read_config_upload(file: UploadFile | None) -> bytes:
    data = await file.read(config_export.MAX_BYTES + 1) if file is not None else b""
    if not data:
        raise Invalid("upload the configuration export file", field="file")
    return data


def import_config(request: Request, p: Principal, data: bytes) -> dict:
    return config_export.import_document(appliance_of(request), data, p.name, client_ip(request))


def take_snapshot(request: Request, p: Principal, password: str) -> Path:
    """A whole-appliance snapshot (APPL-07) in the downloads folder; the caller sends and removes it."""
    from tether.backup import appliance_snapshot

    app = appliance_of(request)
    path = appliance_snapshot.create(app, app.data.backups_dir / ".downloads", password)
    app.audit.record(p.name, "snapshot.create", path.name, client_ip(request))
    return path


def make_kit(request: Request, p: Principal, password: str) -> Path:
    """The recovery kit (DR-05) in the downloads folder; the caller sends and removes it."""
    from tether.backup import kit

    app = appliance_of(request)
    path = kit.export(app, app.data.backups_dir / ".downloads", password, p.name, client_ip(request))
    kept = app.data.site_package
    # what the kit carries, for the readiness audit (DR-01): the configuration's digest, and the site package
    # with its vendor key (the certificates' .p12 exports are audited by the certificate service itself)
    app.audit.record(p.name, "kit.export", path.name, client_ip(request),
                     {"config_sha256": config_export.digest(app),
                      "package_sha256": sha256_file(kept) if app.site is not None and kept.exists() else None})
    return path


def download(path: Path) -> FileResponse:
    return FileResponse(path, media_type="application/octet-stream", filename=path.name,
                        background=BackgroundTask(os.unlink, path))


def factory_reset(request: Request, p: Principal, confirm: str) -> dict:
    if confirm != FACTORY_RESET_PHRASE:
        raise Invalid(f"type '{FACTORY_RESET_PHRASE}' to confirm", field="confirm")
    return appliance_of(request).factory_reset(p.name, client_ip(request))


def shutdown(request: Request, p: Principal) -> BackgroundTask:
    """Audit the shutdown; the task (run after the answer is sent) stops the process (SIGTERM)."""
    appliance_of(request).audit.record(p.name, "appliance.shutdown", "appliance", client_ip(request))
    return BackgroundTask(os.kill, os.getpid(), signal.SIGTERM)


# the OpenAPI description of the body both faces read through SITE_PACKAGE (a multipart form, field "file")
SITE_PACKAGE_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {
        "type": "string", "format": "binary",
        "description": f"the signed site package (.tsp), at most {MAX_PACKAGE_BYTES} bytes; the whole body "
                       f"at most {FORM_OVERHEAD} bytes more"}}}}}}}


async def install_site_package(request: Request, p: Principal) -> dict:
    """Shared by the page and the API: the package read from a ``SITE_PACKAGE.bounded`` request, installed."""
    data = await SITE_PACKAGE.read_file(request)
    return appliance_of(request).install_site_package(data, p.name, client_ip(request))


SETTINGS_SECTIONS = {
    "networking": "Networking settings",
    "security": "Security settings (TLS, administration, syslog, agreement, SMTP)",
    "support": "The support desk this appliance reports to (DESK-09: URL, appliance token, when to report)",
    "monitoring": "Readiness audit thresholds (DR-01) and the networks that may scrape /metrics (OPS-04)",
    "storage": "Where the site's file store and recordings live: local disk or an S3-compatible bucket (OPS-06)",
}


def _settings_routes(api: FastAPI, section: str, title: str) -> None:
    """GET and PUT of one settings section; the same validation and audit for all."""

    def get(request: Request, _p: Admin) -> dict:
        return appliance_of(request).settings.public(section)

    def put(request: Request, body: dict[str, Any], p: Admin) -> dict:
        return appliance_of(request).update_settings(section, body, p.name, client_ip(request))

    api.add_api_route(f"/{section}", get, methods=["GET"], summary=title, name=f"get_{section}",
                      **reply(SECTIONS[section]))
    api.add_api_route(f"/{section}", put, methods=["PUT"], summary=f"Replace: {title}", name=f"put_{section}",
                      openapi_extra=bodies.body_of(SECTIONS[section]), **reply(SECTIONS[section]))


def create() -> FastAPI:
    api = FastAPI(title="Tether /appliance API", version="1", openapi_url="/openapi.json", docs_url=None,
                  redoc_url=None, servers=[{"url": "/appliance/api"}], responses=ERROR_RESPONSES)
    install_json_handlers(api)
    bodies.install(api)
    api.include_router(cert_api.router)
    api.include_router(drill_api.router)
    from . import monitoring_api  # it imports this module's Admin

    api.include_router(monitoring_api.appliance_router)

    @api.get("/agreement", summary="The prerequisite login agreement (no authentication)",
            **reply(LoginAgreement))
    def get_agreement(request: Request) -> dict:
        a = appliance_of(request).settings.get("security").login_agreement
        return a.model_dump()

    @api.post("/session", summary="Log in; returns a bearer session token",
              **reply(ApplianceSession))
    def post_session(request: Request, body: LoginBody) -> dict:
        token, s = login(request, body.username, body.password, body.accept_agreement)
        return {"token": token, "csrf_token": s.csrf_token, "expires_at": s.expires_at,
                "must_change_password": appliance_of(request).admin.must_change_password(body.username)}

    @api.delete("/session", summary="Log out",
                **reply(Ok))
    def delete_session(request: Request, p: Annotated[Principal, Depends(admin_pending)]) -> dict:
        appliance_of(request).sessions.delete(p.token)
        return {"ok": True}

    @api.post("/password", summary="Change the admin password (required at first login)",
              **reply(Ok))
    def post_password(request: Request, body: PasswordBody, p: Annotated[Principal, Depends(admin_pending)]) -> dict:
        change_password(request, p, body.current_password, body.new_password)
        return {"ok": True}

    @api.get("/status", summary="Status > Basics",
            **reply(StatusBasics))
    def get_status(request: Request, _p: Admin) -> dict:
        return appliance_of(request).status_basics()

    for section, title in SETTINGS_SECTIONS.items():
        _settings_routes(api, section, title)

    @api.get("/jobs", summary="Every background job: kind, roles, runs, failures, last and next run, last error",
            **reply(list[JobStatus]))
    def get_jobs(request: Request, _p: Admin) -> list[dict]:
        return appliance_of(request).jobs.status()

    @api.get("/audit", summary="The /appliance audit log, newest first",
            **reply(list[AuditEntry]))
    def get_audit(request: Request, _p: Admin, limit: Int = 100, offset: Natural = 0) -> list[dict]:
        return appliance_of(request).audit.list(min(max(limit, 1), 1000), max(offset, 0))

    @api.get("/site", summary="The installed site, if any",
            **reply(InstalledSite))
    def get_site(request: Request, _p: Admin) -> dict:
        app = appliance_of(request)
        return {"installed": app.site is not None, **(app.site.info().public() if app.site else {})}

    @api.get("/config/export", summary="Export the whole /appliance configuration as YAML (APPL-04)", response_class=Response,
             responses={200: {"content": {"application/yaml": {"schema": {
                                  "type": "object", "required": ["format", "sections"]}}},
                              "description": "The export document (docs/formats/)"}})
    def get_config_export(request: Request, p: Admin) -> Response:
        name, text = export_config(request, p)
        return Response(text, media_type="application/yaml",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @api.post("/config/import", summary="Import an /appliance configuration export; reports each section",
              **reply(config_export.ImportReport))
    async def post_config_import(request: Request, p: Admin, file: UploadFile) -> dict:
        return import_config(request, p, await read_config_upload(file))

    @api.post("/factory-reset", summary="Wipe everything and return to a fresh appliance (APPL-06)",
              **reply(FactoryReset))
    def post_factory_reset(request: Request, body: ConfirmBody, p: Admin) -> dict:
        return factory_reset(request, p, body.confirm)

    @api.post("/snapshot", summary="Download a whole-appliance snapshot (APPL-07); password in the body",
              response_class=FileResponse, **file_reply(description="The snapshot"))
    def post_snapshot(request: Request, body: SnapshotBody, p: Admin):
        return download(take_snapshot(request, p, body.password))

    @api.post("/kit", summary="Download the recovery kit (DR-05): configuration, certificates (.p12), a fresh "
              "site backup, the site package, vendor keys and a runbook, under one password",
              response_class=FileResponse, **file_reply(description="The recovery kit"))
    def post_kit(request: Request, body: KitBody, p: Admin):
        return download(make_kit(request, p, body.password))

    @api.post("/shutdown", summary="Shut the appliance down cleanly (APPL-06)",
              **reply(ShuttingDown))
    def post_shutdown(request: Request, p: Admin) -> Response:
        return JSONResponse({"ok": True, "message": "shutting down"}, background=shutdown(request, p))

    @api.get("/support/pending", summary="Support incidents waiting for the desk (sent again until it takes them)",
            **reply(list[PendingIncident]))
    def get_support_pending(request: Request, _p: Admin) -> list[dict]:
        return appliance_of(request).support.pending()

    @api.post("/support/incident", status_code=201, summary="Open a support incident with version, status and logs",
              **reply(DeskAnswer, 201))
    def post_support_incident(request: Request, body: IncidentBody, p: Admin) -> dict:
        return appliance_of(request).support.open_incident(body.summary, body.details, body.severity, p.name,
                                                           client_ip(request))

    @api.post("/site-package", summary="Install or update the site from a signed site package",
              openapi_extra=SITE_PACKAGE_BODY, **reply(SiteInstalled))
    async def post_site_package(request: Request) -> dict:
        request = SITE_PACKAGE.bounded(request)  # before authenticating: a cookie's CSRF token is in the body
        return await install_site_package(request, await admin(request))

    return api
