"""The /login HTML pages (the site face): login, forced password change,
Users, API accounts, Audit log (Status, with the dashboard and Status >
Information: web/monitoring_pages.py). Each page calls the
same site action as its /api twin (``tether.site.actions``), which checks
the permission."""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import quote

from fastapi import APIRouter, Request
from markupsafe import Markup

from tether.core.errors import TetherError
from tether.site.external import Challenge
from tether.site import permissions as P
from tether.site.actions import accounts, history

from . import auth, forms
from .auth import appliance_of, client_ip
from .pages import Face, add_session_routes, page_runner, redirect, render
from .site_deps import site_change_password, site_login, site_negotiate, site_of

FACE = Face("/login", "/login", auth.SITE_COOKIE, (
    ("/login/status", "Status"), ("/login/users", "Users"), ("/login/api-accounts", "API accounts"),
    ("/login/audit", "Audit log"), ("/login/config", "Configuration"), ("/login/clients", "Jump clients"), ("/login/history/sessions", "History"),
    ("/login/software", "Software"), ("/login/failover", "Failover")),
    needs=(("/login/users", P.USERS_MANAGE), ("/login/api-accounts", P.USERS_MANAGE), ("/login/audit", P.REPORTING),
           ("/login/config", P.CONFIG_READ), ("/login/clients", P.CONFIG_READ), ("/login/history/sessions", P.REPORTING),
           ("/login/software", P.BACKUP), ("/login/failover", P.CONFIG_READ)))

router = APIRouter()
PERMS = [(p, P.DESCRIPTIONS[p]) for p in P.ALL]


_page = page_runner(FACE, auth.site_principal)


@router.get("/login")
async def login_page(request: Request):
    if appliance_of(request).site is None:
        return render(request, FACE, "error.html", "No site", status=503, nav=False, back="/login",
                      error="No site is installed on this appliance yet; install a site package in /appliance.")
    token = auth.prelogin_token(request)
    resp = render(request, FACE, "login.html", "Log in", nav=False, prelogin=token,
                  kerberos=site_of(request).authn.has_kind("kerberos"))
    auth.set_prelogin_cookie(resp, token, "/login")
    return resp


@router.get("/login/negotiate")
async def login_negotiate(request: Request):
    """Kerberos single sign-on (SPNEGO, RFC 4559): 401 with ``WWW-Authenticate: Negotiate`` until the
    browser sends its ticket; a ticket the site accepts logs in like the form. A browser without a
    ticket (or a refused one) gets the login form: the other providers are the fallback."""
    if appliance_of(request).site is None:
        return redirect("/login")
    header = request.headers.get("authorization", "")
    pre = auth.prelogin_token(request)

    def form(status: int, error: str | None = None, challenge: bool = False):
        resp = render(request, FACE, "login.html", "Log in", status=status, nav=False, prelogin=pre, error=error)
        if challenge:
            resp.headers["WWW-Authenticate"] = "Negotiate"
        auth.set_prelogin_cookie(resp, pre, "/login")
        return resp

    if header[:10].lower() != "negotiate ":
        return form(401, "Single sign-on needs a Kerberos ticket; log in with your password instead.", True)
    try:
        ticket = base64.b64decode(header[10:].strip(), validate=True)
    except ValueError:
        return form(400, "The Negotiate header is not base64.")
    try:
        login, token, answer = await asyncio.to_thread(site_negotiate, request, ticket)
    except TetherError as exc:
        return form(exc.status, exc.message)
    resp = redirect("/login/password" if login.user.must_change_password else "/login/status")
    if answer:
        resp.headers["WWW-Authenticate"] = "Negotiate " + base64.b64encode(answer).decode()
    auth.set_session_cookie(resp, auth.SITE_COOKIE, token, "/login")
    return resp


@router.post("/login")
async def login_submit(request: Request):
    form = await request.form()
    username = str(form.get("username") or "")
    challenge = str(form.get("challenge") or "") or None
    try:
        auth.check_prelogin(request, form.get("csrf_token"))
        secret = str(form.get("response") if challenge else form.get("password") or "")
        # a provider may wait for its server (a KDC, a directory): not on the event loop
        login, token, _s = await asyncio.to_thread(site_login, request, username, secret, challenge)
        user = login.user
    except Challenge as exc:  # the provider asks for a one-time code: the same form, asking for it
        return render(request, FACE, "login.html", "Log in", status=200, nav=False,
                      prelogin=auth.prelogin_token(request), username=username, challenge=exc.token,
                      challenge_message=exc.message)
    except TetherError as exc:
        return render(request, FACE, "login.html", "Log in", failure=exc, nav=False,
                      prelogin=auth.prelogin_token(request), username=username, error=exc.message)
    resp = redirect("/login/password" if user.must_change_password else "/login/status")
    auth.set_session_cookie(resp, auth.SITE_COOKIE, token, "/login")
    return resp


add_session_routes(router, FACE, _page, lambda request: site_of(request).sessions, site_change_password,
                   home="/login/status", login="/login")


# /login/status (the dashboard and Status > Information): web/monitoring_pages.py


def _users_page(request, p, status=200, **extra):
    rows = [(Markup('<a href="/login/users/{}">{}</a>').format(quote(u.username, safe=""), u.username), u.display_name,
             "yes" if u.is_admin else "no", ", ".join(sorted(u.granted)),
             "yes" if u.enabled else "no", "yes" if u.must_change_password else "no")
            for u in accounts.list_users(site_of(request), p)]
    return render(request, FACE, "site/users.html", "Users", status=status, csrf_token=p.csrf_token, rows=rows,
                  headers=("User name", "Display name", "Administrator", "Permissions", "Enabled",
                           "Must change password"), table_id="users", permissions=PERMS, **extra)


@router.get("/login/users")
async def users_page(request: Request):
    async def h(p):
        gone = request.query_params.get("deleted")
        return _users_page(request, p, notice=f"User {gone} deleted." if gone else None)
    return await _page(request, h)


@router.post("/login/users")
async def users_create(request: Request):
    async def h(p):
        site = site_of(request)
        accounts.require(p)
        form = await request.form()
        try:
            user = accounts.create_user(
                site, p, client_ip(request), username=str(form.get("username") or ""),
                password=str(form.get("password") or ""), display_name=str(form.get("display_name") or ""),
                is_admin=forms.checkbox(form, "is_admin"), permissions=[str(x) for x in form.getlist("permissions")])
        except TetherError as exc:
            return _users_page(request, p, status=exc.status, error=exc.message)
        return _users_page(request, p, notice=f"User {user['username']} created.")
    return await _page(request, h)


def _accounts_page(request, p, status=200, **extra):
    listed = accounts.list_api_accounts(site_of(request), p)
    rows = [(a["name"], a["client_id"], ", ".join(a["permissions"]), a["token_ttl"], a["created_by"]) for a in listed]
    return render(request, FACE, "site/api_accounts.html", "API accounts", status=status, csrf_token=p.csrf_token,
                  rows=rows, headers=("Name", "Client ID", "Permissions", "Token lifetime (s)", "Created by"),
                  table_id="api-accounts", permissions=PERMS, accounts=listed, **extra)


@router.get("/login/api-accounts")
async def accounts_page(request: Request):
    async def h(p):
        return _accounts_page(request, p)
    return await _page(request, h)


@router.post("/login/api-accounts")
async def accounts_create(request: Request):
    async def h(p):
        site = site_of(request)
        accounts.require(p)
        form = await request.form()
        try:
            created = accounts.create_api_account(
                site, p, client_ip(request), name=str(form.get("name") or ""),
                permissions=[str(x) for x in form.getlist("permissions")], token_ttl=forms.integer(form, "token_ttl"))
        except TetherError as exc:
            return _accounts_page(request, p, status=exc.status, error=exc.message)
        return _accounts_page(request, p, created=created)
    return await _page(request, h)


@router.post("/login/api-accounts/{client_id}/delete")
async def accounts_delete(request: Request, client_id: str):
    async def h(p):
        gone = accounts.delete_api_account(site_of(request), p, client_ip(request), client_id)
        return _accounts_page(request, p, notice=f"API account {gone['name']} deleted.")
    return await _page(request, h)


@router.get("/login/audit")
async def audit_page(request: Request):
    async def h(p):
        rows = [(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"])), e["actor"], e["action"], e["target"] or "",
                 e["source_ip"] or "") for e in history.audit_log(site_of(request), p, 200)]
        return render(request, FACE, "table.html", "Audit log", csrf_token=p.csrf_token, rows=rows,
                      headers=("When (UTC)", "Who", "What", "Target", "From"), table_id="audit")
    return await _page(request, h)
