"""Severity targets and an incident's due times (DESK-02, DESK-03, DESK-05).

Targets are business time (``bizclock``):

    severity  first response  customer response
    1         30 min          30 min
    2         24 h            24 h
    3         24 h            none

* The first-response clock starts at ``clock_start``: the arrival, or the
  start of the next business period when the incident arrived outside hours.
* A severity change before the first response restarts the first-response
  clock with the new target from the (business-normalised) moment of change;
  a change while the customer is being waited on restarts that clock too.
* The customer-response clock runs while the status is Customer Information
  Requested, from the business-normalised moment the information was asked.
  A miss lowers the priority (severity 1 -> 2 -> 3) as of the due instant and
  restarts the wait with the new target (see ``jobs``).

This module computes; it stores nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .bizclock import add_business, business_between, is_business_time
from .clock import from_iso, iso

FIRST_RESPONSE = {1: timedelta(minutes=30), 2: timedelta(hours=24), 3: timedelta(hours=24)}
CUSTOMER_RESPONSE: dict[int, timedelta | None] = {1: timedelta(minutes=30), 2: timedelta(hours=24), 3: None}
SEVERITIES = {
    1: "production down, no workaround",
    2: "impaired, workaround exists",
    3: "cosmetic, enhancement or information",
}


def first_response_due(inc: dict) -> datetime:
    return add_business(from_iso(inc["first_response_base"]), FIRST_RESPONSE[inc["severity"]])


def customer_response_due(inc: dict) -> datetime | None:
    target = CUSTOMER_RESPONSE[inc["severity"]]
    if not inc.get("customer_wait_base") or target is None:
        return None
    return add_business(from_iso(inc["customer_wait_base"]), target)


def _minutes(td: timedelta) -> int:
    return int(td.total_seconds() // 60)


def view(inc: dict, now: datetime) -> dict:
    """Due times and breach flags as the UI and the API show them."""
    fr_due = first_response_due(inc)
    met = from_iso(inc.get("first_response_at"))
    fr = {
        "target_minutes": _minutes(FIRST_RESPONSE[inc["severity"]]),
        "started": inc["first_response_base"],
        "due": iso(fr_due),
        "met_at": iso(met),
        "breached": (met or now) > fr_due,
        "business_minutes_left": None if met else max(0, _minutes(business_between(now, fr_due))),
    }
    cr = None
    if inc.get("customer_wait_base"):
        due = customer_response_due(inc)
        target = CUSTOMER_RESPONSE[inc["severity"]]
        cr = {
            "target_minutes": _minutes(target) if target else None,
            "waiting_since": inc["customer_wait_base"],
            "due": iso(due),
            "breached": due is not None and now > due,
        }
    return {
        "received_at": inc["received_at"],
        "clock_start": inc["clock_start"],
        "in_business_hours_now": is_business_time(now),
        "first_response": fr,
        "customer_response": cr,
    }
