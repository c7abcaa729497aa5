"""What the site's JSON API (site_api and its routers) and the /login pages
share: the caller (``principal``, ``Caller``), the installed site
(``site_of``), file downloads (``send``) and the login and password-change
steps. Its own module so that the routers import it, never each other."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from urllib.parse import quote

from starlette.responses import FileResponse, Response, StreamingResponse

from tether.core.errors import Invalid, Unauthorized
from tether.site.blobs import Download
from tether.site.external import Challenge

from . import auth
from .auth import Principal, appliance_of, client_ip


async def principal(request: Request) -> Principal:
    return await auth.site_principal(request, cookie=False)


async def principal_pending(request: Request) -> Principal:
    return await auth.site_principal(request, allow_pending_password=True, cookie=False)


Caller = Annotated[Principal, Depends(principal)]


def site_of(request: Request):
    site = appliance_of(request).site
    if site is None:
        raise Unauthorized("no site is installed on this appliance")
    return site


def send(d: Download) -> Response:
    """A site download (file store, recordings) as the pages and the API send it: the file from local
    disk, or the object streamed from the bucket (its first GET made before the answer starts, so a
    store that fails gives a 503, not a broken 200)."""
    if d.path is not None:
        return FileResponse(d.path, media_type=d.media_type, filename=d.filename)
    q = quote(d.filename)
    disposition = f"attachment; filename*=utf-8''{q}" if q != d.filename else f'attachment; filename="{d.filename}"'
    return StreamingResponse(d.chunks(), media_type=d.media_type,
                             headers={"content-length": str(d.size), "content-disposition": disposition})


def site_login(request: Request, username: str, password: str, challenge: str | None = None):
    """Shared by the HTML and JSON logins: the site's provider chain (local users, LDAP, RADIUS ...;
    it throttles), session, audit. Returns (Login, token, session). With ``challenge`` (the token of
    a pending Access-Challenge), ``password`` is the one-time code answering it. A provider that
    asks for a code raises ``Challenge`` (its message and token), which the faces show."""
    site = site_of(request)
    ip = client_ip(request)
    try:
        login = site.authn.respond(challenge, password, ip) if challenge else \
            site.authn.authenticate(username, password, ip)
    except Challenge:
        raise
    except Unauthorized:
        site.audit.record(username or "-", "login.failed", "site", ip)
        raise
    token, session = site.sessions.create(login.user.username, ip)
    site.audit.record(login.user.username, "login", "site", ip, {"provider": login.provider})
    return login, token, session


def site_change_password(request: Request, p: Principal, current: str, new: str) -> None:
    if p.realm != "site":
        raise Invalid("API accounts have no password; rotate the account instead")
    site = site_of(request)
    site.users.change_password(p.name, current, new, client_ip(request))
    site.sessions.delete_user(p.name, keep=p.token)
    site.audit.record(p.name, "password.change", "site", client_ip(request))


def site_negotiate(request: Request, token: bytes):
    """The HTML login's Kerberos single sign-on (SPNEGO): the site's Kerberos providers accept the
    ticket; session and audit as ``site_login``. Returns (Login, session token, answer token)."""
    site = site_of(request)
    ip = client_ip(request)
    try:
        login, answer = site.authn.negotiate(token, ip)
    except Unauthorized:
        site.audit.record("-", "login.failed", "site", ip, {"provider": "kerberos"})
        raise
    token_, _session = site.sessions.create(login.user.username, ip)
    site.audit.record(login.user.username, "login", "site", ip, {"provider": login.provider})
    return login, token_, answer
