"""Input shapes of the desk's API and forms (pydantic). Validation here is
syntactic; rules that need the database (entitlement, catalog, state) live in
the service modules. Bad input becomes ``Invalid`` naming the field."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from tether.core.releases import Version
from tether.core.validate import Bool, Id

from .attachments import media_type
from .clock import parse_instant

NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # an appliance token's or a hosted appliance's name
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Text = Annotated[str, StringConstraints(max_length=100_000)]
Line = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
# the same, as long as the column they are stored in (tables): longer is bad input, not a database error
Short200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short64 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Line200 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Line64 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
Line32 = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]

STATUSES = {
    "open": "Open",
    "resolved_pending_confirmation": "Resolved Pending Confirmation",
    "customer_information_requested": "Customer Information Requested",
    "software_change_required": "Software Change Required",
    "closed": "Closed",
}
WAITING = ("resolved_pending_confirmation", "customer_information_requested", "software_change_required")
Status = Literal["open", "resolved_pending_confirmation", "customer_information_requested",
                 "software_change_required", "closed"]


def email(value: str) -> str:
    v = str(value).strip().lower()
    if not EMAIL.match(v) or len(v) > 254:
        raise ValueError(f"{value!r} is not an email address")
    return v


def version(value: str) -> str:
    try:
        return str(Version.parse(value))
    except Exception as exc:  # Invalid -> a pydantic error naming the field
        raise ValueError(getattr(exc, "message", str(exc))) from None


def instant(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("give an ISO 8601 date and time with its UTC offset (e.g. 2027-01-05T10:00-06:00)")
    try:
        return parse_instant(value)
    except Exception as exc:  # Invalid -> a pydantic error naming the field
        raise ValueError(getattr(exc, "message", str(exc))) from None


Email = Annotated[str, AfterValidator(email)]
Instant = Annotated[datetime, BeforeValidator(instant)]  # ISO 8601 with an offset, 2000..2999; in UTC
VersionText = Annotated[str, AfterValidator(version)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttachmentIn(Strict):
    filename: Short
    content_base64: str
    content_type: Line | None = None

    def decoded(self) -> bytes:
        return base64.b64decode(self.content_base64, validate=True)

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, v: str | None) -> str | None:
        if v and media_type(v) is None:
            raise ValueError(f"{v!r} is not a media type (e.g. text/plain)")
        return v or None

    @field_validator("content_base64")
    @classmethod
    def _b64(cls, v: str) -> str:
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("is not valid base64") from None
        return v


class IncidentIn(Strict):
    summary: Short
    inquirer_email: Email
    inquirer_name: Line200 | None = None
    product_version: str | None = None
    severity: int = Field(3, ge=1, le=3)
    error_messages: Text | None = None
    reproduction_steps: Text | None = None
    prior_actions: Text | None = None
    changes_made: Text | None = None
    duration: Line200 | None = None
    os: Line200 | None = None
    server_roles: Line | None = None
    description: Text | None = None
    attachments: list[AttachmentIn] = []

    @field_validator("product_version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        return version(v)


class MessageIn(Strict):
    text: Text
    email: Email | None = None  # a representative's address; omitted for staff replies
    status: Status | None = None
    attachments: list[AttachmentIn] = []


class StatusIn(Strict):
    status: Status
    note: Text | None = None


class SeverityIn(Strict):
    severity: int = Field(ge=1, le=3)
    reason: Text | None = None


class EscalateIn(Strict):
    engineer: Short
    reason: Text | None = None


class SupervisorIn(Strict):
    role: Literal["supervisor", "manager"]
    requested_by: Email
    note: Text | None = None


class FeedbackIn(Strict):
    email: Email
    rating: int = Field(ge=1, le=5)
    comment: Text | None = None


class CustomerIn(Strict):
    name: Short200
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] = "US"
    vat_number: Line32 | None = None


class AgreementIn(Strict):
    starts: date
    ends: date
    level: Line32 = "standard"


class RepresentativeIn(Strict):
    name: Short200
    email: Email
    phone: Line64 | None = None


Name = Annotated[str, StringConstraints(pattern=NAME.pattern)]


class TokenIn(Strict):
    name: Name
    customer_id: Id
    contact_email: Email


class LoginIn(Strict):
    username: Short
    password: str


class HostedIn(Strict):
    name: Name
    customer_id: Id
    version: VersionText
    level: int = Field(1, ge=1, le=2)
    contact_email: Email


class InstalledIn(Strict):
    version: VersionText


class ContactIn(Strict):
    name: Short
    email: Email
    phone: Short


class RmaIn(Strict):
    customer_id: Id
    incident: Id | None = None
    model: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[Bb]\d{3}$")]
    serial: Short64
    part: Literal["disk", "power_supply", "appliance"]
    service: Literal["replacement", "repair_return"] = "replacement"
    contact: ContactIn
    shipping_address: Short
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
    vat_number: Line32 | None = None
    vat_consent: Bool = False


class RmaEventIn(Strict):
    at: Instant | None = None  # default now
