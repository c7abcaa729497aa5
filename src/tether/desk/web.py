"""HTML pages of the desk (Jinja2, minimal CSS): the public incident form and
feedback form, staff login, the incident list and an incident's page with its
due times, breaches and history. Pages call the same service functions as the
JSON API; forms posted with a session cookie must carry the CSRF token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from tether.core.errors import Forbidden, Invalid, TetherError, Unauthorized
from tether.core.validate import Id, parse_model

from . import auth, workflow
from .deps import COOKIE, desk_of, optional_staff, uploads_from
from .incidents import add_message, get_incident, list_incidents, open_incident
from .schemas import STATUSES, IncidentIn

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)
FIELDS = ("summary", "inquirer_name", "inquirer_email", "product_version", "severity", "error_messages",
          "reproduction_steps", "prior_actions", "changes_made", "duration", "os", "server_roles",
          "description")


def render(request: Request, name: str, code: int = 200, **ctx) -> HTMLResponse:
    desk = desk_of(request)
    ctx.setdefault("user", None)
    return templates.TemplateResponse(request, name, {"test_clock": desk.clock.kind == "file",
                                                      "statuses": STATUSES, **ctx}, status_code=code)


def _staff_or_login(request: Request):
    user = optional_staff(request)
    if user is None:
        return None, RedirectResponse("/login", status_code=303)
    return user, None


async def _form_user(request: Request) -> tuple[dict, dict]:
    form = await request.form()
    user = await run_in_threadpool(optional_staff, request)
    if user is None:
        raise Unauthorized("log in first")
    if form.get("csrf") != user["csrf_token"]:
        raise Forbidden("the form is stale (CSRF token mismatch); reload the page")
    return user, form


@router.get("/")
def home(request: Request):
    return RedirectResponse("/incidents" if optional_staff(request) else "/new", status_code=303)


@router.get("/login")
def login_page(request: Request):
    return render(request, "login.html")


@router.post("/login")
async def login_post(request: Request):
    form = await request.form()
    try:
        token, _ = await run_in_threadpool(auth.login, desk_of(request), str(form.get("username", "")),
                                           str(form.get("password", "")), request.client.host if request.client else None)
    except TetherError as exc:
        return render(request, "login.html", exc.status, error=exc.message)
    resp = RedirectResponse("/incidents", status_code=303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return resp


@router.post("/logout")
async def logout_post(request: Request):
    """The log-out control of every staff page: ends the session (as ``POST /api/logout``) and the cookie."""
    try:
        await _form_user(request)
    except TetherError:
        pass  # no session or a stale form: logging out again is harmless; the cookie goes either way
    else:
        if token := request.cookies.get(COOKIE):
            await run_in_threadpool(auth.sessions(desk_of(request)).delete, token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/new")
def new_page(request: Request):
    return render(request, "new.html", values={})


@router.post("/new")
async def new_post(request: Request, attachments: list[UploadFile] = File(default=[])):
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in FIELDS}
    data_in = {k: v for k, v in values.items() if v}
    try:
        data = parse_model(IncidentIn, data_in)
        files = await uploads_from(attachments)
        inc = await run_in_threadpool(open_incident, desk_of(request), data, files, channel="web")
    except TetherError as exc:
        return render(request, "new.html", exc.status, values=values, error=exc.message, field=exc.field)
    return render(request, "done.html", 201, incident=inc)


@router.get("/incidents")
def incidents_page(request: Request, status: str | None = None):
    user, redirect = _staff_or_login(request)
    if redirect:
        return redirect
    rows = list_incidents(desk_of(request), status=status or None)
    return render(request, "incidents.html", user=user, incidents=rows, status=status)


@router.get("/incidents/{number}")
def incident_page(number: Id, request: Request):
    user, redirect = _staff_or_login(request)
    if redirect:
        return redirect
    try:
        inc = get_incident(desk_of(request), number)
    except TetherError as exc:
        return render(request, "error.html", exc.status, user=user, error=exc.message)
    return render(request, "incident.html", user=user, inc=inc)


@router.get("/incidents/{number}/feedback")
def feedback_page(number: Id, request: Request):
    return render(request, "feedback.html", number=number)


@router.post("/incidents/{number}/feedback")
async def feedback_post(number: Id, request: Request):
    form = await request.form()
    try:
        rating = int(str(form.get("rating", "0")) or 0)
        if not 1 <= rating <= 5:
            raise ValueError
    except ValueError:
        return render(request, "feedback.html", 422, number=number, error="choose a rating from 1 to 5")
    try:
        await run_in_threadpool(workflow.add_feedback, desk_of(request), number,
                                email=str(form.get("email", "")).strip().lower(), rating=rating,
                                comment=str(form.get("comment") or "") or None)
    except TetherError as exc:
        return render(request, "feedback.html", exc.status, number=number, error=exc.message)
    return render(request, "feedback.html", number=number, thanks=True)


def _severity(value) -> int:
    text = str(value or "").strip()
    if text not in ("1", "2", "3"):
        raise Invalid("severity must be 1, 2 or 3", field="severity")
    return int(text)


@router.post("/incidents/{number}/{action}")
async def incident_action(number: Id, action: str, request: Request):
    desk = desk_of(request)
    try:
        user, form = await _form_user(request)
        who = user["username"]
        if action == "reply":
            await run_in_threadpool(add_message, desk, number, text=str(form.get("text", "")), uploads=[],
                                    channel="web", staff=user)
        elif action == "status":
            await run_in_threadpool(workflow.set_status, desk, number, str(form.get("status")), actor=who,
                                    note=str(form.get("note") or "") or None)
        elif action == "severity":
            await run_in_threadpool(workflow.set_severity, desk, number, _severity(form.get("severity")),
                                    actor=who, reason=str(form.get("reason") or "") or None)
        elif action == "escalate":
            await run_in_threadpool(workflow.escalate, desk, number, engineer=str(form.get("engineer", "")),
                                    reason=str(form.get("reason") or "") or None, actor=who)
        elif action == "reopen":
            await run_in_threadpool(workflow.reopen, desk, number, actor=who)
        else:
            return render(request, "error.html", 404, error=f"unknown action {action}")
    except TetherError as exc:
        return render(request, "error.html", exc.status, error=exc.message)
    return RedirectResponse(f"/incidents/{number}", status_code=303)
