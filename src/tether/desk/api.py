"""JSON API for incidents, customers and staff sessions (``/api/...``).
Routes only parse, call the service modules and present; the HTML pages call
the same functions. Operations (RMA, releases, updates, tokens, jobs,
appliance incidents) are in ``api_ops``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from tether.core.errors import Forbidden, Invalid
from tether.core.validate import Id

from . import attachments, auth, customers, workflow
from .clock import iso
from .deps import COOKIE, desk_of, optional_staff, staff
from .incidents import add_message, get_incident, list_incidents, open_incident
from .schemas import (AgreementIn, CustomerIn, EscalateIn, FeedbackIn, IncidentIn, LoginIn, MessageIn,
                      RepresentativeIn, SeverityIn, StatusIn, SupervisorIn)

router = APIRouter(prefix="/api")


@router.get("/health", tags=["desk"])
def health(request: Request) -> dict:
    desk = desk_of(request)
    return {"status": "ok", "clock": desk.clock.kind, "now": iso(desk.now())}


@router.post("/login", tags=["staff"])
def login(body: LoginIn, request: Request, response: Response) -> dict:
    token, info = auth.login(desk_of(request), body.username, body.password,
                             request.client.host if request.client else None)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return {"token": token, **info}


@router.post("/logout", tags=["staff"])
def logout(request: Request, response: Response, user: dict = Depends(staff)) -> dict:
    token = request.headers.get("authorization", "")[7:] or request.cookies.get(COOKIE)
    if token:
        auth.sessions(desk_of(request)).delete(token)
    response.delete_cookie(COOKIE)
    return {"ok": True}


@router.get("/me", tags=["staff"])
def me(user: dict = Depends(staff)) -> dict:
    return user


# -- incidents ---------------------------------------------------------------

@router.post("/incidents", status_code=201, tags=["incidents"])
def create_incident(body: IncidentIn, request: Request) -> dict:
    """Open an incident. The inquirer must be a known representative of a
    customer with a current maintenance agreement (DESK-07)."""
    return open_incident(desk_of(request), body, [], channel="api")


@router.get("/incidents", tags=["incidents"])
def incidents(request: Request, status: str | None = None, customer_id: Id | None = None,
              user: dict = Depends(staff)) -> list[dict]:
    return list_incidents(desk_of(request), status=status, customer_id=customer_id)


@router.get("/incidents/{number}", tags=["incidents"])
def incident(number: Id, request: Request, user: dict = Depends(staff)) -> dict:
    return get_incident(desk_of(request), number)


@router.get("/incidents/{number}/attachments/{aid}", tags=["incidents"])
def attachment(number: Id, aid: Id, request: Request, user: dict = Depends(staff)) -> Response:
    row, data = attachments.read(desk_of(request), number, aid)
    return Response(data, media_type=row["content_type"] or "application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{row["filename"]}"'})


@router.post("/incidents/{number}/messages", tags=["incidents"])
def message(number: Id, body: MessageIn, request: Request) -> dict:
    """A staff reply (staff session) or a message from a representative (``email``)."""
    user = optional_staff(request)
    files = [attachments.Upload(a.filename, a.decoded(), a.content_type) for a in body.attachments]
    if user is None:
        if not body.email:
            raise Invalid("give the representative's email, or log in as staff", field="email")
        if body.status:
            raise Forbidden("only staff change the status", field="status")
        return add_message(desk_of(request), number, text=body.text, uploads=files, channel="api",
                           sender_email=body.email)
    return add_message(desk_of(request), number, text=body.text, uploads=files, channel="api", staff=user,
                       status=body.status)


@router.post("/incidents/{number}/status", tags=["incidents"])
def status(number: Id, body: StatusIn, request: Request, user: dict = Depends(staff)) -> dict:
    return workflow.set_status(desk_of(request), number, body.status, actor=user["username"], note=body.note)


@router.post("/incidents/{number}/reopen", tags=["incidents"])
def reopen(number: Id, request: Request, user: dict = Depends(staff)) -> dict:
    return workflow.reopen(desk_of(request), number, actor=user["username"])


@router.post("/incidents/{number}/severity", tags=["incidents"])
def severity(number: Id, body: SeverityIn, request: Request, user: dict = Depends(staff)) -> dict:
    return workflow.set_severity(desk_of(request), number, body.severity, actor=user["username"],
                                 reason=body.reason)


@router.post("/incidents/{number}/escalate", tags=["incidents"])
def escalate(number: Id, body: EscalateIn, request: Request, user: dict = Depends(staff)) -> dict:
    return workflow.escalate(desk_of(request), number, engineer=body.engineer, reason=body.reason,
                             actor=user["username"])


@router.post("/incidents/{number}/supervisor-request", tags=["incidents"])
def supervisor_request(number: Id, body: SupervisorIn, request: Request) -> dict:
    """Record that the customer asked to speak to a supervisor or manager
    (staff, or the representative themself by email)."""
    desk = desk_of(request)
    user = optional_staff(request)
    if user is None:
        inc = get_incident(desk, number)
        with desk.read() as c:
            rep = customers.representative(c, body.requested_by)
        if rep is None or rep["customer_id"] != inc["customer_id"]:
            raise Forbidden(f"{body.requested_by} is not a representative of {inc['organisation']}",
                            field="requested_by")
    return workflow.supervisor_request(desk, number, role=body.role, requested_by=body.requested_by,
                                       note=body.note, actor=user["username"] if user else body.requested_by)


@router.post("/incidents/{number}/feedback", status_code=201, tags=["incidents"])
def feedback(number: Id, body: FeedbackIn, request: Request) -> dict:
    inc = workflow.add_feedback(desk_of(request), number, email=body.email, rating=body.rating,
                                comment=body.comment)
    return {"incident": number, "feedback": inc["feedback"]}


@router.get("/feedback/summary", tags=["incidents"])
def feedback_summary(request: Request, user: dict = Depends(staff)) -> dict:
    return workflow.feedback_summary(desk_of(request))


# -- customers (DESK-07) -----------------------------------------------------

@router.get("/customers", tags=["customers"])
def list_customers(request: Request, user: dict = Depends(staff)) -> list[dict]:
    return customers.list_customers(desk_of(request))


@router.post("/customers", status_code=201, tags=["customers"])
def add_customer(body: CustomerIn, request: Request, user: dict = Depends(staff)) -> dict:
    return customers.add_customer(desk_of(request), **body.model_dump())


@router.get("/customers/{cid}", tags=["customers"])
def get_customer(cid: Id, request: Request, user: dict = Depends(staff)) -> dict:
    return customers.get_customer(desk_of(request), cid)


@router.post("/customers/{cid}/agreements", status_code=201, tags=["customers"])
def add_agreement(cid: Id, body: AgreementIn, request: Request, user: dict = Depends(staff)) -> dict:
    return customers.add_agreement(desk_of(request), cid, **body.model_dump())


@router.post("/customers/{cid}/representatives", status_code=201, tags=["customers"])
def add_representative(cid: Id, body: RepresentativeIn, request: Request, user: dict = Depends(staff)) -> dict:
    return customers.add_representative(desk_of(request), cid, **body.model_dump())


@router.post("/representatives/{rid}/deactivate", tags=["customers"])
def deactivate(rid: Id, request: Request, user: dict = Depends(staff)) -> dict:
    return customers.set_representative_active(desk_of(request), rid, False)


@router.get("/refusals", tags=["customers"])
def refusals(request: Request, user: dict = Depends(staff)) -> list[dict]:
    return customers.list_refusals(desk_of(request))

