"""Mail in and out over real SMTP on loopback: mail into the desk's own
listener (smtplib), the desk's notifications out through a relay (aiosmtpd).
Threading by subject (DESK-01) and refusals by mail (DESK-07)."""

from __future__ import annotations

import pytest

from tether.desk.mailin import thread_number
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def desk(desk_factory):
    d = desk_factory()
    d.customer("Mailco", ["mia@mailco.test", "max@mailco.test"])
    d.customer("Other Corp", ["oli@other.test"])
    return d


@pytest.mark.req("DESK-01")
def test_new_mail_opens_an_incident_and_is_acknowledged(desk):
    desk.send_mail("Mia <mia@mailco.test>", "Backups fail every night",
                   "Version: 1.0.1\nSeverity: 2\nOS: Windows Server 2019\n\nThe 02:00 backup stops at 40%.",
                   {"backup.log": b"ERROR disk full\n"})
    [row] = desk.wait_incident(lambda i: i["summary"] == "Backups fail every night")
    inc = desk.incident(row["number"])
    assert inc["source"] == "mail" and inc["product_version"] == "1.0.1" and inc["severity"] == 2
    assert inc["os"] == "Windows Server 2019" and "stops at 40%" in inc["description"]
    assert [a["filename"] for a in inc["attachments"]] == ["backup.log"]
    ack = desk.relay.find("mia@mailco.test", f"Incident #{inc['number']}: Backups fail every night")
    assert ack["Subject"].startswith(f"Incident #{inc['number']}:")


@pytest.mark.req("DESK-01")
@pytest.mark.parametrize("subject", ["Incident #{n}: more", "RE: Incident #{n}", "Fwd: Incident# {n} log",
                                     "Re: Fwd: RE: incident #{n}", "AW: Incident #{n}"])
def test_reply_threads_onto_the_incident_with_attachments(desk, subject):
    n = desk.open("max@mailco.test", summary="threading")["number"]
    desk.send_mail("max@mailco.test", subject.format(n=n), f"extra info for {subject}",
                   {"shot.png": b"\x89PNG fake"})

    def threaded():
        inc = desk.incident(n)
        return inc if any(h["kind"] == "customer_message" and subject in h["text"] for h in inc["history"]) else None

    inc = wait_for(threaded, 10, every=0.05,
                   what=lambda: f"the mail in incident {n}'s history; history: {desk.incident(n)['history']}")
    assert [a["filename"] for a in inc["attachments"]] == ["shot.png"]


@pytest.mark.req("DESK-01")
def test_staff_reply_goes_out_and_the_customer_answer_comes_back(desk):
    n = desk.open("mia@mailco.test", summary="round trip", severity=2)["number"]
    desk.api.post(f"/api/incidents/{n}/messages", json={"text": "Please send the sync log.",
                                                         "status": "customer_information_requested"})
    out = desk.relay.find("mia@mailco.test", "Please send the sync log.")
    desk.send_mail("mia@mailco.test", f"Re: {out['Subject']}", "Attached.", {"sync.log": b"log"})
    desk.wait_incident(lambda i: i["number"] == n and i["status"] == "open")
    inc = desk.incident(n)
    assert inc["sla"]["customer_response"] is None
    assert "sync.log" in [a["filename"] for a in inc["attachments"]]


@pytest.mark.req("DESK-01", "DESK-02")
def test_staff_mail_counts_as_first_response(desk):
    n = desk.open("max@mailco.test", summary="staff by mail", severity=1)["number"]
    desk.send_mail("erin@vendor.test", f"Incident #{n}", "We are on it.")
    desk.relay.find("max@mailco.test", "We are on it.")
    assert desk.incident(n)["sla"]["first_response"]["met_at"] is not None


@pytest.mark.req("DESK-07")
def test_mail_from_a_stranger_is_refused_with_the_reason(desk):
    desk.send_mail("eve@nowhere.test", "Please help", "I am not a customer.")
    reply = desk.relay.find("eve@nowhere.test", "not a known representative")
    assert "maintenance agreement" in reply.get_content()
    assert any(r["who"] == "eve@nowhere.test" and r["channel"] == "mail"
               for r in desk.api.get("/api/refusals").json())
    assert not [i for i in desk.api.get("/api/incidents").json() if i["summary"] == "Please help"]


@pytest.mark.req("DESK-07")
def test_another_customers_representative_cannot_thread_onto_an_incident(desk):
    n = desk.open("mia@mailco.test", summary="private")["number"]
    desk.send_mail("oli@other.test", f"Incident #{n}", "let me in")
    desk.relay.find("oli@other.test", "does not represent Mailco")
    assert not [h for h in desk.incident(n)["history"] if h["kind"] == "customer_message"]


@pytest.mark.req("DESK-01")
def test_mail_for_an_unknown_incident_number_is_answered(desk):
    desk.send_mail("mia@mailco.test", "Re: Incident #99999", "hello?")
    desk.relay.find("mia@mailco.test", "there is no incident 99999")


@pytest.mark.parametrize("subject, n", [
    ("Incident #12", 12), ("Incident# 12: x", 12), ("RE: Incident #7", 7), ("Fwd: Re: incident #3", 3),
    ("re:fw: Incident #44 text", 44), ("[Incident #5] hi", 5), ("About Incident #12", None),
    ("Incident 12", None), ("Incident #", None), ("", None),
])
def test_subject_parsing(subject, n):
    assert thread_number(subject) == n
