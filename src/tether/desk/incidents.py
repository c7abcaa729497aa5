"""Incidents (DESK-01): opening one from any channel (web form, API, mail,
appliance), reading and listing them with their clocks, and the messages
threaded onto them. Status, severity and escalation changes live in
``workflow``; the clock rules in ``sla``.

Every channel goes through ``open_incident``: the same validation, the same
entitlement check (DESK-07), the same retired-version rule (REL-02), and
nothing is stored unless all of it passes.
"""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa

from tether.core.errors import Conflict, Forbidden, Invalid, NotFound
from tether.core.releases import Version

from . import attachments, sla, tables
from .attachments import Upload
from .bizclock import TZ, next_business_instant
from .clock import iso
from .context import one
from .customers import check_entitled, refuse
from .mailout import incident_subject, queue
from .schemas import STATUSES, WAITING, IncidentIn

DETAIL_FIELDS = ("error_messages", "reproduction_steps", "prior_actions", "changes_made",
                 "duration", "os", "server_roles", "description")
_SUPERVISOR = re.compile(r"\b(?:speak|talk)\w*\s+(?:to|with)\s+(?:a|an|the|your|my)?\s*(supervisor|manager)\b",
                         re.IGNORECASE)


def version_check(desk, version: str | None, at: datetime) -> str | None:
    """None when the version is supported, else why it is not (REL-01/02).
    An unknown major release is bad input."""
    if version is None:
        return None
    v = Version.parse(version, field_name="product_version")
    ga = desk.catalog.major_ga(v.major_line)
    if ga is None:
        known = sorted({r.version.major_line for r in desk.catalog.releases})
        raise Invalid(f"{version} belongs to no known release (known majors: {', '.join(known)})",
                      field="product_version")
    on = at.astimezone(TZ).date()
    if desk.catalog.is_supported(v, on):
        return None
    return f"version {version} is retired: major {v.major_line} was supported until {desk.catalog.end_of_support(v)}"


def open_incident(desk, data: IncidentIn, uploads: list[Upload], *, channel: str,
                  customer_id: int | None = None, status: dict | None = None, actor: str | None = None,
                  report_key: str | None = None) -> dict:
    """Open an incident; returns it. Raises Invalid/Forbidden with nothing stored.

    ``report_key`` (appliances, with ``customer_id``): the key of the event reported; when an incident was
    already opened with it, that incident is returned (``duplicate`` true) and nothing new is stored."""
    if report_key is not None:
        known = reported(desk, customer_id, report_key)
        if known is not None:
            return known
    uploads = list(uploads) + [Upload(a.filename, a.decoded(), a.content_type) for a in data.attachments]
    if channel in ("web", "api", "appliance") and not data.product_version:
        raise Invalid("the product version is required (e.g. 1.1.0)", field="product_version")
    attachments.check(desk, uploads)
    now = desk.now()
    retired = version_check(desk, data.product_version, now)
    rep, cust = check_entitled(desk, channel=channel, email=data.inquirer_email, reply=channel == "mail")
    if customer_id is not None and cust["id"] != customer_id:
        refuse(desk, channel=channel, who=data.inquirer_email,
               reason=f"{data.inquirer_email} does not represent the customer this credential belongs to")
        raise Forbidden("the contact of this credential does not represent its customer")
    if retired and desk.config.retired_policy == "refuse":
        refuse(desk, channel=channel, who=data.inquirer_email, reason=retired, reply=channel == "mail")
        raise Forbidden(f"support refused: {retired}", field="product_version",
                        hint="upgrade to a supported release; see /api/releases")
    start = next_business_instant(now)
    try:
        number = _store(desk, data, uploads, channel=channel, cust=cust, rep=rep, status=status, actor=actor,
                        now=now, start=start, retired=retired, report_key=report_key)
    except sa.exc.IntegrityError:
        known = reported(desk, customer_id, report_key) if report_key is not None else None
        if known is None:
            raise
        return known  # the same report arrived twice at once: the other one opened it
    return get_incident(desk, number)


def reported(desk, customer_id: int | None, key: str) -> dict | None:
    """The incident already opened for this customer's report ``key``, marked ``duplicate``; else None."""
    r = tables.appliance_reports
    with desk.read() as c:
        number = c.execute(sa.select(r.c.incident).where(r.c.customer_id == customer_id,
                                                          r.c.key == key)).scalar()
    return None if number is None else {**get_incident(desk, number), "duplicate": True}


def _store(desk, data: IncidentIn, uploads: list[Upload], *, channel, cust, rep, status, actor, now, start,
           retired, report_key) -> int:
    values = {f: getattr(data, f) for f in DETAIL_FIELDS}
    with desk.tx() as c:
        number = c.execute(tables.incidents.insert().values(
            summary=data.summary, customer_id=cust["id"], organisation=cust["name"],
            inquirer_name=data.inquirer_name or rep["name"], inquirer_email=data.inquirer_email,
            source=channel, product_version=data.product_version, version_retired=bool(retired),
            appliance_status=status, severity=data.severity, status="open",
            received_at=iso(now), clock_start=iso(start), first_response_base=iso(start),
            status_since=iso(now), **values)).inserted_primary_key[0]
        if report_key is not None:
            c.execute(tables.appliance_reports.insert().values(customer_id=cust["id"], key=report_key,
                                                               incident=number, at=iso(now)))
        note = f"opened by {data.inquirer_email} via {channel}"
        if start != now:
            note += f"; received outside business hours, clocks start {iso(start)}"
        ev = event(c, number, now, actor or data.inquirer_email, "opened", note,
                   {"channel": channel, "severity": data.severity})
        if retired:
            event(c, number, now, "desk", "version_retired", retired)
        attachments.store(desk, c, number, ev, uploads)
        queue(c, now, data.inquirer_email, incident_subject(number, data.summary),
              f"Your incident has number {number}.\n\nSeverity: {data.severity} "
              f"({sla.SEVERITIES[data.severity]}).\nReply to this mail keeping "
              f"'Incident #{number}' at the start of the subject to add information.\n"
              + (f"\nNote: {retired}.\n" if retired else ""))
    return number


def event(conn, number: int, at: datetime, actor: str, kind: str, text: str | None = None,
          data: dict | None = None) -> int:
    return conn.execute(tables.events.insert().values(
        incident=number, at=iso(at), actor=actor, kind=kind, text=text, data=data or {})).inserted_primary_key[0]


def load(conn, number: int) -> dict:
    inc = one(conn, sa.select(tables.incidents).where(tables.incidents.c.number == number))
    if inc is None:
        raise NotFound(f"there is no incident {number}", field="number")
    return inc


def present(inc: dict, now: datetime) -> dict:
    out = dict(inc)
    out["status_label"] = STATUSES[inc["status"]]
    out["severity_label"] = sla.SEVERITIES[inc["severity"]]
    out["sla"] = sla.view(inc, now)
    return out


def get_incident(desk, number: int) -> dict:
    now = desk.now()
    with desk.read() as c:
        inc = present(load(c, number), now)
        e = tables.events
        inc["history"] = [dict(r) for r in c.execute(
            sa.select(e).where(e.c.incident == number).order_by(e.c.id)).mappings()]
        inc["attachments"] = attachments.list_for(c, number)
        f = tables.feedback
        inc["feedback"] = [dict(r) for r in c.execute(
            sa.select(f).where(f.c.incident == number).order_by(f.c.id)).mappings()]
    inc["breaches"] = [h for h in inc["history"] if h["kind"] == "breach"]
    return inc


def list_incidents(desk, *, status: str | None = None, customer_id: int | None = None) -> list[dict]:
    t = tables.incidents
    q = sa.select(t).order_by(t.c.number.desc())
    if status:
        if status not in STATUSES:
            raise Invalid(f"unknown status {status!r}", field="status")
        q = q.where(t.c.status == status)
    if customer_id is not None:
        q = q.where(t.c.customer_id == customer_id)
    now = desk.now()
    with desk.read() as c:
        return [present(dict(r), now) for r in c.execute(q).mappings()]


def add_message(desk, number: int, *, text: str, uploads: list[Upload], channel: str,
                sender_email: str | None = None, staff: dict | None = None, status: str | None = None) -> dict:
    """Thread a message onto incident ``number``: a staff reply (``staff``) or a
    message from a representative of the incident's customer."""
    attachments.check(desk, uploads)
    with desk.read() as c:
        inc = load(c, number)
    if status and status != inc["status"] and inc["status"] == "closed":  # refused before anything is stored
        raise Conflict(f"incident {number} is closed; reopen it first", field="status",
                       hint=f"POST /api/incidents/{number}/reopen")
    if staff is None:
        rep, cust = check_entitled(desk, channel=channel, email=sender_email, incident=number,
                                   reply=channel == "mail", field="email")
        if cust["id"] != inc["customer_id"]:
            reason = f"{sender_email} does not represent {inc['organisation']}, the customer of incident {number}"
            refuse(desk, channel=channel, who=sender_email, reason=reason, incident=number, reply=channel == "mail")
            raise Forbidden(reason, field="email")
    now = desk.now()
    with desk.tx() as c:
        inc = load(c, number)
        if staff is not None:
            ev = event(c, number, now, staff["username"], "reply", text)
            changes = {}
            if not inc["first_response_at"]:
                changes["first_response_at"] = iso(now)
            if changes:
                c.execute(tables.incidents.update().where(tables.incidents.c.number == number).values(**changes))
            queue(c, now, inc["inquirer_email"], incident_subject(number, inc["summary"]), text)
        else:
            ev = event(c, number, now, sender_email, "customer_message", text, {"channel": channel})
            _customer_spoke(c, inc, now, sender_email)
            m = _SUPERVISOR.search(text or "")
            if m:
                event(c, number, now, sender_email, "supervisor_request",
                      f"asked to speak to a {m.group(1).lower()} (detected in message)",
                      {"role": m.group(1).lower(), "detected": True})
        attachments.store(desk, c, number, ev, uploads)
    if status and status != inc["status"]:
        from .workflow import set_status

        set_status(desk, number, status, actor=staff["username"] if staff else sender_email)
    return get_incident(desk, number)


def _customer_spoke(conn, inc: dict, now: datetime, who: str) -> None:
    """A customer's message ends a wait (back to Open) and reopens a closed incident."""
    number = inc["number"]
    if inc["status"] == "closed":
        event(conn, number, now, who, "reopened", "reopened by a message from the customer")
    elif inc["status"] in WAITING:
        event(conn, number, now, who, "status", f"{STATUSES[inc['status']]} -> Open (customer replied)",
              {"from": inc["status"], "to": "open"})
    else:
        return
    conn.execute(tables.incidents.update().where(tables.incidents.c.number == number).values(
        status="open", status_since=iso(now), customer_wait_base=None, close_notice_at=None, closed_at=None))
