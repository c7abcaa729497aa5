"""The one runner for the desk's time-based work. Every job is idempotent and
takes "now" as an argument, so the same code runs from the server's periodic
loop (``--jobs-interval``), from ``POST /api/jobs/run`` (staff) and from
``tether-desk jobs run --now ...``.

Jobs, in order:

* ``first_response``  record a breach event when a first-response target passes.
* ``customer_response`` (DESK-05) a customer who misses the customer-response
  target lowers the priority: severity 1 -> 2 -> 3, as of the due instant,
  recorded in the history and mailed; the wait restarts with the new target.
* ``auto_close`` (DESK-04) incidents in a waiting status get a notice
  ``close_notice_days`` before ``auto_close_days`` have passed and close once
  both that time and ``close_notice_days`` since the notice have passed (so a
  late run never closes without notice).
* ``rma_invoices`` (DESK-08) and ``update_notices`` (REL-04).
* ``mail`` retry whatever is still in the outbox.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from . import sla, tables
from .clock import from_iso, iso
from .incidents import event, load
from .mailout import incident_subject, queue
from .schemas import STATUSES, WAITING
from .workflow import change_severity

log = logging.getLogger("tether.desk.jobs")
_inc = tables.incidents


def run_jobs(desk, now: datetime | None = None) -> dict:
    now = now or desk.now()
    from .rma import invoice_overdue
    from .updates import send_notices

    with desk.jobs_lock:
        result = {
            "now": iso(now),
            "first_response": first_response(desk, now),
            "customer_response": customer_response(desk, now),
            "auto_close": auto_close(desk, now),
            "rma_invoices": invoice_overdue(desk, now),
            "update_notices": send_notices(desk, now),
        }
        result["mail"] = desk.flush_mail()
    return result


def _open_numbers(desk, *where) -> list[int]:
    with desk.read() as c:
        return [r[0] for r in c.execute(sa.select(_inc.c.number).where(_inc.c.status != "closed", *where))]


def first_response(desk, now: datetime) -> int:
    n = 0
    for number in _open_numbers(desk, _inc.c.first_response_at.is_(None)):
        with desk.tx() as c:
            inc = load(c, number)
            due = sla.first_response_due(inc)
            if now <= due or _has_breach(c, number, "first_response", due):
                continue
            event(c, number, due, "desk", "breach", f"first-response target missed (due {iso(due)})",
                  {"target": "first_response", "due": iso(due), "severity": inc["severity"]})
            n += 1
    return n


def _has_breach(conn, number: int, target: str, due: datetime) -> bool:
    e = tables.events
    rows = conn.execute(sa.select(e.c.data).where(e.c.incident == number, e.c.kind == "breach")).scalars()
    return any(d.get("target") == target and d.get("due") == iso(due) for d in rows)


def customer_response(desk, now: datetime) -> int:
    n = 0
    for number in _open_numbers(desk, _inc.c.status == "customer_information_requested"):
        with desk.tx() as c:
            while True:
                inc = load(c, number)
                due = sla.customer_response_due(inc)
                if due is None or now <= due:
                    break
                event(c, number, due, "desk", "breach", f"customer-response target missed (due {iso(due)})",
                      {"target": "customer_response", "due": iso(due), "severity": inc["severity"]})
                change_severity(c, inc, inc["severity"] + 1, due, actor="desk", kind="priority_lowered",
                                reason="the customer did not respond within the customer-response target")
                n += 1
    return n


def auto_close(desk, now: datetime) -> dict:
    cfg = desk.config
    after, lead = timedelta(days=cfg.auto_close_days), timedelta(days=cfg.close_notice_days)
    notified = closed = 0
    for number in _open_numbers(desk, _inc.c.status.in_(WAITING)):
        with desk.tx() as c:
            inc = load(c, number)
            since = from_iso(inc["status_since"])
            notice_at = from_iso(inc["close_notice_at"])
            label = STATUSES[inc["status"]]
            subject = incident_subject(number, inc["summary"])
            if notice_at is None:
                if now < since + after - lead:
                    continue
                close_on = max(since + after, now + lead)
                c.execute(_inc.update().where(_inc.c.number == number).values(close_notice_at=iso(now)))
                event(c, number, now, "desk", "close_notice",
                      f"notice: closes by itself on {iso(close_on)} unless the customer replies")
                queue(c, now, inc["inquirer_email"], subject,
                      f"Your incident has been '{label}' since {inc['status_since']}.\n"
                      f"It will close by itself on {iso(close_on)} unless you reply to this mail.\n")
                notified += 1
            elif now >= max(since + after, notice_at + lead):
                c.execute(_inc.update().where(_inc.c.number == number).values(
                    status="closed", closed_at=iso(now), status_since=iso(now)))
                event(c, number, now, "desk", "status", f"{label} -> Closed (closed automatically after "
                      f"{cfg.auto_close_days:g} days)", {"from": inc["status"], "to": "closed", "auto": True})
                queue(c, now, inc["inquirer_email"], subject,
                      f"Your incident was closed automatically after {cfg.auto_close_days:g} days "
                      f"as '{label}'.\nReply to this mail to reopen it.\n")
                closed += 1
    return {"notified": notified, "closed": closed}
