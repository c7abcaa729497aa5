"""The /appliance Maintenance page (``/appliance/maintenance``): the recovery
kit, the configuration export and import, a whole-appliance snapshot,
factory reset and shut down. Each form calls the same function as its
/appliance/api twin (appliance_api: make_kit, export_config, import_config,
take_snapshot, factory_reset, shutdown); the destructive ones need the
typed confirmation the API needs. Errors are shown on the page with the
status of the error class."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tether.core.errors import Invalid, TetherError

from .appliance_api import (FACTORY_RESET_PHRASE, download, export_config, factory_reset, import_config,
                            make_kit, read_config_upload, shutdown, take_snapshot)
from .appliance_pages import FACE, _page
from .pages import render

router = APIRouter()
TITLE = "Maintenance"
TEMPLATE = "appliance/maintenance.html"
SHUTDOWN_PHRASE = "shut down"


def _show(request: Request, p, *, status: int = 200, error: str | None = None, notice: str | None = None,
          report: dict | None = None) -> Response:
    return render(request, FACE, TEMPLATE, TITLE, status=status, csrf_token=p.csrf_token, error=error,
                  notice=notice, report=report, reset_phrase=FACTORY_RESET_PHRASE, shutdown_phrase=SHUTDOWN_PHRASE)


def _passwords(form) -> str:
    pw, again = str(form.get("password") or ""), str(form.get("password_again") or "")
    if pw != again:
        raise Invalid("the two passwords differ", field="password_again")
    return pw


def _action(path: str, run):
    async def post(request: Request):
        async def h(p):
            form = await request.form()
            try:
                return await run(request, p, form)
            except TetherError as exc:
                return _show(request, p, status=exc.status, error=exc.message + (f" — {exc.hint}" if exc.hint else ""))
        return await _page(request, h)

    router.add_api_route(path, post, methods=["POST"])


@router.get("/appliance/maintenance")
async def maintenance_page(request: Request):
    async def h(p):
        return _show(request, p)
    return await _page(request, h)


async def _kit(request, p, form):
    return download(await run_in_threadpool(make_kit, request, p, _passwords(form)))


async def _config_export(request, p, form):
    name, text = export_config(request, p)
    return Response(text, media_type="application/yaml", headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _config_import(request, p, form):
    upload = form.get("file")
    report = import_config(request, p, await read_config_upload(upload if hasattr(upload, "read") else None))
    notice = f"Imported: {', '.join(report['applied']) or 'nothing'}."
    if report["refused"]:
        notice += " Refused: " + "; ".join(f"{r['section']}: {r['message']}" for r in report["refused"])
    return _show(request, p, notice=notice, report=report)


async def _snapshot(request, p, form):
    return download(await run_in_threadpool(take_snapshot, request, p, _passwords(form)))


async def _factory_reset(request, p, form):
    await run_in_threadpool(factory_reset, request, p, str(form.get("confirm") or "").strip())
    return render(request, FACE, "error.html", "Factory reset", nav=False, status=200, back="/appliance/login",
                  notice="The appliance was reset to its factory state: log in as admin / password.")


async def _shutdown(request, p, form):
    if str(form.get("confirm") or "").strip() != SHUTDOWN_PHRASE:
        raise Invalid(f"type '{SHUTDOWN_PHRASE}' to confirm", field="confirm")
    resp = render(request, FACE, "error.html", "Shutting down", nav=False, status=200, back="/appliance",
                  notice="The appliance is shutting down.")
    resp.background = shutdown(request, p)
    return resp


_action("/appliance/maintenance/kit", _kit)
_action("/appliance/maintenance/config-export", _config_export)
_action("/appliance/maintenance/config-import", _config_import)
_action("/appliance/maintenance/snapshot", _snapshot)
_action("/appliance/maintenance/factory-reset", _factory_reset)
_action("/appliance/maintenance/shutdown", _shutdown)
