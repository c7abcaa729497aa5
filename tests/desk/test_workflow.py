"""Statuses, automatic close and reopen (DESK-04), priority lowering when the
customer misses the customer-response target (DESK-05), escalation,
supervisor requests and feedback (DESK-06), on a running desk whose clock is
moved through the --clock-file (and once through ``tether-desk jobs run --now``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import wait_for

from .process import START

WAITING = ["resolved_pending_confirmation", "customer_information_requested", "software_change_required"]


@pytest.fixture(scope="module")
def shared(desk_factory):
    d = desk_factory("--auto-close-days", "5", "--close-notice-days", "1")
    d.customer("Flow Inc", ["fay@flow.test"])
    d.customer("Other Co", ["otto@other.test"])
    return d


@pytest.fixture()
def desk(shared):
    """The module's desk with its clock back at the start; tests move it and
    look only at their own incidents (earlier ones may be touched by jobs)."""
    shared.set_clock(START)
    return shared


def _auto_close(desk, n):
    desk.run_jobs()
    inc = desk.incident(n)
    return inc["close_notice_at"] is not None, inc["status"] == "closed"


def _status(desk, n, status, code=200):
    r = desk.api.post(f"/api/incidents/{n}/status", json={"status": status})
    assert r.status_code == code, r.text
    return r.json()


@pytest.mark.req("DESK-04")
def test_every_status_can_be_set_and_a_closed_incident_reopened(desk):
    n = desk.open("fay@flow.test")["number"]
    for s in WAITING + ["open", "closed"]:
        assert _status(desk, n, s)["status"] == s
    assert _status(desk, n, "open", 409)["field"] == "status"  # closed: reopen first
    assert _status(desk, n, "bogus", 422)["field"] == "status"
    r = desk.api.post(f"/api/incidents/{n}/reopen")
    assert r.status_code == 200 and r.json()["status"] == "open"
    labels = [h["text"] for h in r.json()["history"] if h["kind"] == "status"]
    assert "Open -> Resolved Pending Confirmation" in labels[0]
    assert any(h["kind"] == "reopened" for h in r.json()["history"])


@pytest.mark.req("DESK-04")
@pytest.mark.parametrize("status", WAITING)
def test_waiting_status_closes_by_itself_after_notice(desk, status):
    n = desk.open("fay@flow.test", summary=f"waiting {status}")["number"]
    _status(desk, n, status)
    desk.set_clock("2027-01-08T10:00:00-06:00")  # 3 days: nothing yet
    assert _auto_close(desk, n) == (False, False)
    desk.set_clock("2027-01-09T10:00:01-06:00")  # 4 days: notice (1 day before)
    assert _auto_close(desk, n) == (True, False)
    notice = desk.incident_mail(n, "will close by itself on 2027-01-10T16:00:01+00:00")
    assert notice["To"] == "fay@flow.test"
    assert _auto_close(desk, n) == (True, False)  # idempotent: one notice
    assert desk.relay.count(lambda m: m["Subject"].startswith(f"Incident #{n}:")
                            and "will close by itself on" in m.get_content()) == 1
    desk.set_clock("2027-01-10T10:00:02-06:00")
    assert _auto_close(desk, n) == (True, True)
    inc = desk.incident(n)
    assert inc["status"] == "closed"
    kinds = [h["kind"] for h in inc["history"]]
    assert kinds.index("close_notice") < len(kinds) - 1 - kinds[::-1].index("status")
    desk.incident_mail(n, "closed automatically after 5 days")


@pytest.mark.req("DESK-04")
def test_late_job_run_never_closes_without_notice_and_cli_jobs_run(desk):
    n = desk.open("fay@flow.test", summary="late run")["number"]
    _status(desk, n, "resolved_pending_confirmation")
    args = [sys.executable, "-m", "tether.desk", "jobs", "run", "--data", str(desk.data), "--relay",
            f"127.0.0.1:{desk.relay.port}", "--auto-close-days", "5", "--close-notice-days", "1"]
    out = subprocess.run(args + ["--now", "2027-02-01T10:00-06:00"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["auto_close"]["notified"] >= 1
    assert desk.incident(n)["status"] == "resolved_pending_confirmation"
    desk.incident_mail(n, "will close by itself on 2027-02-02T16:00:00+00:00")
    out = subprocess.run(args + ["--now", "2027-02-02T10:00-06:00"], capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout)["auto_close"]["closed"] >= 1
    assert desk.incident(n)["status"] == "closed"
    bad = subprocess.run(args + ["--now", "yesterday"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not an ISO 8601" in bad.stderr


@pytest.mark.req("DESK-04")
def test_customer_reply_reopens_or_ends_the_wait(desk):
    n = desk.open("fay@flow.test", summary="reply reopens")["number"]
    _status(desk, n, "closed")
    desk.send_mail("fay@flow.test", f"Re: Incident #{n}: reply reopens", "It broke again.")
    desk.wait_incident(lambda i: i["number"] == n and i["status"] == "open")
    assert any(h["kind"] == "reopened" for h in desk.incident(n)["history"])


@pytest.mark.req("DESK-05", "DESK-03")
def test_missed_customer_response_lowers_priority_step_by_step(desk):
    n = desk.open("fay@flow.test", summary="unresponsive", severity=1)["number"]
    body = _status(desk, n, "customer_information_requested")
    assert body["sla"]["customer_response"]["due"] == "2027-01-05T16:30:00+00:00"
    desk.set_clock("2027-01-05T10:29:00-06:00")
    desk.run_jobs()
    assert desk.incident(n)["severity"] == 1
    desk.set_clock("2027-01-05T10:31:00-06:00")
    assert desk.run_jobs()["customer_response"] >= 1
    inc = desk.incident(n)
    assert inc["severity"] == 2
    lowered = [h for h in inc["history"] if h["kind"] == "priority_lowered"]
    assert lowered and lowered[0]["at"] == "2027-01-05T16:30:00+00:00" and "1 -> 2" in lowered[0]["text"]
    # the 24 business hours of severity 2 run from 10:30 Tue: 8.5 h Tue + 15.5 h Wed -> Wed 17:30 CST
    assert inc["sla"]["customer_response"]["due"] == "2027-01-06T23:30:00+00:00"
    desk.incident_mail(n, "severity 1 -> 2")
    desk.set_clock("2027-01-07T09:00:00-06:00")
    desk.run_jobs()
    inc = desk.incident(n)
    assert inc["severity"] == 3 and inc["sla"]["customer_response"]["due"] is None
    assert len([b for b in inc["breaches"] if b["data"]["target"] == "customer_response"]) == 2
    desk.set_clock("2027-03-01T09:00:00-06:00")
    desk.run_jobs()
    assert desk.incident(n)["severity"] == 3  # severity 3 has no customer-response target


@pytest.mark.req("DESK-05")
def test_customer_answer_in_time_keeps_priority(desk):
    n = desk.open("fay@flow.test", summary="responsive", severity=1)["number"]
    _status(desk, n, "customer_information_requested")
    desk.set_clock("2027-01-05T10:20:00-06:00")
    r = desk.public.post(f"/api/incidents/{n}/messages", json={"text": "Here it is.", "email": "fay@flow.test"})
    assert r.status_code == 200 and r.json()["status"] == "open"
    desk.set_clock("2027-01-05T12:00:00-06:00")
    desk.run_jobs()
    assert desk.incident(n)["severity"] == 1


@pytest.mark.req("DESK-02", "DESK-03")
def test_first_response_breach_is_recorded_and_shown(desk):
    desk.set_clock("2027-01-08T18:50:00-06:00")  # Friday 18:50: 10 business minutes left that day
    inc = desk.open("fay@flow.test", summary="friday evening", severity=1)
    assert inc["sla"]["first_response"]["due"] == "2027-01-11T08:20:00+00:00"  # Monday 02:20 CST
    desk.set_clock("2027-01-11T02:21:00-06:00")
    assert desk.run_jobs()["first_response"] >= 1
    got = desk.incident(inc["number"])
    assert got["sla"]["first_response"]["breached"] is True
    assert got["breaches"][0]["data"]["target"] == "first_response"
    page = desk.api.get("/incidents")
    assert page.status_code == 200 and "BREACHED" in page.text


@pytest.mark.req("DESK-06")
def test_escalation_to_a_product_support_engineer(desk):
    n = desk.open("fay@flow.test", summary="needs an engineer")["number"]
    r = desk.api.post(f"/api/incidents/{n}/escalate", json={"engineer": "erin", "reason": "kernel panic"})
    assert r.status_code == 200 and r.json()["escalated_to"] == "erin"
    assert any(h["kind"] == "escalated" and "erin" in h["text"] for h in r.json()["history"])
    desk.relay.find("erin@vendor.test", "escalated to you")
    bad = desk.api.post(f"/api/incidents/{n}/escalate", json={"engineer": "alice"})
    assert bad.status_code == 422 and bad.json()["field"] == "engineer"


@pytest.mark.req("DESK-06")
def test_supervisor_and_manager_requests_are_recorded(desk):
    n = desk.open("fay@flow.test", summary="unhappy")["number"]
    r = desk.public.post(f"/api/incidents/{n}/supervisor-request",
                         json={"role": "manager", "requested_by": "fay@flow.test", "note": "third time"})
    assert r.status_code == 200
    desk.relay.find("sam@vendor.test", "asks for a manager")
    r = desk.public.post(f"/api/incidents/{n}/supervisor-request",
                         json={"role": "supervisor", "requested_by": "otto@other.test"})
    assert r.status_code == 403 and r.json()["field"] == "requested_by"
    desk.send_mail("fay@flow.test", f"Incident #{n}", "I would like to speak to your supervisor please.")

    def requests():
        reqs = [h for h in desk.incident(n)["history"] if h["kind"] == "supervisor_request"]
        return reqs if len(reqs) == 2 else None

    reqs = wait_for(requests, 10, every=0.05, what="the supervisor request by mail")
    assert [h["data"]["role"] for h in reqs] == ["manager", "supervisor"]


@pytest.mark.req("DESK-06")
def test_survey_on_close_and_feedback(desk):
    n = desk.open("fay@flow.test", summary="survey")["number"]
    _status(desk, n, "closed")
    survey = desk.incident_mail(n, f"/incidents/{n}/feedback")
    assert "Rate this incident" in survey.get_content()
    r = desk.public.post(f"/api/incidents/{n}/feedback", json={"email": "fay@flow.test", "rating": 4,
                                                                "comment": "quick"})
    assert r.status_code == 201 and r.json()["feedback"][0]["rating"] == 4
    assert desk.public.post(f"/api/incidents/{n}/feedback",
                            json={"email": "otto@other.test", "rating": 1}).status_code == 403
    assert desk.public.post(f"/api/incidents/{n}/feedback",
                            json={"email": "fay@flow.test", "rating": 6}).json()["field"] == "rating"
    page = desk.public.post(f"/incidents/{n}/feedback", data={"email": "fay@flow.test", "rating": "5"})
    assert page.status_code == 200 and "Thank you" in page.text
    assert [f["rating"] for f in desk.incident(n)["feedback"]] == [4, 5]
    assert desk.api.get("/api/feedback/summary").json()["responses"] >= 2
