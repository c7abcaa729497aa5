"""Hardware returns (DESK-08) through the desk's API."""

from __future__ import annotations

import pytest

CONTACT = {"name": "Rita R", "email": "rita@rma.test", "phone": "+1 555 0100"}


@pytest.fixture(scope="module")
def desk(desk_factory):
    d = desk_factory()
    d.cid = d.customer("Rma Co", ["rita@rma.test"])["id"]
    return d


def _rma(desk, **kw):
    body = {"customer_id": desk.cid, "model": "B300", "serial": "SN-1", "part": "disk", "contact": CONTACT,
            "shipping_address": "1 Main St, Springfield", "country": "US", **kw}
    return desk.api.post("/api/rmas", json=body)


@pytest.mark.req("DESK-08")
@pytest.mark.parametrize("model", ["B300", "B400", "b400"])
@pytest.mark.parametrize("part", ["disk", "power_supply"])
def test_field_replaceable_units_for_b300_and_b400(desk, model, part):
    r = _rma(desk, model=model, part=part)
    assert r.status_code == 201, r.text
    assert r.json()["model"] == model.upper() and r.json()["list_price"] in (450, 300)


@pytest.mark.req("DESK-08")
@pytest.mark.parametrize("model", ["B200", "B100", "B500"])
def test_other_models_return_the_whole_appliance(desk, model):
    before = len(desk.api.get("/api/rmas").json())
    r = _rma(desk, model=model, part="disk")
    assert r.status_code == 422 and r.json()["field"] == "part" and "whole appliance" in r.json()["message"]
    assert len(desk.api.get("/api/rmas").json()) == before
    assert _rma(desk, model=model, part="appliance").status_code == 201


@pytest.mark.req("DESK-08")
@pytest.mark.parametrize("change, field", [
    ({"contact": {"name": "R", "email": "rita@rma.test"}}, "contact.phone"),
    ({"contact": {**CONTACT, "email": "nope"}}, "contact.email"),
    ({"shipping_address": ""}, "shipping_address"),
    ({"serial": ""}, "serial"),
    ({"country": "DE"}, "vat_number"),  # international: VAT number required
    ({"model": "X9"}, "model"),
])
def test_required_rma_fields(desk, change, field):
    r = _rma(desk, **change)
    assert r.status_code == 422 and r.json()["field"] == field, r.text


@pytest.mark.req("DESK-08")
def test_international_replacement_needs_vat_consent_and_defective_unit_back_in_two_weeks(desk):
    rma = _rma(desk, model="B200", part="appliance", country="DE", vat_number="DE123456789").json()
    assert rma["international"] and rma["service"] == "replacement"
    r = desk.api.post(f"/api/rmas/{rma['id']}/ship")
    assert r.status_code == 409 and r.json()["field"] == "vat_consent"
    assert desk.api.post(f"/api/rmas/{rma['id']}/vat-consent").json()["vat_consent"] is True
    assert desk.api.post(f"/api/rmas/{rma['id']}/ship").json()["status"] == "shipped"
    live = desk.api.post(f"/api/rmas/{rma['id']}/live", json={"at": "2027-01-05T12:00:00-06:00"}).json()
    assert live["defective_due"] == "2027-01-19T18:00:00+00:00"
    try:
        desk.set_clock("2027-01-19T11:59:00-06:00")
        desk.run_jobs()
        assert desk.api.get(f"/api/rmas/{rma['id']}").json()["invoice"] is False
        desk.set_clock("2027-01-19T12:01:00-06:00")
        desk.run_jobs()
    finally:
        desk.set_clock("2027-01-05T10:00:00-06:00")
    got = desk.api.get(f"/api/rmas/{rma['id']}").json()
    assert got["invoice"] is True and got["invoice_amount"] == 6000
    desk.relay.find("rita@rma.test", "invoiced at list price: 6000 USD")


@pytest.mark.req("DESK-08")
def test_defective_unit_returned_in_time_is_not_invoiced(desk):
    rma = _rma(desk, model="B400", part="power_supply").json()
    assert not rma["international"]
    desk.api.post(f"/api/rmas/{rma['id']}/ship")  # domestic: no VAT consent needed
    desk.api.post(f"/api/rmas/{rma['id']}/live", json={"at": "2027-01-05T09:00:00-06:00"})
    back = desk.api.post(f"/api/rmas/{rma['id']}/received", json={"at": "2027-01-12T09:00:00-06:00"}).json()
    assert back["status"] == "returned" and back["invoice"] is False
    late = _rma(desk, model="B400", part="disk").json()
    desk.api.post(f"/api/rmas/{late['id']}/ship")
    desk.api.post(f"/api/rmas/{late['id']}/live", json={"at": "2027-01-05T09:00:00-06:00"})
    back = desk.api.post(f"/api/rmas/{late['id']}/received", json={"at": "2027-01-20T09:00:00-06:00"}).json()
    assert back["invoice"] is True and back["invoice_amount"] == 450


@pytest.mark.req("DESK-08")
def test_international_repair_and_return_within_four_weeks(desk):
    rma = _rma(desk, model="B200", part="appliance", service="repair_return", country="GB",
               vat_number="GB999999973").json()
    assert desk.api.post(f"/api/rmas/{rma['id']}/ship").status_code == 409  # nothing to ship first
    got = desk.api.post(f"/api/rmas/{rma['id']}/received", json={"at": "2027-02-01T10:00:00+00:00"}).json()
    assert got["status"] == "received" and got["repair_due"] == "2027-03-01T10:00:00+00:00"
    assert desk.api.post(f"/api/rmas/{rma['id']}/repaired").json()["status"] == "repaired"
    assert desk.api.post(f"/api/rmas/{rma['id']}/teleport").json()["field"] == "step"


@pytest.mark.req("DESK-08", "ROB-02")
@pytest.mark.parametrize("at, says", [
    ("0001-01-01T00:00+14:00", "out of range"),  # before the first instant a datetime holds, in UTC
    ("9999-12-31T00:00+00:00", "out of range"),  # two weeks later would be past the last one
    ("2027-01-05T10:00", "no UTC offset"),
    ("soon", "not an ISO 8601"),
    (1800000000, "ISO 8601"),
])
def test_a_step_time_out_of_range_or_without_offset_is_refused(desk, at, says):
    rid = _rma(desk).json()["id"]
    r = desk.api.post(f"/api/rmas/{rid}/ship", json={"at": at})
    assert r.status_code == 422 and r.json()["field"] == "at" and says in r.json()["message"], r.text
    assert desk.api.get(f"/api/rmas/{rid}").json()["status"] == "requested"
    r = desk.api.post(f"/api/rmas/{rid}/ship", json={"at": "2027-01-06T09:00-06:00"})
    assert r.status_code == 200 and r.json()["shipped_at"] == "2027-01-06T15:00:00+00:00", r.text
    assert desk.api.post(f"/api/rmas/{rid}/fly").status_code == 422  # no such step


@pytest.mark.req("DESK-08", "ROB-02")
@pytest.mark.parametrize("change, field", [({"serial": "S" * 65}, "serial"), ({"vat_number": "V" * 33}, "vat_number")])
def test_rma_input_longer_than_its_column_is_refused(desk, change, field):
    r = _rma(desk, **change)
    assert r.status_code == 422 and r.json()["field"] == field, r.text
