"""What staff and customers do to an open incident: status (DESK-04),
severity (DESK-02), escalation and supervisor requests, feedback and surveys
(DESK-06), reopening. Each change is one transaction and one history event;
the customer is mailed where the change concerns them.
"""

from __future__ import annotations

import sqlalchemy as sa

from tether.core.errors import Conflict, Forbidden, Invalid, NotFound

from . import sla, tables
from .bizclock import next_business_instant
from .clock import from_iso, iso
from .context import one
from .incidents import event, get_incident, load
from .mailout import incident_subject, queue
from .schemas import STATUSES, WAITING

_inc = tables.incidents


def _update(conn, number: int, **values) -> None:
    conn.execute(_inc.update().where(_inc.c.number == number).values(**values))


def set_status(desk, number: int, status: str, *, actor: str, note: str | None = None) -> dict:
    if status not in STATUSES:
        raise Invalid(f"unknown status {status!r}", field="status")
    now = desk.now()
    with desk.tx() as c:
        inc = load(c, number)
        old = inc["status"]
        if old == status:
            raise Conflict(f"incident {number} is already {STATUSES[status]}", field="status")
        if old == "closed":
            raise Conflict(f"incident {number} is closed; reopen it first", field="status",
                           hint=f"POST /api/incidents/{number}/reopen")
        values = {"status": status, "status_since": iso(now), "close_notice_at": None,
                  "customer_wait_base": None}
        if status == "customer_information_requested":
            values["customer_wait_base"] = iso(next_business_instant(now))
        if status == "closed":
            values["closed_at"] = iso(now)
        _update(c, number, **values)
        text = f"{STATUSES[old]} -> {STATUSES[status]}" + (f": {note}" if note else "")
        event(c, number, now, actor, "status", text, {"from": old, "to": status})
        body = f"The status of your incident is now: {STATUSES[status]}.\n" + (f"\n{note}\n" if note else "")
        if status in WAITING:
            body += (f"\nWithout news from you it will close by itself after "
                     f"{desk.config.auto_close_days:g} days.\n")
        if status == "closed":
            body += _survey_text(desk, number)
        queue(c, now, inc["inquirer_email"], incident_subject(number, inc["summary"]), body)
    return get_incident(desk, number)


def _survey_text(desk, number: int) -> str:
    return (f"\nHow did we do? Rate this incident from 1 to 5 at "
            f"{desk.config.base_url}/incidents/{number}/feedback or by POST "
            f"/api/incidents/{number}/feedback.\n")


def reopen(desk, number: int, *, actor: str, note: str | None = None) -> dict:
    now = desk.now()
    with desk.tx() as c:
        inc = load(c, number)
        if inc["status"] != "closed":
            raise Conflict(f"incident {number} is not closed", field="status")
        _update(c, number, status="open", status_since=iso(now), closed_at=None, close_notice_at=None,
                customer_wait_base=None)
        event(c, number, now, actor, "reopened", note or "reopened")
        queue(c, now, inc["inquirer_email"], incident_subject(number, inc["summary"]),
              "Your incident has been reopened.\n")
    return get_incident(desk, number)


def set_severity(desk, number: int, severity: int, *, actor: str, reason: str | None = None,
                 kind: str = "severity") -> dict:
    now = desk.now()
    with desk.tx() as c:
        inc = load(c, number)
        change_severity(c, inc, severity, now, actor=actor, reason=reason, kind=kind)
    return get_incident(desk, number)


def change_severity(conn, inc: dict, severity: int, at, *, actor: str, reason: str | None,
                    kind: str = "severity") -> None:
    """Change severity as of ``at``; pending clocks restart with the new targets."""
    number = inc["number"]
    if severity not in sla.FIRST_RESPONSE:
        raise Invalid("severity must be 1, 2 or 3", field="severity")
    if severity == inc["severity"]:
        raise Conflict(f"incident {number} already has severity {severity}", field="severity")
    if inc["status"] == "closed":
        raise Conflict(f"incident {number} is closed", field="status")
    base = iso(max(next_business_instant(at), from_iso(inc["clock_start"])))
    values = {"severity": severity}
    if not inc["first_response_at"]:
        values["first_response_base"] = base
    if inc["customer_wait_base"]:
        values["customer_wait_base"] = base
    _update(conn, number, **values)
    text = f"severity {inc['severity']} -> {severity}" + (f": {reason}" if reason else "")
    event(conn, number, at, actor, kind, text, {"from": inc["severity"], "to": severity})
    queue(conn, at, inc["inquirer_email"], incident_subject(number, inc["summary"]),
          f"The severity of your incident changed: {text}.\n")


def escalate(desk, number: int, *, engineer: str, reason: str | None, actor: str) -> dict:
    now = desk.now()
    with desk.tx() as c:
        eng = one(c, sa.select(tables.staff).where(tables.staff.c.username == engineer))
        if eng is None or eng["role"] != "engineer":
            raise Invalid(f"{engineer!r} is not a product support engineer", field="engineer")
        inc = load(c, number)
        if inc["status"] == "closed":
            raise Conflict(f"incident {number} is closed; reopen it first", field="status")
        _update(c, number, escalated_to=engineer)
        event(c, number, now, actor, "escalated", f"escalated to product support engineer {engineer}"
              + (f": {reason}" if reason else ""), {"engineer": engineer})
        queue(c, now, eng["email"], incident_subject(number, inc["summary"]),
              f"Incident {number} has been escalated to you by {actor}.\n{reason or ''}\n")
    return get_incident(desk, number)


def supervisor_request(desk, number: int, *, role: str, requested_by: str, note: str | None,
                       actor: str) -> dict:
    now = desk.now()
    with desk.tx() as c:
        load(c, number)
        event(c, number, now, actor, "supervisor_request",
              f"{requested_by} asked to speak to a {role}" + (f": {note}" if note else ""),
              {"role": role, "requested_by": requested_by})
        for sup in c.execute(sa.select(tables.staff).where(tables.staff.c.role == "supervisor")).mappings():
            queue(c, now, sup["email"], f"Incident #{number}: {requested_by} asks for a {role}",
                  note or "")
    return get_incident(desk, number)


def add_feedback(desk, number: int, *, email: str, rating: int, comment: str | None) -> dict:
    now = desk.now()
    with desk.tx() as c:
        inc = load(c, number)
        rep = one(c, sa.select(tables.representatives).where(tables.representatives.c.email == email))
        if email != inc["inquirer_email"] and (rep is None or rep["customer_id"] != inc["customer_id"]):
            raise Forbidden(f"{email} may not give feedback on incident {number}", field="email")
        fid = c.execute(tables.feedback.insert().values(
            incident=number, at=iso(now), email=email, rating=rating, comment=comment)).inserted_primary_key[0]
        event(c, number, now, email, "feedback", f"rated {rating}/5" + (f": {comment}" if comment else ""),
              {"feedback": fid})
    return get_incident(desk, number)


def feedback_summary(desk) -> dict:
    f = tables.feedback
    with desk.read() as c:
        row = c.execute(sa.select(sa.func.count(f.c.id), sa.func.avg(f.c.rating))).first()
    if row is None:
        raise NotFound("no feedback")
    return {"responses": row[0], "average_rating": round(row[1], 2) if row[1] is not None else None}
