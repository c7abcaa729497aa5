"""The drill API (DR-02) under ``/appliance/api/drills``: start a drill (the
backup rehearsed: fresh or latest, or an uploaded file with its password in
the form), list past drills with their figures, read one report. Every route
calls the one ``DrillService`` function, whose permission check is the
same for the page (web/drill_pages.py) and ``tether drill``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from pydantic import BaseModel, ConfigDict

from tether.core.validate import Bool
from tether.dr.service import DrillReport, DrillSummary

from . import auth
from .auth import Principal, appliance_of, client_ip
from .backup_api import save_upload
from .bodies import reply


async def _admin(request: Request) -> Principal:
    return await auth.appliance_principal(request)


Admin = Annotated[Principal, Depends(_admin)]
router = APIRouter(tags=["drills"])


class DrillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup: Literal["fresh", "latest"] = "fresh"
    failover: Bool = True
    unplanned: Bool = False  # a controlled stop of the primary's serving instead of a planned handover


@router.post("/drills", status_code=202, summary="Start a drill (restore rehearsal; failover of the pair and back)",
             **reply(DrillReport, 202))
def post_drill(request: Request, body: DrillBody, p: Admin) -> dict:
    return appliance_of(request).drills.start(p, client_ip(request), backup=body.backup, failover=body.failover,
                                              unplanned=body.unplanned)


@router.post("/drills/upload", status_code=202, summary="Start a drill rehearsing an uploaded backup",
             **reply(DrillReport, 202))
async def post_drill_upload(request: Request, p: Admin, file: UploadFile, password: Annotated[str, Form()] = "",
                            failover: Annotated[bool, Form()] = True,
                            unplanned: Annotated[bool, Form()] = False) -> dict:
    path = await save_upload(request, file)
    try:
        return appliance_of(request).drills.start(p, client_ip(request), backup="upload", upload=path,
                                                  password=password or None, failover=failover,
                                                  unplanned=unplanned, upload_name=file.filename)
    except Exception:
        path.unlink(missing_ok=True)
        raise


@router.get("/drills", summary="Past drills, newest first, with their figures",
            **reply(list[DrillSummary]))
def get_drills(request: Request, p: Admin) -> list[dict]:
    return appliance_of(request).drills.list(p)


@router.get("/drills/{drill_id}", summary="One drill's report (docs/formats/drill.md)", **reply(DrillReport))
def get_drill(request: Request, drill_id: str, p: Admin) -> dict:
    return appliance_of(request).drills.get(p, drill_id)
