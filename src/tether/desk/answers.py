"""Output shapes of the desk's JSON API (pydantic), one model per shape: what
each operation answers on success, as ``/api/openapi.json`` documents it and
FastAPI checks it. Error answers are ``tether.core.apierrors.ErrorBody``;
input shapes are in ``schemas``. The service modules build plain dicts; these
models only describe and serialise them.

Times are ISO 8601 strings (``clock.iso``), dates ``YYYY-MM-DD``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from .schemas import Status

Channel = Literal["web", "api", "mail", "appliance"]


class Health(BaseModel):
    status: Literal["ok"]
    clock: str  # system | fixed | file (a test clock)
    now: str


class Session(BaseModel):
    """A staff login: the bearer token (also set as the ``desk_session`` cookie) and its CSRF token."""
    token: str
    username: str
    role: str
    csrf_token: str


class Done(BaseModel):
    ok: bool


class StaffUser(BaseModel):
    username: str
    email: str
    display_name: str | None = None
    role: str
    csrf_token: str | None = None  # only for a cookie session: changes must echo it (X-CSRF-Token)


# -- incidents ---------------------------------------------------------------

class FirstResponse(BaseModel):
    target_minutes: int
    started: str
    due: str
    met_at: str | None
    breached: bool
    business_minutes_left: int | None


class CustomerResponse(BaseModel):
    target_minutes: int | None
    waiting_since: str
    due: str | None
    breached: bool


class Sla(BaseModel):
    received_at: str
    clock_start: str
    in_business_hours_now: bool
    first_response: FirstResponse
    customer_response: CustomerResponse | None


class Event(BaseModel):
    id: int
    incident: int
    at: str
    actor: str
    kind: str
    text: str | None
    data: dict[str, Any] | None


class Attachment(BaseModel):
    id: int
    event: int | None
    filename: str
    content_type: str | None
    size: int
    sha256: str


class Feedback(BaseModel):
    id: int
    incident: int
    at: str
    email: str
    rating: int
    comment: str | None


class IncidentSummary(BaseModel):
    """An incident as the list shows it: its fields, labels and clocks."""
    number: int
    summary: str
    customer_id: int
    organisation: str
    inquirer_name: str | None
    inquirer_email: str
    source: Channel
    product_version: str | None
    version_retired: bool
    error_messages: str | None
    reproduction_steps: str | None
    prior_actions: str | None
    changes_made: str | None
    duration: str | None
    os: str | None
    server_roles: str | None
    description: str | None
    appliance_status: dict[str, Any] | None
    severity: Literal[1, 2, 3]
    severity_label: str
    status: Status
    status_label: str
    received_at: str
    clock_start: str
    first_response_base: str
    first_response_at: str | None
    customer_wait_base: str | None
    status_since: str
    close_notice_at: str | None
    escalated_to: str | None
    closed_at: str | None
    sla: Sla


class Incident(IncidentSummary):
    """One incident with its history, attachments, feedback and breaches."""
    history: list[Event]
    attachments: list[Attachment]
    feedback: list[Feedback]
    breaches: list[Event]


class FeedbackGiven(BaseModel):
    incident: int
    feedback: list[Feedback]


class FeedbackSummary(BaseModel):
    responses: int
    average_rating: float | None


# -- customers ---------------------------------------------------------------

class Agreement(BaseModel):
    id: int
    customer_id: int
    starts: str
    ends: str
    level: str


class Representative(BaseModel):
    id: int
    customer_id: int
    name: str
    email: str
    phone: str | None
    active: bool


class Customer(BaseModel):
    id: int
    name: str
    country: str
    vat_number: str | None
    agreements: list[Agreement]
    representatives: list[Representative]


class Refusal(BaseModel):
    id: int
    at: str
    channel: Channel
    who: str | None
    incident: int | None
    reason: str


# -- appliances, releases, updates --------------------------------------------

class TokenCreated(BaseModel):
    token: str  # the secret, shown only here
    name: str
    customer_id: int
    contact_email: str


class TokenRevoked(BaseModel):
    revoked: str


class ApplianceReport(BaseModel):
    """An appliance's incident: new (201) or the one its ``key`` already opened (200, ``duplicate``)."""
    number: int
    status: Status
    severity: Literal[1, 2, 3]
    version_retired: bool
    attachments: list[Attachment]
    sla: Sla
    duplicate: bool


class ReleaseInfo(BaseModel):
    version: str
    major: str
    kind: Literal["major", "maintenance"]
    ga: str
    major_ga: str
    end_of_support: str
    supported: bool
    upgrade_from: list[str]
    critical_security: bool


class Releases(BaseModel):
    on: str
    releases: list[ReleaseInfo]


class ReleaseCheck(BaseModel):
    version: str
    major: str
    end_of_support: str
    supported: bool
    target: str | None = None  # with ``upgrade_allowed``: only when a target was asked about
    upgrade_allowed: bool | None = None


class NextUpdate(BaseModel):
    target: str
    at: str
    reason: str
    critical: bool
    notice_due: str
    notice_sent_at: str | None


class Hosted(BaseModel):
    name: str
    customer_id: int
    version: str
    level: Literal[1, 2]
    contact_email: str
    next_update: NextUpdate | None


# -- RMA, jobs ---------------------------------------------------------------

class Contact(BaseModel):
    name: str
    email: str
    phone: str


class Rma(BaseModel):
    id: int
    incident: int | None
    customer_id: int
    model: str
    serial: str
    part: Literal["disk", "power_supply", "appliance"]
    service: Literal["replacement", "repair_return"]
    contact: Contact
    shipping_address: str
    country: str
    international: bool
    vat_number: str | None
    vat_consent: bool
    status: Literal["requested", "shipped", "live", "returned", "received", "repaired"]
    created_at: str
    shipped_at: str | None
    live_at: str | None
    defective_due: str | None
    defective_received_at: str | None
    repair_due: str | None
    list_price: int  # US dollars
    invoice: bool
    invoice_amount: int | None


class AutoClose(BaseModel):
    notified: int
    closed: int


class JobsRun(BaseModel):
    now: str
    first_response: int
    customer_response: int
    auto_close: AutoClose
    rma_invoices: int
    update_notices: int
    mail: int
