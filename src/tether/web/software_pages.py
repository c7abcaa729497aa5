"""/login Management > Software: download a site backup and restore one
(BK-01, BK-06), calling the same functions as the backup API."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tether.core.errors import Invalid, TetherError
from tether.site import permissions as P

from . import auth, forms
from .backup_api import download_backup, restore_upload, save_upload
from .login_pages import FACE, _page
from .pages import render

router = APIRouter()


def _render(request, p, status=200, **extra):
    return render(request, FACE, "site/software.html", "Management › Software", status=status,
                  csrf_token=p.csrf_token, **extra)


@router.get("/login/software")
async def software_page(request: Request):
    async def h(p):
        p.require(P.BACKUP)
        return _render(request, p)
    return await _page(request, h)


@router.post("/login/software/backup")
async def software_backup(request: Request):
    async def h(p):
        form = await request.form()
        try:
            no_password = forms.checkbox(form, "no_password")
            password = str(form.get("password") or "")
            if not no_password and password != form.get("confirm_password"):
                raise Invalid("the two passwords differ", field="confirm_password")
            return download_backup(request, p, password, no_password, forms.checkbox(form, "include_history"))
        except TetherError as exc:
            return _render(request, p, status=exc.status, error=exc.message)
    return await _page(request, h)


@router.post("/login/software/restore")
async def software_restore(request: Request):
    async def h(p):
        form = await request.form()
        upload = form.get("file")
        try:
            if not hasattr(upload, "read"):
                raise Invalid("choose a backup file", field="file")
            if not forms.checkbox(form, "confirm_replace"):
                raise Invalid("confirm that the restore replaces every user, setting and datum of this site",
                              field="confirm_replace")
            path = await save_upload(request, upload)
            result = restore_upload(request, p, path, str(form.get("password") or ""), forms.checkbox(form, "force"),
                                    forms.checkbox(form, "confirm_failover"))
        except TetherError as exc:
            return _render(request, p, status=exc.status, error=exc.message)
        # every session ended with the restore: this browser's cookie is gone too, and the page says why
        resp = render(request, FACE, "site/restored.html", "Management › Software", nav=False, restored=result,
                      notice="Restore done: you are logged out.")
        resp.delete_cookie(auth.SITE_COOKIE, path="/login")
        return resp
    return await _page(request, h)
