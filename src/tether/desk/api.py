"""JSON API for incidents, customers and staff sessions (``/api/...``).
Routes only parse, call the service modules and present; the HTML pages call
the same functions. Operations (RMA, releases, updates, tokens, jobs,
appliance incidents) are in ``api_ops``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tether.core.apierrors import errors
from tether.core.errors import Forbidden, Invalid
from tether.core.validate import Id

from . import attachments, auth, customers, workflow
from .answers import (Agreement, Customer, Done, FeedbackGiven, FeedbackSummary, Health, Incident, IncidentSummary,
                      Refusal, Representative, Session, StaffUser)
from .clock import iso
from .deps import COOKIE, Staff, desk_of, optional_staff
from .incidents import add_message, get_incident, list_incidents, open_incident
from .schemas import (AgreementIn, CustomerIn, EscalateIn, FeedbackIn, IncidentIn, LoginIn, MessageIn,
                      RepresentativeIn, SeverityIn, StatusIn, Status, SupervisorIn)

router = APIRouter(prefix="/api")
# a representative (by email, no credentials) or staff (with a session)
_STAFF_OR_NONE = [{}, {"staff_token": []}, {"staff_cookie": []}]


@router.get("/health", tags=["desk"])
def health(request: Request) -> Health:
    desk = desk_of(request)
    return {"status": "ok", "clock": desk.clock.kind, "now": iso(desk.now())}


@router.post("/login", tags=["staff"], responses=errors(401, 413, 422))
def login(body: LoginIn, request: Request, response: Response) -> Session:
    token, info = auth.login(desk_of(request), body.username, body.password,
                             request.client.host if request.client else None)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return {"token": token, **info}


@router.post("/logout", tags=["staff"], responses=errors(401, 403))
def logout(request: Request, response: Response, user: Staff) -> Done:
    token = request.headers.get("authorization", "")[7:] or request.cookies.get(COOKIE)
    if token:
        auth.sessions(desk_of(request)).delete(token)
    response.delete_cookie(COOKIE)
    return {"ok": True}


@router.get("/me", tags=["staff"], responses=errors(401), response_model_exclude_unset=True)
def me(user: Staff) -> StaffUser:
    return user


# -- incidents ---------------------------------------------------------------

@router.post("/incidents", status_code=201, tags=["incidents"], responses=errors(403, 413, 422))
def create_incident(body: IncidentIn, request: Request) -> Incident:
    """Open an incident. The inquirer must be a known representative of a
    customer with a current maintenance agreement (DESK-07)."""
    return open_incident(desk_of(request), body, [], channel="api")


@router.get("/incidents", tags=["incidents"], responses=errors(401, 422))
def incidents(request: Request, user: Staff, status: Status | None = None,
              customer_id: Id | None = None) -> list[IncidentSummary]:
    return list_incidents(desk_of(request), status=status, customer_id=customer_id)


@router.get("/incidents/{number}", tags=["incidents"], responses=errors(401, 404, 422))
def incident(number: Id, request: Request, user: Staff) -> Incident:
    return get_incident(desk_of(request), number)


@router.get("/incidents/{number}/attachments/{aid}", tags=["incidents"], response_class=Response,
            responses={200: {"description": "the file, with the media type it was given (else "
                                            "application/octet-stream)", "content": {"*/*": {}}},
                       **errors(401, 404, 422)})
def attachment(number: Id, aid: Id, request: Request, user: Staff) -> Response:
    row, data = attachments.read(desk_of(request), number, aid)
    return Response(data, media_type=attachments.media_type(row["content_type"]) or "application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{row["filename"]}"'})


@router.post("/incidents/{number}/messages", tags=["incidents"], responses=errors(401, 403, 404, 409, 413, 422),
             openapi_extra={"security": _STAFF_OR_NONE})
def message(number: Id, body: MessageIn, request: Request) -> Incident:
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


@router.post("/incidents/{number}/status", tags=["incidents"], responses=errors(401, 403, 404, 409, 413, 422))
def status(number: Id, body: StatusIn, request: Request, user: Staff) -> Incident:
    return workflow.set_status(desk_of(request), number, body.status, actor=user["username"], note=body.note)


@router.post("/incidents/{number}/reopen", tags=["incidents"], responses=errors(401, 403, 404, 409, 422))
def reopen(number: Id, request: Request, user: Staff) -> Incident:
    return workflow.reopen(desk_of(request), number, actor=user["username"])


@router.post("/incidents/{number}/severity", tags=["incidents"], responses=errors(401, 403, 404, 409, 413, 422))
def severity(number: Id, body: SeverityIn, request: Request, user: Staff) -> Incident:
    return workflow.set_severity(desk_of(request), number, body.severity, actor=user["username"],
                                 reason=body.reason)


@router.post("/incidents/{number}/escalate", tags=["incidents"], responses=errors(401, 403, 404, 409, 413, 422))
def escalate(number: Id, body: EscalateIn, request: Request, user: Staff) -> Incident:
    return workflow.escalate(desk_of(request), number, engineer=body.engineer, reason=body.reason,
                             actor=user["username"])


@router.post("/incidents/{number}/supervisor-request", tags=["incidents"], responses=errors(401, 403, 404, 413, 422),
             openapi_extra={"security": _STAFF_OR_NONE})
def supervisor_request(number: Id, body: SupervisorIn, request: Request) -> Incident:
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


@router.post("/incidents/{number}/feedback", status_code=201, tags=["incidents"], responses=errors(403, 404, 413, 422))
def feedback(number: Id, body: FeedbackIn, request: Request) -> FeedbackGiven:
    inc = workflow.add_feedback(desk_of(request), number, email=body.email, rating=body.rating,
                                comment=body.comment)
    return {"incident": number, "feedback": inc["feedback"]}


@router.get("/feedback/summary", tags=["incidents"], responses=errors(401))
def feedback_summary(request: Request, user: Staff) -> FeedbackSummary:
    return workflow.feedback_summary(desk_of(request))


# -- customers (DESK-07) -----------------------------------------------------

@router.get("/customers", tags=["customers"], responses=errors(401))
def list_customers(request: Request, user: Staff) -> list[Customer]:
    return customers.list_customers(desk_of(request))


@router.post("/customers", status_code=201, tags=["customers"], responses=errors(401, 403, 409, 413, 422))
def add_customer(body: CustomerIn, request: Request, user: Staff) -> Customer:
    return customers.add_customer(desk_of(request), **body.model_dump())


@router.get("/customers/{cid}", tags=["customers"], responses=errors(401, 404, 422))
def get_customer(cid: Id, request: Request, user: Staff) -> Customer:
    return customers.get_customer(desk_of(request), cid)


@router.post("/customers/{cid}/agreements", status_code=201, tags=["customers"],
             responses=errors(401, 403, 404, 413, 422))
def add_agreement(cid: Id, body: AgreementIn, request: Request, user: Staff) -> Agreement:
    return customers.add_agreement(desk_of(request), cid, **body.model_dump())


@router.post("/customers/{cid}/representatives", status_code=201, tags=["customers"],
             responses=errors(401, 403, 404, 409, 413, 422))
def add_representative(cid: Id, body: RepresentativeIn, request: Request, user: Staff) -> Representative:
    return customers.add_representative(desk_of(request), cid, **body.model_dump())


@router.post("/representatives/{rid}/deactivate", tags=["customers"], responses=errors(401, 403, 404, 422))
def deactivate(rid: Id, request: Request, user: Staff) -> Representative:
    return customers.set_representative_active(desk_of(request), rid, False)


@router.get("/refusals", tags=["customers"], responses=errors(401))
def refusals(request: Request, user: Staff) -> list[Refusal]:
    return customers.list_refusals(desk_of(request))

