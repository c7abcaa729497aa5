"""What the site's JSON API (site_api and its routers) and the /login pages
share: the caller (``principal``, ``Caller``), the installed site
(``site_of``), file downloads (``send``) and the login and password-change
steps. Its own module so that the routers import it, never each other."""

from __future__ import annotations

import base64
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
        raise auth.no_site()
    return site


def send(d: Download, request: Request | None = None) -> Response:
    """A site download (file store, recordings) as the pages and the API send it, from local disk or
    streamed from the bucket (its first GET made before the answer starts, so a store that fails gives a
    503, not a broken 200). Either way a ``Range`` request is answered (206 with ``Content-Range``, 416
    for a range past the end), so a broken download resumes: Starlette's FileResponse for a file, a
    ranged GET for an object. Where the content's SHA-256 is known it goes in ``X-Content-SHA256`` (hex)
    and ``Repr-Digest`` (RFC 9530) of the whole representation."""
    headers = {}
    if d.sha256:
        headers = {"X-Content-SHA256": d.sha256,
                   "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(d.sha256)).decode()}:"}
    if d.path is not None:
        return FileResponse(d.path, media_type=d.media_type, filename=d.filename, headers=headers)
    q = quote(d.filename)
    headers["content-disposition"] = (f"attachment; filename*=utf-8''{q}" if q != d.filename
                                      else f'attachment; filename="{d.filename}"')
    headers["accept-ranges"] = "bytes"
    wanted = byte_range(request.headers.get("range") if request is not None else None, d.size)
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={"content-range": f"bytes */{d.size}"})
    if wanted is None:
        return StreamingResponse(d.chunks(), media_type=d.media_type,
                                 headers={**headers, "content-length": str(d.size)})
    start, end = wanted
    return StreamingResponse(d.chunks(start, end), status_code=206, media_type=d.media_type,
                             headers={**headers, "content-length": str(end - start + 1),
                                      "content-range": f"bytes {start}-{end}/{d.size}"})


def byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range of a ``Range: bytes=...`` header as (start, end) inclusive; None to send the whole
    (no header, another unit, several ranges, or a malformed one: RFC 9110 lets a server ignore those);
    "unsatisfiable" for a range that starts past the end."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if not first:  # the last N bytes
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 and size else "unsatisfiable"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    if start < 0 or end < start:
        return None
    return start, min(end, size - 1)


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
