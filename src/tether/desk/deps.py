"""HTTP plumbing shared by the API and the HTML pages: the desk instance on
the app, who is calling (staff session by bearer token or cookie + CSRF,
appliance token) and uploads. Errors answer the shape every Tether API
shares (``tether.core.apierrors``, installed by ``app``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPBearer

from tether.core.errors import Forbidden, Unauthorized

from .attachments import Upload
from .auth import appliance_for_token, staff_for_session

COOKIE = "desk_session"
SAFE = ("GET", "HEAD", "OPTIONS")


def desk_of(request: Request):
    return request.app.state.desk


def _bearer(request: Request) -> str | None:
    h = request.headers.get("authorization", "")
    return h[7:].strip() if h.lower().startswith("bearer ") else None


def optional_staff(request: Request) -> dict | None:
    """The staff member calling, or None. Cookie sessions must carry the CSRF
    token on changes (header X-CSRF-Token or form field csrf, checked by the
    HTML routes)."""
    desk = desk_of(request)
    token = _bearer(request)
    if token and not token.startswith("tda_"):
        found = staff_for_session(desk, token)
        if found is None:
            raise Unauthorized("the session has expired or the token is wrong; log in again")
        return found[0]
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    found = staff_for_session(desk, cookie)
    if found is None:
        return None
    user, csrf = found
    if request.method not in SAFE and request.url.path.startswith("/api/") \
            and request.headers.get("x-csrf-token") != csrf:
        raise Forbidden("missing or wrong X-CSRF-Token header for a cookie session")
    user["csrf_token"] = csrf
    return user


def staff(request: Request) -> dict:
    user = optional_staff(request)
    if user is None:
        raise Unauthorized("log in as desk staff first (POST /api/login)")
    return user


def appliance(request: Request) -> dict:
    return appliance_for_token(desk_of(request), _bearer(request))


# How the document names the credentials (OpenAPI security schemes). They only document: ``staff`` and
# ``appliance`` above decide who is calling. An operation listing several accepts any one of them.
STAFF_TOKEN = HTTPBearer(scheme_name="staff_token", auto_error=False,
                         description="a staff session token from POST /api/login")
STAFF_COOKIE = APIKeyCookie(name=COOKIE, scheme_name="staff_cookie", auto_error=False,
                            description="the staff session cookie POST /api/login sets; a change made with it "
                                        "must carry the session's csrf_token as the X-CSRF-Token header")
APPLIANCE_TOKEN = HTTPBearer(scheme_name="appliance_token", auto_error=False,
                             description="an appliance token (tda_...) from POST /api/tokens")
APPLIANCE_CREDENTIALS = [Security(APPLIANCE_TOKEN)]
STAFF_OR_APPLIANCE_CREDENTIALS = [Security(STAFF_TOKEN), Security(STAFF_COOKIE), Security(APPLIANCE_TOKEN)]


def _staff_session(request: Request, _token=Security(STAFF_TOKEN), _cookie=Security(STAFF_COOKIE)) -> dict:
    return staff(request)


Staff = Annotated[dict, Depends(_staff_session)]  # a route's staff caller, documented as needing a session


async def uploads_from(files) -> list[Upload]:
    out = []
    for f in files or []:
        if f is None or not getattr(f, "filename", None):
            continue
        out.append(Upload(f.filename, await f.read(), f.content_type))
    return out
