"""The /appliance HTML pages: agreement, login, forced password change,
Networking, Security, Storage, Site package, Audit (Status, the dashboard, and Status >
Readiness: web/monitoring_pages.py). Each page calls
the same runtime functions as its /appliance/api twin."""

from __future__ import annotations

import hashlib
import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from tether.core.errors import Invalid, TetherError

from . import auth, forms
from .appliance_api import SITE_PACKAGE, change_password, install_site_package, login
from .auth import appliance_of, client_ip
from .pages import Face, add_session_routes, error_page, page_runner, redirect, render

FACE = Face("/appliance", "/appliance", auth.APPLIANCE_COOKIE, (
    ("/appliance/status", "Status"), ("/appliance/drills", "Drills"), ("/appliance/networking", "Networking"),
    ("/appliance/security", "Security"), ("/appliance/storage", "Storage"), ("/appliance/certificates", "Certificates"),
    ("/appliance/site", "Site"), ("/appliance/maintenance", "Maintenance"), ("/appliance/audit", "Audit log")))
AGREEMENT_COOKIE = "tether_agreement"

router = APIRouter()


def _agreement_digest(text: str, title: str) -> str:
    return hashlib.sha256(f"{title}\0{text}".encode()).hexdigest()[:32]


def _agreement_accepted(request: Request) -> bool:
    a = appliance_of(request).settings.get("security").login_agreement
    return not a.enabled or request.cookies.get(AGREEMENT_COOKIE) == _agreement_digest(a.text, a.title)


_page = page_runner(FACE, auth.appliance_principal)


@router.get("/appliance")
async def home(request: Request):
    return redirect("/appliance/status")


@router.get("/appliance/login")
async def login_page(request: Request):
    app = appliance_of(request)
    token = auth.prelogin_token(request)
    a = app.settings.get("security").login_agreement
    if not _agreement_accepted(request):
        resp = render(request, FACE, "agreement.html", a.title, nav=False, agreement=a, prelogin=token,
                      accept_url="/appliance/agreement")
    else:
        resp = render(request, FACE, "login.html", "Log in to /appliance", nav=False, prelogin=token,
                      agreement_accepted=a.enabled)
    auth.set_prelogin_cookie(resp, token, "/appliance")
    return resp


@router.post("/appliance/agreement")
async def accept_agreement(request: Request):
    form = await request.form()
    try:
        auth.check_prelogin(request, form.get("csrf_token"))
    except TetherError as exc:
        return error_page(request, FACE, exc)
    a = appliance_of(request).settings.get("security").login_agreement
    resp = redirect("/appliance/login")
    resp.set_cookie(AGREEMENT_COOKIE, _agreement_digest(a.text, a.title), path="/appliance", secure=True,
                    httponly=True, samesite="strict")
    appliance_of(request).audit.record("-", "agreement.accept", "appliance", client_ip(request))
    return resp


@router.post("/appliance/login")
async def login_submit(request: Request):
    form = await request.form()
    username = str(form.get("username") or "")
    try:
        auth.check_prelogin(request, form.get("csrf_token"))
        token, _s = login(request, username, str(form.get("password") or ""), _agreement_accepted(request))
    except Invalid as exc:  # agreement not accepted
        return redirect("/appliance/login") if exc.field == "accept_agreement" else error_page(request, FACE, exc)
    except TetherError as exc:
        resp = render(request, FACE, "login.html", "Log in to /appliance", failure=exc, nav=False,
                      prelogin=auth.prelogin_token(request), username=username, error=exc.message,
                      agreement_accepted=True)
        return resp
    target = "/appliance/password" if appliance_of(request).admin.must_change_password(username) else "/appliance/status"
    resp = redirect(target)
    auth.set_session_cookie(resp, auth.APPLIANCE_COOKIE, token, "/appliance")
    return resp


add_session_routes(router, FACE, _page, lambda request: appliance_of(request).sessions, change_password,
                   home="/appliance/status", login="/appliance/login")

STATUS_LABELS = (("model", "Model"), ("serial_number", "Serial number"), ("appliance_version", "Appliance version"),
                 ("base_software_version", "Base software version"), ("hostname", "Host name"),
                 ("system_time", "System time"), ("uptime", "Uptime"))


# /appliance/status (the dashboard and Status > Basics): web/monitoring_pages.py


def _settings_page(section: str, template: str, title: str, from_form, to_form):
    async def get(request: Request):
        async def h(p):
            f = to_form(appliance_of(request).settings.public(section))
            return render(request, FACE, template, title, csrf_token=p.csrf_token, f=f)
        return await _page(request, h)

    async def post(request: Request):
        async def h(p):
            form = await request.form()
            app = appliance_of(request)
            try:
                data = from_form(form)  # the storage check waits on the bucket: off the event loop
                await run_in_threadpool(app.update_settings, section, data, p.name, client_ip(request))
            except TetherError as exc:
                submitted = {k: form.get(k) for k in form.keys()}
                f = {**to_form(app.settings.public(section)), **submitted}
                return render(request, FACE, template, title, status=exc.status, csrf_token=p.csrf_token, f=f,
                              error=exc.message)
            return render(request, FACE, template, title, csrf_token=p.csrf_token,
                          f=to_form(app.settings.public(section)), notice="Saved.")
        return await _page(request, h)

    router.add_api_route(f"/appliance/{section}", get, methods=["GET"])
    router.add_api_route(f"/appliance/{section}", post, methods=["POST"])


_settings_page("networking", "appliance/networking.html", "Networking", forms.networking_from_form,
               forms.networking_to_form)
_settings_page("security", "appliance/security.html", "Security", forms.security_from_form, forms.security_to_form)
_settings_page("storage", "appliance/storage.html", "Storage", forms.storage_from_form, forms.storage_to_form)


@router.get("/appliance/site")
async def site_page(request: Request):
    async def h(p):
        app = appliance_of(request)
        return render(request, FACE, "appliance/site.html", "Site", csrf_token=p.csrf_token,
                      site=app.site.info() if app.site else None)
    return await _page(request, h)


@router.post("/appliance/site")
async def site_install(request: Request):
    request = SITE_PACKAGE.bounded(request)  # as the API: the CSRF token is read from the bounded body

    async def h(p):
        app = appliance_of(request)
        try:
            result = await install_site_package(request, p)
        except TetherError as exc:
            return render(request, FACE, "appliance/site.html", "Site", status=exc.status, csrf_token=p.csrf_token,
                          site=app.site.info() if app.site else None, error=exc.message)
        return render(request, FACE, "appliance/site.html", "Site", csrf_token=p.csrf_token, site=app.site.info(),
                      notice=result.get("message") or f"Site {result['site_name']} {result['version']}: "
                             f"{result['action']} done. Log in to /login as admin / password and set a new password.")
    return await _page(request, h)


@router.get("/appliance/audit")
async def audit_page(request: Request):
    async def h(p):
        rows = [(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"])), e["actor"], e["action"], e["target"] or "",
                 e["source_ip"] or "") for e in appliance_of(request).audit.list(200)]
        return render(request, FACE, "table.html", "Audit log", csrf_token=p.csrf_token, rows=rows,
                      headers=("When (UTC)", "Who", "What", "Target", "From"), table_id="audit")
    return await _page(request, h)
