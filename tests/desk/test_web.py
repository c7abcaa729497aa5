"""Staff pages, sessions and CSRF, OpenAPI, and the staff CLI of a running desk."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest

from .process import PASSWORD


@pytest.fixture(scope="module")
def desk(desk_factory):
    d = desk_factory()
    d.customer("Web Co", ["wes@web.test"])
    return d


@pytest.fixture()
def browser(desk):
    with httpx.Client(base_url=desk.url, timeout=15) as b:
        r = b.post("/login", data={"username": "alice", "password": PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/incidents"
        yield b


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@pytest.mark.req("DESK-02", "DESK-03")
def test_incident_page_shows_due_times_and_acts_with_csrf(desk, browser):
    n = desk.open("wes@web.test", summary="page test", severity=1)["number"]
    listing = browser.get("/incidents")
    assert "page test" in listing.text and "2027-01-05T16:30:00+00:00" in listing.text
    page = browser.get(f"/incidents/{n}")
    assert page.status_code == 200 and "First response due" in page.text and "Test clock in use" in page.text
    no_csrf = browser.post(f"/incidents/{n}/severity", data={"severity": "2"})
    assert no_csrf.status_code == 403 and desk.incident(n)["severity"] == 1
    for bad in ("two", "9", ""):  # a clear error page, never a 500
        r = browser.post(f"/incidents/{n}/severity", data={"severity": bad, "csrf": _csrf(page.text)})
        assert r.status_code == 422 and "severity must be 1, 2 or 3" in r.text and desk.incident(n)["severity"] == 1
    ok = browser.post(f"/incidents/{n}/severity", data={"severity": "2", "csrf": _csrf(page.text)})
    assert ok.status_code == 303 and desk.incident(n)["severity"] == 2
    assert "2027-01-06T23:00:00+00:00" in browser.get(f"/incidents/{n}").text  # 24 business hours


@pytest.mark.req("DESK-04", "DESK-06")
def test_staff_pages_change_status_escalate_and_reopen(desk, browser):
    n = desk.open("wes@web.test", summary="page flow")["number"]
    csrf = _csrf(browser.get(f"/incidents/{n}").text)
    assert browser.post(f"/incidents/{n}/escalate", data={"engineer": "erin", "csrf": csrf}).status_code == 303
    assert browser.post(f"/incidents/{n}/status", data={"status": "closed", "csrf": csrf}).status_code == 303
    assert desk.incident(n)["status"] == "closed" and desk.incident(n)["escalated_to"] == "erin"
    assert browser.post(f"/incidents/{n}/reopen", data={"csrf": csrf}).status_code == 303
    assert desk.incident(n)["status"] == "open"


def test_cookie_session_needs_csrf_header_for_api_changes(desk, browser):
    n = desk.open("wes@web.test", summary="api csrf")["number"]
    r = browser.post(f"/api/incidents/{n}/status", json={"status": "closed"})
    assert r.status_code == 403
    csrf = browser.get("/api/me").json()["csrf_token"]
    r = browser.post(f"/api/incidents/{n}/status", json={"status": "closed"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200


def test_login_failures_and_anonymous_access(desk):
    r = desk.public.post("/api/login", json={"username": "alice", "password": "wrong-password"})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert desk.public.get("/api/incidents").status_code == 401
    assert desk.public.get("/incidents").status_code == 303
    page = desk.public.post("/login", data={"username": "alice", "password": "nope"})
    assert page.status_code == 401 and "wrong username or password" in page.text


def test_openapi_is_published(desk):
    spec = desk.public.get("/api/openapi.json").json()
    for path in ("/api/incidents", "/api/appliance/incidents", "/api/rmas", "/api/updates/appliances/{name}",
                 "/api/jobs/run", "/api/releases"):
        assert path in spec["paths"], path
    assert "/new" not in spec["paths"]


def test_staff_add_cli(desk, tmp_path):
    env = {**os.environ, "TETHER_DESK_PASSWORD": "another-pass-1"}
    cmd = [sys.executable, "-m", "tether.desk", "staff", "add", "pat", "--email", "pat@vendor.test",
           "--role", "engineer", "--data", str(desk.data)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert desk.public.post("/api/login", json={"username": "pat", "password": "another-pass-1"}).json()["role"] \
        == "engineer"
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 5 and "exists already" in again.stderr
    short = subprocess.run(cmd[:5] + ["kim", "--email", "kim@vendor.test"] + cmd[8:], capture_output=True, text=True,
                           env={**env, "TETHER_DESK_PASSWORD": "short"}, timeout=60)
    assert short.returncode == 2 and "at least 8" in short.stderr
