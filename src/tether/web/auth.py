"""Who is calling: session cookies, bearer tokens and CSRF for both realms.

Realms: ``appliance`` (the /appliance admin), ``site`` (a /login user) and
``api`` (an API account's bearer token). A bearer token in the Authorization
header needs no CSRF token; a cookie session must echo its CSRF token on every
unsafe request (form field ``csrf_token`` or header ``X-CSRF-Token``).
Until a first-login password change is done, only the password-change and
logout endpoints accept the session.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from tether.core.errors import Forbidden, NotFound, PasswordChangeRequired, Unauthorized
from tether.runtime import Appliance
from tether.site import permissions as P

APPLIANCE_COOKIE = "tether_appliance"
SITE_COOKIE = "tether_site"
PRELOGIN_COOKIE = "tether_prelogin"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Principal:
    realm: str
    name: str
    granted: frozenset[str]
    must_change_password: bool
    csrf_token: str | None
    token: str
    via: str  # "cookie" | "bearer"

    def require(self, permission: str) -> None:
        P.require(self.granted, permission)


def appliance_of(request: Request) -> Appliance:
    return request.app.state.appliance


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _bearer(request: Request) -> str | None:
    h = request.headers.get("authorization", "")
    if h[:7].lower() == "bearer ":
        return h[7:].strip() or None
    return None


def _token(request: Request, cookie: str) -> tuple[str | None, str]:
    b = _bearer(request)
    if b:
        return b, "bearer"
    return request.cookies.get(cookie), "cookie"


async def check_csrf(request: Request, expected: str | None) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get("csrf_token")
    if not expected or not sent or not hmac.compare_digest(str(sent), expected):
        raise Forbidden("missing or wrong CSRF token", hint="reload the page and submit the form again")


async def appliance_principal(request: Request, *, allow_pending_password: bool = False) -> Principal:
    app = appliance_of(request)
    token, via = _token(request, APPLIANCE_COOKIE)
    session = app.sessions.get(token)
    if session is None:
        raise Unauthorized("log in to /appliance first")
    if via == "cookie":
        await check_csrf(request, session.csrf_token)
    pending = app.admin.must_change_password(session.username)
    if pending and not allow_pending_password:
        raise PasswordChangeRequired("change the default password before doing anything else",
                                     hint="tether password --face appliance (or open /appliance/password, "
                                          "or POST /appliance/api/password)")
    return Principal("appliance", session.username, frozenset(P.ALL), pending, session.csrf_token, token, via)


def no_site() -> NotFound:
    """No site is installed here: nobody can log in to /login or /api, and a restore needs one (or the
    offline path). Not found (exit 4), not an authentication failure: no password would help."""
    return NotFound("no site is installed on this appliance",
                    hint="install the site package first: tether site-package install FILE.tsp --url URL "
                         "(or /appliance > Site), then restore; or restore offline onto the stopped appliance: "
                         "tether restore FILE.nsb --data DIR")


async def site_principal(request: Request, *, allow_pending_password: bool = False,
                         cookie: bool = True) -> Principal:
    app = appliance_of(request)
    site = app.site
    if site is None:
        raise no_site()
    token, via = _token(request, SITE_COOKIE) if cookie else (_bearer(request), "bearer")
    if not token:
        raise Unauthorized("authentication required", hint="send Authorization: Bearer <token>")
    if via == "bearer":
        api = site.api_accounts.principal(token)
        if api is not None:
            return Principal("api", api.name, api.granted, False, None, token, via)
    session = site.sessions.get(token)
    if session is None:
        raise Unauthorized("the token or session is invalid or has expired")
    if via == "cookie":
        await check_csrf(request, session.csrf_token)
    try:
        user = site.users.get(session.username)
    except Exception:
        raise Unauthorized("the session's user no longer exists") from None
    if not user.enabled:
        raise Unauthorized("this user is disabled")
    if user.must_change_password and not allow_pending_password:
        raise PasswordChangeRequired("change the default password before doing anything else",
                                     hint="tether password --face site (or open /login/password, "
                                          "or POST /api/session/password)")
    return Principal("site", user.username, user.granted, user.must_change_password, session.csrf_token, token, via)


def set_session_cookie(response: Response, name: str, token: str, path: str) -> None:
    response.set_cookie(name, token, path=path, secure=True, httponly=True, samesite="strict", max_age=8 * 3600)


def prelogin_token(request: Request) -> str:
    """A double-submit token protecting the login and agreement forms themselves."""
    return request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(24)


def set_prelogin_cookie(response: Response, token: str, path: str) -> None:
    response.set_cookie(PRELOGIN_COOKIE, token, path=path, secure=True, httponly=True, samesite="strict")


def check_prelogin(request: Request, form_token: str | None) -> None:
    cookie = request.cookies.get(PRELOGIN_COOKIE)
    if not cookie or not form_token or not hmac.compare_digest(cookie, str(form_token)):
        raise Forbidden("missing or wrong CSRF token", hint="reload the login page and try again")
