"""Hardware returns, RMA (DESK-08).

* Field-replaceable units (``disk``, ``power_supply``) exist only for models
  B300 and B400; every other model is replaced or repaired as a whole
  ``appliance``.
* Contact (name, email, phone), shipping address and serial are required; a
  VAT number is required when the shipment crosses the US border (country
  other than US).
* International ``repair_return``: the repaired unit is due back to the
  customer within four weeks of the desk receiving it (``repair_due``).
* ``replacement``: an international replacement does not ship before the
  customer's VAT consent is recorded. The defective unit is due back within
  two weeks of the replacement going live (``defective_due``); the
  ``rma_invoices`` job raises the invoice flag at list price when it is late.

Lifecycle: requested -> shipped -> live -> returned (replacement) and
requested -> received -> repaired (repair_return).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from tether.core.errors import Conflict, Invalid, NotFound

from . import tables
from .clock import from_iso, iso
from .context import one
from .incidents import event
from .mailout import queue
from .schemas import RmaIn

FRU_MODELS = ("B300", "B400")
DEFECTIVE_RETURN = timedelta(weeks=2)
INTERNATIONAL_REPAIR = timedelta(weeks=4)
HOME_COUNTRY = "US"
LIST_PRICE = {  # US dollars
    "disk": 450, "power_supply": 300,
    "appliance": {"B200": 6000, "B300": 9500, "B400": 14500},
}
_r = tables.rmas


def list_price(model: str, part: str) -> int:
    if part != "appliance":
        return LIST_PRICE[part]
    return LIST_PRICE["appliance"].get(model, 12000)


def create(desk, data: RmaIn, *, actor: str) -> dict:
    if data.part != "appliance" and data.model not in FRU_MODELS:
        raise Invalid(f"model {data.model} has no field-replaceable {data.part}; only "
                      f"{' and '.join(FRU_MODELS)} do. Return the whole appliance (part=appliance)",
                      field="part")
    country = data.country.upper()
    international = country != HOME_COUNTRY
    if international and not data.vat_number:
        raise Invalid("a VAT number is required for a shipment outside the US", field="vat_number")
    now = desk.now()
    with desk.tx() as c:
        if not one(c, sa.select(tables.customers).where(tables.customers.c.id == data.customer_id)):
            raise NotFound(f"no customer {data.customer_id}", field="customer_id")
        if data.incident is not None and not one(c, sa.select(tables.incidents.c.number)
                                                  .where(tables.incidents.c.number == data.incident)):
            raise NotFound(f"there is no incident {data.incident}", field="incident")
        rid = c.execute(_r.insert().values(
            incident=data.incident, customer_id=data.customer_id, model=data.model, serial=data.serial,
            part=data.part, service=data.service, contact=data.contact.model_dump(),
            shipping_address=data.shipping_address, country=country, vat_number=data.vat_number,
            vat_consent=data.vat_consent, status="requested", created_at=iso(now))).inserted_primary_key[0]
        if data.incident is not None:
            event(c, data.incident, now, actor, "rma", f"RMA {rid}: {data.service} of {data.part} "
                  f"({data.model} {data.serial})", {"rma": rid})
    return get(desk, rid)


def get(desk, rid: int) -> dict:
    with desk.read() as c:
        row = one(c, sa.select(_r).where(_r.c.id == rid))
    if row is None:
        raise NotFound(f"there is no RMA {rid}", field="rma")
    row["international"] = row["country"] != HOME_COUNTRY
    row["list_price"] = list_price(row["model"], row["part"])
    return row


def list_all(desk) -> list[dict]:
    with desk.read() as c:
        ids = [r[0] for r in c.execute(sa.select(_r.c.id).order_by(_r.c.id))]
    return [get(desk, i) for i in ids]


def _when(desk, at: datetime | None) -> datetime:
    return at or desk.now()


def _set(desk, rid: int, **values) -> dict:
    with desk.tx() as c:
        c.execute(_r.update().where(_r.c.id == rid).values(**values))
    return get(desk, rid)


def consent_vat(desk, rid: int) -> dict:
    get(desk, rid)
    return _set(desk, rid, vat_consent=True)


def ship(desk, rid: int, at: datetime | None = None) -> dict:
    r = get(desk, rid)
    if r["service"] != "replacement" or r["status"] != "requested":
        raise Conflict(f"RMA {rid} ({r['service']}, {r['status']}) cannot ship a replacement", field="status")
    if r["international"] and not r["vat_consent"]:
        raise Conflict(f"RMA {rid}: an international replacement needs the customer's VAT consent before "
                       "shipping", field="vat_consent", hint=f"POST /api/rmas/{rid}/vat-consent")
    return _set(desk, rid, status="shipped", shipped_at=iso(_when(desk, at)))


def live(desk, rid: int, at: datetime | None = None) -> dict:
    r = get(desk, rid)
    if r["status"] != "shipped":
        raise Conflict(f"RMA {rid} is {r['status']}, not shipped", field="status")
    t = _when(desk, at)
    return _set(desk, rid, status="live", live_at=iso(t), defective_due=iso(t + DEFECTIVE_RETURN))


def received(desk, rid: int, at: datetime | None = None) -> dict:
    """The defective unit (replacement) or the unit to repair (repair_return) arrived."""
    r = get(desk, rid)
    t = _when(desk, at)
    if r["service"] == "replacement":
        if r["status"] != "live":
            raise Conflict(f"RMA {rid} is {r['status']}; the replacement is not live yet", field="status")
        late = t > from_iso(r["defective_due"])
        values = {"status": "returned", "defective_received_at": iso(t)}
        if late:
            values.update(invoice=True, invoice_amount=r["list_price"])
        return _set(desk, rid, **values)
    if r["status"] != "requested":
        raise Conflict(f"RMA {rid} is {r['status']}", field="status")
    values = {"status": "received", "defective_received_at": iso(t)}
    if r["international"]:
        values["repair_due"] = iso(t + INTERNATIONAL_REPAIR)
    return _set(desk, rid, **values)


def repaired(desk, rid: int, at: datetime | None = None) -> dict:
    r = get(desk, rid)
    if r["service"] != "repair_return" or r["status"] != "received":
        raise Conflict(f"RMA {rid} is not a received repair", field="status")
    return _set(desk, rid, status="repaired", shipped_at=iso(_when(desk, at)))


def invoice_overdue(desk, now) -> int:
    """Raise the invoice flag on replacements whose defective unit is late."""
    n = 0
    with desk.tx() as c:
        rows = c.execute(sa.select(_r).where(_r.c.status == "live", _r.c.invoice.is_(False))).mappings().all()
        for r in rows:
            if now <= from_iso(r["defective_due"]):
                continue
            amount = list_price(r["model"], r["part"])
            c.execute(_r.update().where(_r.c.id == r["id"]).values(invoice=True, invoice_amount=amount))
            queue(c, now, r["contact"]["email"], f"RMA {r['id']}: defective unit overdue",
                  f"The defective {r['part']} (serial {r['serial']}) was due back on {r['defective_due']}.\n"
                  f"It will be invoiced at list price: {amount} USD.\n")
            if r["incident"]:
                event(c, r["incident"], now, "desk", "rma", f"RMA {r['id']}: defective unit overdue; "
                      f"invoiced at list price {amount} USD", {"rma": r["id"], "invoice": amount})
            n += 1
    return n
