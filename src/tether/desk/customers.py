"""Customers, maintenance agreements, representatives and the entitlement
rule (DESK-07): support is given only under a current agreement and to a
known, active representative of the customer. Every refusal is recorded in
the ``refusals`` table with its reason, whatever the channel.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from tether.core.errors import Conflict, Forbidden, Invalid, NotFound

from . import tables
from .bizclock import TZ
from .clock import iso
from .context import one
from .mailout import queue

CHANNELS = ("web", "api", "mail", "appliance")


def add_customer(desk, *, name: str, country: str = "US", vat_number: str | None = None) -> dict:
    with desk.tx() as c:
        if one(c, sa.select(tables.customers).where(tables.customers.c.name == name)):
            raise Conflict(f"a customer named {name!r} exists already", field="name")
        cid = c.execute(tables.customers.insert().values(
            name=name, country=country.upper(), vat_number=vat_number)).inserted_primary_key[0]
    return get_customer(desk, cid)


def get_customer(desk, cid: int) -> dict:
    with desk.read() as c:
        cust = one(c, sa.select(tables.customers).where(tables.customers.c.id == cid))
        if cust is None:
            raise NotFound(f"no customer {cid}", field="customer_id")
        cust["agreements"] = [_agreement(dict(r)) for r in c.execute(
            sa.select(tables.agreements).where(tables.agreements.c.customer_id == cid)).mappings()]
        cust["representatives"] = [dict(r) for r in c.execute(
            sa.select(tables.representatives).where(tables.representatives.c.customer_id == cid)).mappings()]
    return cust


def list_customers(desk) -> list[dict]:
    with desk.read() as c:
        ids = [r[0] for r in c.execute(sa.select(tables.customers.c.id).order_by(tables.customers.c.name))]
    return [get_customer(desk, i) for i in ids]


def _agreement(row: dict) -> dict:
    row["starts"], row["ends"] = row["starts"].isoformat(), row["ends"].isoformat()
    return row


def add_agreement(desk, customer_id: int, *, starts: date, ends: date, level: str = "standard") -> dict:
    get_customer(desk, customer_id)
    if ends < starts:
        raise Invalid("an agreement cannot end before it starts", field="ends")
    with desk.tx() as c:
        aid = c.execute(tables.agreements.insert().values(
            customer_id=customer_id, starts=starts, ends=ends, level=level)).inserted_primary_key[0]
        row = one(c, sa.select(tables.agreements).where(tables.agreements.c.id == aid))
    return _agreement(row)


def add_representative(desk, customer_id: int, *, name: str, email: str, phone: str | None = None) -> dict:
    get_customer(desk, customer_id)
    email = email.strip().lower()
    with desk.tx() as c:
        if one(c, sa.select(tables.representatives).where(tables.representatives.c.email == email)):
            raise Conflict(f"{email} is already a representative", field="email")
        rid = c.execute(tables.representatives.insert().values(
            customer_id=customer_id, name=name, email=email, phone=phone, active=True)).inserted_primary_key[0]
        return one(c, sa.select(tables.representatives).where(tables.representatives.c.id == rid))


def set_representative_active(desk, rep_id: int, active: bool) -> dict:
    with desk.tx() as c:
        n = c.execute(tables.representatives.update().where(tables.representatives.c.id == rep_id)
                      .values(active=active)).rowcount
        if not n:
            raise NotFound(f"no representative {rep_id}", field="rep_id")
        return one(c, sa.select(tables.representatives).where(tables.representatives.c.id == rep_id))


def representative(conn, email: str) -> dict | None:
    return one(conn, sa.select(tables.representatives).where(
        tables.representatives.c.email == email.strip().lower()))


def current_agreement(conn, customer_id: int, on: date) -> dict | None:
    a = tables.agreements
    return one(conn, sa.select(a).where(a.c.customer_id == customer_id, a.c.starts <= on, a.c.ends >= on)
               .order_by(a.c.ends.desc()))


def entitled(conn, email: str, at) -> tuple[dict | None, dict | None, str | None]:
    """(representative, customer, None) or (.., .., reason for refusal)."""
    on = at.astimezone(TZ).date()
    rep = representative(conn, email)
    if rep is None:
        return None, None, f"{email} is not a known representative of any customer"
    cust = one(conn, sa.select(tables.customers).where(tables.customers.c.id == rep["customer_id"]))
    if not rep["active"]:
        return rep, cust, f"{email} is no longer an active representative of {cust['name']}"
    if current_agreement(conn, cust["id"], on) is None:
        return rep, cust, f"{cust['name']} has no maintenance agreement in force on {on.isoformat()}"
    return rep, cust, None


def check_entitled(desk, *, channel: str, email: str, incident: int | None = None,
                   reply: bool = False, field: str = "inquirer_email") -> tuple[dict, dict]:
    """The representative and customer behind ``email``, or Forbidden (recorded;
    with ``reply`` the reason is also mailed back to the sender)."""
    now = desk.now()
    with desk.read() as c:
        rep, cust, reason = entitled(c, email, now)
    if reason is None:
        return rep, cust
    refuse(desk, channel=channel, who=email, reason=reason, incident=incident, reply=reply)
    raise Forbidden(f"support refused: {reason}", field=field,
                    hint="support is given only under a current maintenance agreement to a known representative")


def refuse(desk, *, channel: str, who: str | None, reason: str, incident: int | None = None,
           reply: bool = False, subject: str | None = None) -> None:
    now = desk.now()
    with desk.tx() as c:
        c.execute(tables.refusals.insert().values(
            at=iso(now), channel=channel, who=who, incident=incident, reason=reason))
        if reply and who:
            queue(c, now, who, subject or "Your support request was not accepted",
                  f"Your request was not accepted: {reason}.\n\n"
                  "Support is given only under a current maintenance agreement and to a\n"
                  "known representative of the customer. Please contact your account manager.\n")


def list_refusals(desk, limit: int = 200) -> list[dict]:
    r = tables.refusals
    with desk.read() as c:
        return [dict(x) for x in c.execute(sa.select(r).order_by(r.c.id.desc()).limit(limit)).mappings()]
