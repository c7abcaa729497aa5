"""Incidents through the real HTTP API and web form of a running desk:
fields and attachments (DESK-01), entitlement (DESK-07), severity targets and
business-time due dates (DESK-02, DESK-03), bad input."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest

ACME = ["bob@acme.test", "carol@acme.test"]


@pytest.fixture(scope="module")
def desk(desk_factory):
    d = desk_factory("--max-attachment-bytes", "4096")
    d.customer("Acme", ACME)
    d.customer("Lapsed Ltd", ["lou@lapsed.test"], starts="2024-01-01", ends="2026-12-31")
    return d


def _count(desk) -> int:
    return len(desk.api.get("/api/incidents").json())


@pytest.mark.req("DESK-01")
def test_api_incident_records_every_field_and_attachment(desk):
    log = b"2027-01-05 ERROR sync failed\n" * 20
    body = {
        "summary": "Failover did not complete", "inquirer_email": "Bob@Acme.test", "inquirer_name": "Bob B",
        "product_version": "1.1.0", "severity": 2, "error_messages": "E1042 peer unreachable",
        "reproduction_steps": "1. pull the cable\n2. wait", "prior_actions": "rebooted the backup",
        "changes_made": "new firewall rule", "duration": "since Monday", "os": "Windows Server 2022",
        "server_roles": "primary, jumpoint",
        "attachments": [{"filename": "../../sync.log", "content_base64": base64.b64encode(log).decode(),
                         "content_type": "text/plain"}],
    }
    r = desk.public.post("/api/incidents", json=body)
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    inc = desk.incident(number)
    for k in ("summary", "product_version", "severity", "error_messages", "reproduction_steps",
              "prior_actions", "changes_made", "duration", "os", "server_roles"):
        assert inc[k] == body[k]
    assert inc["inquirer_email"] == "bob@acme.test" and inc["organisation"] == "Acme"
    assert inc["status"] == "open" and inc["source"] == "api"
    [att] = inc["attachments"]
    assert att["filename"] == "sync.log" and att["size"] == len(log)
    got = desk.api.get(f"/api/incidents/{number}/attachments/{att['id']}")
    assert got.status_code == 200 and got.content == log
    assert desk.open("carol@acme.test")["number"] == number + 1  # numbers are sequential


@pytest.mark.req("DESK-01")
def test_web_form_opens_an_incident_with_attachments(desk):
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    r = desk.public.post("/new", data={"summary": "Console shows blank page", "inquirer_email": "carol@acme.test",
                                       "product_version": "1.1", "severity": "3", "os": "macOS 14"},
                         files=[("attachments", ("screen.png", png, "image/png"))])
    assert r.status_code == 201, r.text
    assert "Incident #" in r.text
    row = desk.wait_incident(lambda i: i["summary"] == "Console shows blank page")[0]
    inc = desk.incident(row["number"])
    assert inc["source"] == "web" and inc["os"] == "macOS 14" and inc["product_version"] == "1.1"
    assert [a["filename"] for a in inc["attachments"]] == ["screen.png"]


@pytest.mark.req("DESK-01")
def test_oversize_attachment_is_refused_and_nothing_stored(desk):
    before = _count(desk)
    big = base64.b64encode(bytes(5000)).decode()
    r = desk.public.post("/api/incidents", json={"summary": "x", "inquirer_email": "bob@acme.test",
                                                 "product_version": "1.1.0",
                                                 "attachments": [{"filename": "core.dmp", "content_base64": big}]})
    assert r.status_code == 422
    assert r.json()["field"] == "attachments.0" and "4096" in r.json()["message"]
    r = desk.public.post("/new", data={"summary": "y", "inquirer_email": "bob@acme.test", "product_version": "1.1"},
                         files=[("attachments", ("big.bin", bytes(5000), "application/octet-stream"))])
    assert r.status_code == 422 and "4096" in r.text
    assert _count(desk) == before


@pytest.mark.parametrize("change, field", [
    ({"inquirer_email": "not-an-address"}, "inquirer_email"),
    ({"product_version": "1.x"}, "product_version"),
    ({"product_version": "9.9.0"}, "product_version"),  # no such release
    ({"product_version": None}, "product_version"),
    ({"severity": 4}, "severity"),
    ({"summary": "   "}, "summary"),
    ({"colour": "red"}, "colour"),
    ({"attachments": [{"filename": "a", "content_base64": "***"}]}, "attachments.0.content_base64"),
])
def test_bad_input_names_the_field_and_stores_nothing(desk, change, field):
    before = _count(desk)
    body = {"summary": "ok", "inquirer_email": "bob@acme.test", "product_version": "1.1.0", **change}
    r = desk.public.post("/api/incidents", json=body)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["error"] == "invalid" and err["field"] == field and err["message"]
    assert _count(desk) == before


@pytest.mark.req("DESK-07")
@pytest.mark.parametrize("email, reason", [
    ("mallory@elsewhere.test", "not a known representative"),
    ("lou@lapsed.test", "no maintenance agreement in force on 2027-01-05"),
])
def test_support_refused_without_agreement_or_representative(desk, email, reason):
    before = _count(desk)
    r = desk.public.post("/api/incidents", json={"summary": "help", "inquirer_email": email,
                                                 "product_version": "1.1.0"})
    assert r.status_code == 403
    assert reason in r.json()["message"] and r.json()["field"] == "inquirer_email"
    assert _count(desk) == before
    refusals = desk.api.get("/api/refusals").json()
    assert any(x["who"] == email and reason in x["reason"] and x["channel"] == "api" for x in refusals)
    page = desk.public.post("/new", data={"summary": "help", "inquirer_email": email, "product_version": "1.1"})
    assert page.status_code == 403 and reason in page.text
    assert any(x["who"] == email and x["channel"] == "web" for x in desk.api.get("/api/refusals").json())


@pytest.mark.req("DESK-07")
def test_deactivated_representative_is_refused(desk):
    cust = desk.customer("Brief Inc", ["bea@brief.test"])
    desk.open("bea@brief.test")
    rep = cust["representatives"][0]
    assert desk.api.post(f"/api/representatives/{rep['id']}/deactivate").status_code == 200
    r = desk.public.post("/api/incidents", json={"summary": "again", "inquirer_email": "bea@brief.test",
                                                 "product_version": "1.1.0"})
    assert r.status_code == 403 and "no longer an active representative" in r.json()["message"]


@pytest.mark.req("DESK-02", "DESK-03")
@pytest.mark.parametrize("severity, due", [
    (1, "2027-01-05T16:30:00+00:00"),  # 10:00 CST + 30 min
    (2, "2027-01-06T23:00:00+00:00"),  # 24 business hours: 9 h Tue + 15 h Wed -> Wed 17:00 CST
    (3, "2027-01-06T23:00:00+00:00"),
])
def test_first_response_targets_by_severity_in_business_time(desk, severity, due):
    inc = desk.open("bob@acme.test", severity=severity)
    fr = inc["sla"]["first_response"]
    assert fr["due"] == due and fr["breached"] is False
    assert inc["sla"]["clock_start"] == "2027-01-05T16:00:00+00:00"


@pytest.mark.req("DESK-02")
def test_severity_change_moves_the_target(desk):
    inc = desk.open("bob@acme.test", severity=3)
    n = inc["number"]
    r = desk.api.post(f"/api/incidents/{n}/severity", json={"severity": 1, "reason": "now production down"})
    assert r.status_code == 200
    body = r.json()
    assert body["severity"] == 1 and body["sla"]["first_response"]["due"] == "2027-01-05T16:30:00+00:00"
    assert any(h["kind"] == "severity" and "3 -> 1" in h["text"] for h in body["history"])
    assert desk.api.post(f"/api/incidents/{n}/severity", json={"severity": 0}).json()["field"] == "severity"


@pytest.mark.req("DESK-02", "DESK-03")
def test_first_response_met_by_a_staff_reply(desk):
    inc = desk.open("carol@acme.test", severity=1)
    r = desk.api.post(f"/api/incidents/{inc['number']}/messages", json={"text": "Looking at it now."})
    assert r.status_code == 200
    fr = r.json()["sla"]["first_response"]
    assert fr["met_at"] == "2027-01-05T16:00:00+00:00" and fr["breached"] is False
    desk.relay.find("carol@acme.test", "Looking at it now.")


@pytest.mark.req("DESK-03", "DESK-02")
@pytest.mark.parametrize("arrival, clock_start, due", [
    # Saturday -> Monday 02:00 CST
    ("2027-01-09T12:00:00-06:00", "2027-01-11T08:00:00+00:00", "2027-01-11T08:30:00+00:00"),
    # exactly 19:00 is after hours; 01:59 is before hours
    ("2027-01-05T19:00:00-06:00", "2027-01-06T08:00:00+00:00", "2027-01-06T08:30:00+00:00"),
    ("2027-01-06T01:59:00-06:00", "2027-01-06T08:00:00+00:00", "2027-01-06T08:30:00+00:00"),
    # Christmas Eve 2027 (Fri), Christmas observed Mon 27 -> Tue 28 Dec 02:00 CST
    ("2027-12-24T09:00:00-06:00", "2027-12-28T08:00:00+00:00", "2027-12-28T08:30:00+00:00"),
    # Thursday 18:45 before Good Friday 2027: 15 min Thu, 15 min Mon 29 Mar (CDT)
    ("2027-03-25T18:45:00-05:00", "2027-03-25T23:45:00+00:00", "2027-03-29T07:15:00+00:00"),
    # Friday before the November DST change (CDT) -> Monday 02:00 CST
    ("2027-11-05T20:00:00-05:00", "2027-11-08T08:00:00+00:00", "2027-11-08T08:30:00+00:00"),
])
def test_arrival_outside_business_hours_starts_the_clock_at_the_next_opening(desk, arrival, clock_start, due):
    desk.set_clock(arrival)
    try:
        inc = desk.open("bob@acme.test", summary=f"arrived {arrival}", severity=1)
    finally:
        desk.set_clock("2027-01-05T10:00:00-06:00")
    assert datetime.fromisoformat(inc["received_at"]) == datetime.fromisoformat(arrival)
    assert inc["sla"]["clock_start"] == clock_start
    assert inc["sla"]["first_response"]["due"] == due


@pytest.mark.req("DESK-01", "ROB-02")
@pytest.mark.parametrize("change, field", [
    ({"inquirer_name": "n" * 201}, "inquirer_name"),  # longer than the column that stores it
    ({"os": "o" * 201}, "os"),
    ({"attachments": [{"filename": "a", "content_base64": "aGk=", "content_type": "not a type"}]},
     "attachments.0.content_type"),
])
def test_input_longer_than_its_column_or_no_media_type_is_refused(desk, change, field):
    before = _count(desk)
    body = {"summary": "ok", "inquirer_email": "bob@acme.test", "product_version": "1.1.0", **change}
    r = desk.public.post("/api/incidents", json=body)
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert _count(desk) == before


@pytest.mark.req("DESK-01")
def test_an_attachment_is_served_with_its_media_type_and_a_body_that_is_no_json_is_named(desk):
    inc = desk.open("bob@acme.test", attachments=[{"filename": "page.html", "content_base64": "PGI+aGk8L2I+",
                                                   "content_type": "Text/HTML; charset=utf-8"}])
    [att] = inc["attachments"]
    assert att["content_type"] == "text/html"
    got = desk.api.get(f"/api/incidents/{inc['number']}/attachments/{att['id']}")
    assert got.headers["content-type"].startswith("text/html")
    assert got.headers["content-disposition"] == 'attachment; filename="page.html"'
    r = desk.public.post("/api/incidents", content=b'{"summary": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] is None, r.text
    assert r.json()["message"].startswith("the body is not valid JSON")


@pytest.mark.req("DESK-04")
def test_a_staff_reply_that_would_reopen_a_closed_incident_is_refused_and_not_stored(desk):
    n = desk.open("bob@acme.test")["number"]
    assert desk.api.post(f"/api/incidents/{n}/status", json={"status": "closed"}).status_code == 200
    before = len(desk.incident(n)["history"])
    r = desk.api.post(f"/api/incidents/{n}/messages", json={"text": "back to work", "status": "open"})
    assert r.status_code == 409 and r.json()["field"] == "status", r.text
    assert len(desk.incident(n)["history"]) == before  # the reply was not stored either
    assert desk.api.post(f"/api/incidents/{n}/messages", json={"text": "noted"}).status_code == 200
