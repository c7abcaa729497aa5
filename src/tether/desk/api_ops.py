"""JSON API for operations: appliance-opened incidents (DESK-09), appliance
tokens, RMA (DESK-08), releases and update schedules (REL-01..04), and the
job runner. Same rules as ``api``: parse, call, present.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from tether.core.apierrors import errors
from tether.core.errors import Forbidden, Invalid
from tether.core.releases import Version
from tether.core.validate import Id, Int, parse_model

from . import auth, rma, updates
from .answers import ApplianceReport, Hosted, JobsRun, ReleaseCheck, Releases, Rma, TokenCreated, TokenRevoked
from .bizclock import TZ
from .deps import (APPLIANCE_CREDENTIALS, STAFF_OR_APPLIANCE_CREDENTIALS, Staff, appliance, desk_of, staff,
                   uploads_from)
from .incidents import open_incident
from .jobs import run_jobs
from .schemas import NAME, HostedIn, IncidentIn, InstalledIn, RmaEventIn, RmaIn, TokenIn

router = APIRouter(prefix="/api")
Name = Annotated[str, Path(pattern=NAME.pattern, description="letters, digits, . _ -; at most 128")]


# -- appliances (DESK-09) ----------------------------------------------------

@router.post("/tokens", status_code=201, tags=["appliances"], responses=errors(401, 403, 404, 409, 413, 422))
def create_token(body: TokenIn, request: Request, user: Staff) -> TokenCreated:
    """Create an appliance token; the secret is shown only in this answer."""
    secret, info = auth.create_token(desk_of(request), **body.model_dump())
    return {"token": secret, **info}


@router.delete("/tokens/{name}", tags=["appliances"], responses=errors(401, 403, 404, 422))
def revoke_token(name: Name, request: Request, user: Staff) -> TokenRevoked:
    auth.revoke_token(desk_of(request), name)
    return {"revoked": name}


@router.post("/appliance/incidents", status_code=201, tags=["appliances"], dependencies=APPLIANCE_CREDENTIALS,
             responses={200: {"model": ApplianceReport, "description": "the incident this key already opened"},
                        **errors(401, 403, 413, 422)})
async def appliance_incident(
    request: Request,
    response: Response,
    summary: str = Form(..., description="what happened, e.g. 'automatic failover to backup'"),
    version: str = Form(..., description="the appliance's version, X.Y or X.Y.Z"),
    status: str = Form("{}", description="a JSON object: the appliance's status"),
    severity: Annotated[Int, Form()] = 2,
    details: str | None = Form(None),
    key: str | None = Form(None, description="the key of the event reported (letters, digits, . _ : -; at most "
                                              "128): a retry with the same key gets the incident already opened"),
    logs: list[UploadFile] = File(default=[]),
) -> ApplianceReport:
    """An appliance opens an incident itself with its version, status and logs
    (Authorization: Bearer tda_...). 201 with the new incident; 200 with ``duplicate`` true when an
    incident was already opened with this ``key``."""
    tok = await run_in_threadpool(appliance, request)
    if key is not None and not _KEY.fullmatch(key):
        raise Invalid("key: letters, digits and . _ : - only, at most 128 characters", field="key")
    try:
        status_obj = json.loads(status)
    except ValueError:
        raise Invalid("status must be a JSON object", field="status") from None
    if not isinstance(status_obj, dict):
        raise Invalid("status must be a JSON object", field="status")
    data = parse_model(IncidentIn, {
        "summary": summary.strip()[:300] or "appliance incident", "inquirer_email": tok["contact_email"],
        "inquirer_name": f"appliance {tok['name']}", "product_version": _version(version),
        "severity": _severity(severity), "description": details})
    files = await uploads_from(logs)
    inc = await run_in_threadpool(open_incident, desk_of(request), data, files, channel="appliance",
                                  customer_id=tok["customer_id"], status=status_obj, actor=f"appliance:{tok['name']}",
                                  report_key=key)
    if inc.get("duplicate"):
        response.status_code = 200
    return {"number": inc["number"], "status": inc["status"], "severity": inc["severity"],
            "version_retired": inc["version_retired"], "attachments": inc["attachments"], "sla": inc["sla"],
            "duplicate": bool(inc.get("duplicate"))}


_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _version(v: str) -> str:
    return str(Version.parse(v, field_name="version"))


def _severity(s: int) -> int:
    if s not in (1, 2, 3):
        raise Invalid("severity must be 1, 2 or 3", field="severity")
    return s


# -- releases and updates (REL-01..04) ---------------------------------------

@router.get("/releases", tags=["releases"])
def releases(request: Request) -> Releases:
    desk = desk_of(request)
    return {"on": desk.now().astimezone(TZ).date().isoformat(),
            "releases": updates.lifecycle(desk.catalog, desk.now().astimezone(TZ).date())}


@router.get("/releases/check", tags=["releases"], responses=errors(422), response_model_exclude_unset=True)
def release_check(request: Request, version: str, target: str | None = None) -> ReleaseCheck:
    """Is ``version`` supported today, and may ``target`` take an upgrade or a backup from it?"""
    desk = desk_of(request)
    v = Version.parse(version, field_name="version")
    if desk.catalog.major_ga(v.major_line) is None:
        raise Invalid(f"{version} belongs to no known release", field="version")
    out = {"version": str(v), "major": v.major_line,
           "end_of_support": desk.catalog.end_of_support(v).isoformat(),
           "supported": desk.catalog.is_supported(v, desk.now().astimezone(TZ).date())}
    if target:
        t = str(Version.parse(target, field_name="target"))
        out["target"] = t
        out["upgrade_allowed"] = desk.catalog.supports_upgrade(t, v)
    return out


@router.get("/updates/schedule", tags=["releases"], responses=errors(401))
def schedule(request: Request, user: Staff) -> list[Hosted]:
    return updates.schedules(desk_of(request))


@router.post("/updates/appliances", status_code=201, tags=["releases"],
             responses=errors(401, 403, 404, 409, 413, 422))
def register_hosted(body: HostedIn, request: Request, user: Staff) -> Hosted:
    return updates.register(desk_of(request), body)


def _may_see(request: Request, name: str) -> None:
    if request.headers.get("authorization", "").lower().startswith("bearer tda_"):
        tok = appliance(request)
        hosted = updates.schedule_for(desk_of(request), name)
        if hosted["customer_id"] != tok["customer_id"]:
            raise Forbidden(f"this token does not belong to the customer of {name}")
    else:
        staff(request)


@router.get("/updates/appliances/{name}", tags=["releases"], dependencies=STAFF_OR_APPLIANCE_CREDENTIALS,
            responses=errors(401, 403, 404, 422))
def hosted_schedule(name: Name, request: Request) -> Hosted:
    """The published next update of a hosted appliance (staff or its appliance token)."""
    _may_see(request, name)
    return updates.schedule_for(desk_of(request), name)


@router.post("/updates/appliances/{name}/installed", tags=["releases"], dependencies=STAFF_OR_APPLIANCE_CREDENTIALS,
             responses=errors(401, 403, 404, 413, 422))
def hosted_installed(name: Name, body: InstalledIn, request: Request) -> Hosted:
    _may_see(request, name)
    return updates.installed(desk_of(request), name, body.version)


# -- RMA (DESK-08) -----------------------------------------------------------

@router.get("/rmas", tags=["rma"], responses=errors(401))
def rmas(request: Request, user: Staff) -> list[Rma]:
    return rma.list_all(desk_of(request))


@router.post("/rmas", status_code=201, tags=["rma"], responses=errors(401, 403, 404, 413, 422))
def create_rma(body: RmaIn, request: Request, user: Staff) -> Rma:
    return rma.create(desk_of(request), body, actor=user["username"])


@router.get("/rmas/{rid}", tags=["rma"], responses=errors(401, 404, 422))
def get_rma(rid: Id, request: Request, user: Staff) -> Rma:
    return rma.get(desk_of(request), rid)


@router.post("/rmas/{rid}/vat-consent", tags=["rma"], responses=errors(401, 403, 404, 422))
def vat_consent(rid: Id, request: Request, user: Staff) -> Rma:
    return rma.consent_vat(desk_of(request), rid)


_STEPS = {"ship": rma.ship, "live": rma.live, "received": rma.received, "repaired": rma.repaired}


@router.post("/rmas/{rid}/{step}", tags=["rma"], responses=errors(401, 403, 404, 409, 413, 422))
def rma_step(rid: Id, step: Literal["ship", "live", "received", "repaired"], request: Request, user: Staff,
             body: RmaEventIn | None = None) -> Rma:
    """Record a step: ship (replacement sent), live (replacement in service),
    received (unit back at the vendor), repaired (repaired unit sent back)."""
    return _STEPS[step](desk_of(request), rid, body.at if body else None)


# -- jobs --------------------------------------------------------------------

@router.post("/jobs/run", tags=["desk"], responses=errors(401, 403))
def jobs_run(request: Request, user: Staff) -> JobsRun:
    """Run the time-based jobs now (the desk's clock decides what "now" is)."""
    return run_jobs(desk_of(request))
