"""The /login HTML pages for the site's data (SITE-01..03): the
configuration index, one list/create/edit/delete page set per kind,
settings sections, user editing (teams, enabled), the file store (Remote
Support) and logged history with filters and pages. Every page calls the
same site action as its /api twin (``tether.site.actions``, which checks the
permission); a Privileged Remote Access site does not show the Remote
Support pages at all."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from markupsafe import Markup

from tether.core.errors import Invalid, TetherError
from tether.core.validate import Id
from tether.site import history as H
from tether.site import permissions as P
from tether.site import resources as R
from tether.site import sections as S
from tether.site.actions import accounts, files, history
from tether.site.actions import config as C
from tether.site.filestore import check_name
from tether.site.resources import RS

from . import labels
from . import site_data_forms as F
from .auth import client_ip
from .login_pages import FACE, _page
from .pages import render
from .site_deps import send, site_of

router = APIRouter()


def _fmt(v) -> str:
    if isinstance(v, float) and v > 1e9:
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(v))
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    if isinstance(v, list):
        return ", ".join(_fmt(x) if isinstance(x, dict) else str(x) for x in v)
    return "" if v is None else str(v)


def _details(data: dict) -> Markup:
    """An event's details as a small definition list (key, then value; nested values as JSON)."""
    if not data:
        return Markup("")
    items = Markup("").join(Markup("<dt>{}</dt><dd>{}</dd>").format(
        k, json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else _fmt(v))
        for k, v in sorted(data.items()))
    return Markup('<dl class="details">{}</dl>').format(items)


def _visible(edition: str, needed: str | None) -> bool:
    return needed is None or needed == edition


@router.get("/login/config")
async def config_index(request: Request):
    async def h(p):
        p.require(P.CONFIG_READ)
        ed = site_of(request).edition
        kinds = [(f"/login/config/{s}", k.title) for s, k in R.KINDS.items() if _visible(ed, k.edition)]
        kinds.append(("/login/users", "Users"))
        if ed == RS:
            kinds.append(("/login/files", "File store"))
        secs = [(f"/login/settings/{s}", x.title) for s, x in S.SECTIONS.items() if _visible(ed, x.edition)]
        return render(request, FACE, "site/config_index.html", "Configuration", csrf_token=p.csrf_token,
                      kinds=kinds, sections=secs)
    return await _page(request, h)


def _kind_widgets(k: R.Kind, editing: bool) -> list[F.Widget]:
    return F.widgets(k.model, k.slug, k.secrets, k.binary, skip=(k.key,) if editing else ())


def _list_page(request, p, slug: str, status=200, values=None, **extra):
    site = site_of(request)
    k = C.kind(site, p, slug)
    rows = [(r[k.key], [_fmt(r.get(col)) for col in k.columns]) for r in C.list_entries(site, p, slug)]
    return render(request, FACE, "site/config_list.html", k.title, status=status, csrf_token=p.csrf_token,
                  rows=rows, headers=[labels.label(c) for c in k.columns], table_id=slug,
                  base=f"/login/config/{slug}", widgets=_kind_widgets(k, False), values=values or {}, **extra)


@router.get("/login/config/{slug}")
async def kind_page(request: Request, slug: str):
    async def h(p):
        return _list_page(request, p, slug)
    return await _page(request, h)


@router.post("/login/config/{slug}")
async def kind_create(request: Request, slug: str):
    async def h(p):
        site = site_of(request)
        k = C.kind(site, p, slug, write=True)
        form = await request.form()
        data = {}
        try:
            data = await F.from_form(form, _kind_widgets(k, False), slug)
            row = C.create_entry(site, p, client_ip(request), slug, data)
        except TetherError as exc:
            if exc.status in (401, 403):
                raise
            return _list_page(request, p, slug, status=exc.status, error=exc.message, values=data)
        return _list_page(request, p, slug, notice=f"{k.title}: {row[k.key]} created.")
    return await _page(request, h)


def _edit_page(request, p, slug: str, name: str, status=200, submitted: dict | None = None, **extra):
    site = site_of(request)
    k = C.kind(site, p, slug)
    row = {**C.get_entry(site, p, slug, name), **(submitted or {})}  # a refused form keeps what was typed
    ws = _kind_widgets(k, True)
    return render(request, FACE, "site/config_edit.html", f"{k.title} › {name}", status=status,
                  csrf_token=p.csrf_token, widgets=ws, values=F.to_form(row, ws, slug),
                  back=f"/login/config/{slug}", provider_test=name if slug == "security-providers" else None, **extra)


@router.get("/login/config/{slug}/{name}")
async def entry_page(request: Request, slug: str, name: str):
    async def h(p):
        return _edit_page(request, p, slug, name)
    return await _page(request, h)


@router.post("/login/config/{slug}/{name}")
async def entry_save(request: Request, slug: str, name: str):
    async def h(p):
        site = site_of(request)
        k = C.kind(site, p, slug, write=True)
        form = await request.form()
        data: dict = {}
        try:
            data = await F.from_form(form, _kind_widgets(k, True), slug)
            C.update_entry(site, p, client_ip(request), slug, name, data)
        except TetherError as exc:
            if exc.status in (401, 403, 404):
                raise
            return _edit_page(request, p, slug, name, status=exc.status, error=exc.message, submitted=data)
        return _edit_page(request, p, slug, name, notice="Saved.")
    return await _page(request, h)


@router.post("/login/config/security-providers/{name}/test")
async def provider_test(request: Request, name: str):
    """The provider's "test" action: the steps of a login attempt with the username and password typed."""
    async def h(p):
        form = await request.form()
        body = {"username": str(form.get("test_username") or ""), "password": str(form.get("test_password") or "")}
        try:
            report = await asyncio.to_thread(C.test_provider, site_of(request), p, client_ip(request), name, body)
        except TetherError as exc:
            if exc.status in (401, 403, 404):
                raise
            return _edit_page(request, p, "security-providers", name, status=exc.status, error=exc.message)
        return _edit_page(request, p, "security-providers", name, test_report=report,
                          test_username=body["username"])
    return await _page(request, h)


@router.post("/login/config/{slug}/{name}/delete")
async def entry_delete(request: Request, slug: str, name: str):
    async def h(p):
        R.kind(slug)  # an unknown kind is 404, not a form error
        try:
            C.delete_entry(site_of(request), p, client_ip(request), slug, name)
        except TetherError as exc:
            if exc.status in (401, 403):
                raise
            return _list_page(request, p, slug, status=exc.status, error=exc.message)
        return _list_page(request, p, slug, notice=f"{name} deleted.")
    return await _page(request, h)


def _section_page(request, p, slug: str, status=200, **extra):
    site = site_of(request)
    s = C.section(site, p, slug)
    ws = F.widgets(s.model, slug, s.secrets)
    return render(request, FACE, "site/config_edit.html", s.title, status=status, csrf_token=p.csrf_token,
                  widgets=ws, values=F.to_form(C.read_section(site, p, slug), ws, slug),
                  back="/login/config", **extra)


@router.get("/login/settings/{slug}")
async def section_page(request: Request, slug: str):
    async def h(p):
        return _section_page(request, p, slug)
    return await _page(request, h)


@router.post("/login/settings/{slug}")
async def section_save(request: Request, slug: str):
    async def h(p):
        site = site_of(request)
        s = C.section(site, p, slug, write=True)
        form = await request.form()
        try:
            C.put_section(site, p, client_ip(request), slug,
                          await F.from_form(form, F.widgets(s.model, slug, s.secrets), slug))
        except TetherError as exc:
            if exc.status in (401, 403, 404):
                raise
            return _section_page(request, p, slug, status=exc.status, error=exc.message)
        return _section_page(request, p, slug, notice="Saved.")
    return await _page(request, h)


# --- users: edit (teams, enabled) ----------------------------------------------------------
_USER_WIDGETS = [F.Widget("display_name", "Display name", "text"), F.Widget("email", "E-mail", "text"),
                 F.Widget("enabled", "Enabled", "checkbox"), F.Widget("is_admin", "Administrator", "checkbox"),
                 F.Widget("permissions", "Permissions", "multi", P.ALL),
                 F.Widget("timezone", "Time zone", "text"), F.Widget("teams", "Teams (one per line)", "lines")]


def _user_page(request, p, username: str, status=200, **extra):
    u = accounts.user_detail(site_of(request), p, username)
    values = F.to_form(u, _USER_WIDGETS, "users")
    values["permissions"] = [] if u["is_admin"] else u["permissions"]
    return render(request, FACE, "site/config_edit.html", f"Users › {username}", status=status,
                  csrf_token=p.csrf_token, widgets=_USER_WIDGETS, values=values, back="/login/users",
                  manage_user=username,
                  notice=extra.pop("notice", None) or f"Last login: {_fmt(u['last_login_at']) or 'never'}", **extra)


@router.get("/login/users/{username}")
async def user_page(request: Request, username: str):
    return await _page(request, lambda p: _async(_user_page(request, p, username)))


@router.post("/login/users/{username}")
async def user_save(request: Request, username: str):
    async def h(p):
        accounts.require(p)
        data = await F.from_form(await request.form(), _USER_WIDGETS, "users")
        try:
            accounts.update_user(site_of(request), p, client_ip(request), username, data)
        except TetherError as exc:
            if exc.status in (401, 403, 404):
                raise
            return _user_page(request, p, username, status=exc.status, error=exc.message)
        return _user_page(request, p, username, notice="Saved.")
    return await _page(request, h)


@router.post("/login/users/{username}/password")
async def user_reset_password(request: Request, username: str):
    async def h(p):
        accounts.require(p)
        form = await request.form()
        try:  # as PUT /api/users/{username}/password
            accounts.reset_password(site_of(request), p, client_ip(request), username,
                                    str(form.get("new_password") or ""))
        except TetherError as exc:
            if exc.status in (401, 403, 404):
                raise
            return _user_page(request, p, username, status=exc.status, error=exc.message)
        return _user_page(request, p, username, notice=f"Password of {username} reset: they must change it at "
                                                       "their next login.")
    return await _page(request, h)


@router.post("/login/users/{username}/delete")
async def user_delete(request: Request, username: str):
    async def h(p):
        accounts.require(p)
        await request.form()  # the CSRF token is checked by the principal; nothing else is read
        try:  # as DELETE /api/users/{username}
            accounts.delete_user(site_of(request), p, client_ip(request), username)
        except TetherError as exc:
            if exc.status in (401, 403, 404):
                raise
            return _user_page(request, p, username, status=exc.status, error=exc.message)
        return redirect_to_users(username)
    return await _page(request, h)


def redirect_to_users(username: str):
    from .pages import redirect

    return redirect(f"/login/users?deleted={quote(username)}")


async def _async(v):
    return v


# --- file store ------------------------------------------------------------------------------
def _files_page(request, p, status=200, **extra):
    store = files.store(site_of(request), p)
    return render(request, FACE, "site/files.html", "File store", status=status, csrf_token=p.csrf_token,
                  files=store.list(), limit=store.max_upload_bytes(), **extra)


@router.get("/login/files")
async def files_page(request: Request):
    return await _page(request, lambda p: _async(_files_page(request, p)))


@router.post("/login/files")
async def files_upload(request: Request):
    async def h(p):
        site = site_of(request)
        store = files.store(site, p, write=True)
        try:
            limit = store.check_size(int(request.headers.get("content-length") or 0) - 4096)
            form = await request.form()
            up = form.get("file")
            if up is None or not hasattr(up, "read"):
                raise Invalid("file: choose a file to upload", field="file")
            typed = str(form.get("name") or "")  # as typed: the store's one rule, no trimming here
            name = check_name(typed if typed.strip() else up.filename or "")

            def chunks():
                while chunk := up.file.read(1 << 20):
                    yield chunk
            sha, size = await run_in_threadpool(store.blobs.put_stream, chunks(), limit)  # S3: network
            files.add_file(site, p, client_ip(request), name, sha, size, up.content_type or "",
                           str(form.get("description") or ""))
        except TetherError as exc:
            if exc.status in (401, 403):
                raise
            return _files_page(request, p, status=exc.status, error=exc.message)
        return _files_page(request, p, notice=f"{name} uploaded ({size} bytes).")
    return await _page(request, h)


@router.get("/login/files/{name}/download")
async def files_download(request: Request, name: str):
    async def h(p):
        return send(files.download(site_of(request), p, name), request)
    return await _page(request, h)


@router.post("/login/files/{name}/delete")
async def files_delete(request: Request, name: str):
    async def h(p):
        try:
            files.delete_file(site_of(request), p, client_ip(request), name)
        except TetherError as exc:
            if exc.status in (401, 403):
                raise
            return _files_page(request, p, status=exc.status, error=exc.message)
        return _files_page(request, p, notice=f"{name} deleted.")
    return await _page(request, h)


# --- logged history --------------------------------------------------------------------------
_HIST_COLS = {"sessions": ("lsid", "started_at", "ended_at", "rep", "kind", "customer_name", "end_reason"),
              "presentation-logs": ("id", "presentation", "presenter", "started_at", "ended_at"),
              "license-usage": ("id", "at", "username", "type", "in_use", "total"),
              "team-activity": ("id", "at", "team", "username", "type", "detail"),
              "exit-survey-answers": ("id", "at", "survey", "position", "answer"),
              "recordings": ("id", "kind", "started_at", "duration_seconds", "size", "sha256")}


@router.get("/login/history/{slug}")
async def history_page(request: Request, slug: str):
    async def h(p):
        k = history.history_kind(site_of(request), p, slug)
        q = request.query_params
        f = {n: (q.get(n) or None) for n in ("since", "until", "user", "type", "cursor")}
        status, err = 200, None
        try:
            page = history.list_history(site_of(request), p, slug, limit=50, **f)
        except Invalid as exc:
            status, err, page = exc.status, exc.message, {"items": [], "next_cursor": None}
        cols = _HIST_COLS[slug]
        rows = [[_fmt(r[c]) if c not in ("lsid", "id") else r[c] for c in cols] for r in page["items"]]
        nxt = None
        if page["next_cursor"]:
            nxt = f"/login/history/{slug}?" + urlencode({**{k2: v for k2, v in f.items() if v and k2 != "cursor"},
                                                         "cursor": page["next_cursor"]})
        ed = site_of(request).edition
        kinds = [(f"/login/history/{s}", x.title) for s, x in H.KINDS.items() if _visible(ed, x.edition)]
        return render(request, FACE, "site/history.html", f"History › {k.title}", status=status, error=err,
                      csrf_token=p.csrf_token, rows=rows, headers=[labels.label(c) for c in cols],
                      table_id=f"history-{slug}", f=f, has_user=k.user_col is not None, next_url=nxt, kinds=kinds,
                      link="/login/history/session" if slug == "sessions" else None)
    return await _page(request, h)


@router.get("/login/history/session/{lsid}")
async def session_page(request: Request, lsid: str):
    async def h(p):
        s = history.session(site_of(request), p, lsid)
        rows = [(_fmt(e["at"]), e["type"], e["actor"], _details(e["data"])) for e in s["events"]]
        rows += [(_fmt(r["started_at"]), f"recording ({r['kind']})", quote(r["sha256"][:16]),
                  Markup('<a href="/login/history/recordings/{}">download</a> ({} bytes)').format(r["id"], r["size"]))
                 for r in s["recordings"]]
        return render(request, FACE, "table.html", f"Session {lsid} — {s['rep']} / {s['customer_name']}",
                      csrf_token=p.csrf_token, rows=rows, headers=("When (UTC)", "Event", "Who", "Details"),
                      table_id="session-events")
    return await _page(request, h)


@router.get("/login/history/recordings/{rec_id}")
async def recording_download(request: Request, rec_id: Id):
    """A recording as stored (command shells: asciicast v2, playable with `asciinema play`)."""
    async def h(p):
        return send(history.recording_download(site_of(request), p, rec_id), request)
    return await _page(request, h)
