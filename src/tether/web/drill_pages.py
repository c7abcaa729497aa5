"""/appliance Status > Drills (DR-02): past drills with their figures, a form
that starts one (it runs as a job; the report page follows its progress and
shows the result), and each report with its timeline chart (server-rendered
SVG). The same ``DrillService`` calls as /appliance/api/drills."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from tether.core.errors import TetherError
from tether.dr import timeline
from tether.dr.service import summary

from .appliance_pages import FACE, _page
from .auth import appliance_of, client_ip
from .pages import redirect, render

router = APIRouter()
TITLE = "Status › Drills"


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t else ""


def _list(request: Request, p, **extra):
    drills = appliance_of(request).drills
    rows = drills.list(p)
    return render(request, FACE, "appliance/drills.html", TITLE, csrf_token=p.csrf_token, rows=rows, when=_when,
                  running=drills.running, **extra)


@router.get("/appliance/drills")
async def drills_page(request: Request):
    async def h(p):
        return _list(request, p)
    return await _page(request, h)


@router.post("/appliance/drills")
async def drills_start(request: Request):
    async def h(p):
        form = await request.form()
        try:
            r = appliance_of(request).drills.start(p, client_ip(request), backup=str(form.get("backup") or "fresh"),
                                                   failover=form.get("failover") == "on",
                                                   unplanned=form.get("unplanned") == "on")
        except TetherError as exc:
            return _list(request, p, error=exc.message + (f" — {exc.hint}" if exc.hint else ""), failure=exc)
        return redirect(f"/appliance/drills/{r['id']}")
    return await _page(request, h)


@router.get("/appliance/drills/{drill_id}")
async def drill_page(request: Request, drill_id: str):
    async def h(p):
        r = appliance_of(request).drills.get(p, drill_id)
        fo = r.get("failover") or {}
        charts = [(label, timeline.svg(fo[k]["offsets"], f"{label}: seconds after the fault"))
                  for k, label in (("over", "Failover to the peer"), ("back", "Failback"))
                  if (fo.get(k) or {}).get("offsets")]
        return render(request, FACE, "appliance/drill.html", f"Drill {r['id']}", csrf_token=p.csrf_token, r=r,
                      s=summary(r), charts=charts, when=_when)
    return await _page(request, h)
