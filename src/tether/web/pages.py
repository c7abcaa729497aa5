"""What the /appliance and /login HTML faces share: templates, page
rendering with navigation and CSRF token, and the redirects that follow an
authentication problem (to the login page, or to the forced password
change)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tether.core.errors import Invalid, PasswordChangeRequired, TetherError, Unauthorized

from .errors import error_headers

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@dataclass(frozen=True)
class Face:
    name: str  # shown in the title bar
    prefix: str  # "/appliance" or "/login"
    cookie: str
    nav: tuple[tuple[str, str], ...]
    needs: tuple[tuple[str, str], ...] = ()  # (menu href, the permission its page checks): hidden without it

    def menu(self, granted: frozenset[str] | None) -> tuple[tuple[str, str], ...]:
        """The menu entries the signed-in user may open (all of them before anyone is known)."""
        if granted is None:
            return self.nav
        needs = dict(self.needs)
        return tuple((href, text) for href, text in self.nav if needs.get(href) in (None, *granted))

    @property
    def login_url(self) -> str:
        return f"{self.prefix}/login" if self.prefix == "/appliance" else "/login"

    @property
    def password_url(self) -> str:
        return f"{self.prefix}/password"

    @property
    def logout_url(self) -> str:
        return f"{self.prefix}/logout"


def render(request: Request, face: Face, template: str, title: str, *, status: int = 200, nav: bool = True,
           csrf_token: str | None = None, failure: TetherError | None = None, **ctx) -> Response:
    """``failure``: the error the page reports; its status and headers (``Retry-After`` on a 429) are the
    page's, the same as the JSON API's (tether.web.errors.error_headers)."""
    if failure is not None:
        status = failure.status
    return templates.TemplateResponse(request, template, {
        "title": title, "face": face.name, "nav": face.menu(getattr(request.state, "granted", None)) if nav else None,
        "active": request.url.path,
        "logout_url": face.logout_url, "csrf_token": csrf_token, **ctx}, status_code=status,
        headers=error_headers(failure, bearer=False) if failure is not None else None)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def auth_redirect(face: Face, exc: TetherError) -> Response | None:
    if isinstance(exc, PasswordChangeRequired):
        return redirect(face.password_url)
    if isinstance(exc, Unauthorized):
        return redirect(face.login_url)
    return None


def error_page(request: Request, face: Face, exc: TetherError) -> Response:
    return render(request, face, "error.html", "Error", failure=exc, nav=False,
                  error=exc.message + (f" — {exc.hint}" if exc.hint else ""), back=face.prefix if face.prefix != "/login" else "/login")


def page_runner(face: Face, principal):
    """``run(request, handler, pending_ok=False)``: authenticate for the face, call
    ``handler(principal)``, and turn errors into the login redirect, the forced
    password change, or an error page."""

    async def run(request: Request, handler, *, pending_ok: bool = False) -> Response:
        try:
            p = await principal(request, allow_pending_password=pending_ok)
            request.state.granted = p.granted  # the menu shows what this user may open
            return await handler(p)
        except TetherError as exc:
            return auth_redirect(face, exc) or error_page(request, face, exc)

    return run


def add_session_routes(router, face: Face, page, sessions_of, change_password, home: str, login: str) -> None:
    """Log out, and the (first-login) password change, the same on both faces.
    ``page(request, handler, pending_ok=True)`` authenticates for the face;
    ``change_password(request, principal, current, new)`` is the face's own."""

    async def logout(request: Request):
        async def h(p):
            sessions_of(request).delete(p.token)
            resp = redirect(login)
            resp.delete_cookie(face.cookie, path=face.prefix)
            return resp
        return await page(request, h, pending_ok=True)

    def _form(request, p, status=200, error=None, failure=None):
        return render(request, face, "password.html", "Change password", status=status, failure=failure,
                      csrf_token=p.csrf_token,
                      pending=p.must_change_password, nav=not p.must_change_password, error=error)

    async def password_page(request: Request):
        async def h(p):
            return _form(request, p)
        return await page(request, h, pending_ok=True)

    async def password_submit(request: Request):
        async def h(p):
            form = await request.form()
            try:
                if form.get("new_password") != form.get("confirm_password"):
                    raise Invalid("the two new passwords differ", field="confirm_password")
                change_password(request, p, str(form.get("current_password") or ""),
                                str(form.get("new_password") or ""))
            except TetherError as exc:
                return _form(request, p, exc.status, exc.message, failure=exc)
            return redirect(home)
        return await page(request, h, pending_ok=True)

    router.add_api_route(face.logout_url, logout, methods=["POST"])
    router.add_api_route(face.password_url, password_page, methods=["GET"])
    router.add_api_route(face.password_url, password_submit, methods=["POST"])
