"""The API contract over HTTPS (issue 19 item 10): a 405 names every method
its path answers, JSON booleans are only true/false, and the HTML login's 429
carries the same Retry-After as the JSON API's."""

from __future__ import annotations

import re

import pytest

from tests.helpers import NEW_SITE_PASSWORD, ok


def _allow(r) -> set[str]:
    return {m.strip() for m in r.headers["allow"].split(",")}


@pytest.mark.req("ROB-02")
def test_a_405_names_every_method_of_its_path(ready_site):
    a, c, ah, sh = ready_site
    # GET, POST, PUT, DELETE of one path are separate routes: each 405 lists them all
    r = c.patch("/api/config/jumpoints/x", headers=sh, json={})
    assert r.status_code == 405, r.text
    assert {"GET", "PUT", "DELETE"} <= _allow(r), r.headers["allow"]
    assert "PATCH" not in _allow(r)
    r = c.post("/api/users/admin", headers=sh, json={})
    assert r.status_code == 405 and {"GET", "PUT"} <= _allow(r), r.headers.get("allow")
    # the /appliance API (its sections are a GET and a PUT route each)
    r = c.post("/appliance/api/networking", headers=ah, json={})
    assert r.status_code == 405 and _allow(r) >= {"GET", "PUT"}, r.headers.get("allow")
    # every method the Allow header names is really answered (not 405)
    for method in _allow(r):
        assert c.request(method, "/appliance/api/networking", headers=ah).status_code != 405, method
    # the HTML faces: /login is a GET and a POST route
    r = c.put("/login", data={})
    assert r.status_code == 405 and _allow(r) >= {"GET", "POST"}, r.headers.get("allow")


@pytest.mark.req("ROB-02")
def test_json_booleans_are_true_or_false_only(ready_site):
    a, c, ah, sh = ready_site
    for bad in (0, 1, "true", "yes", "on"):
        r = c.post("/api/backup", headers=sh, json={"no_password": True, "include_history": bad})
        assert r.status_code == 422 and r.json()["field"] == "include_history", (bad, r.status_code, r.text[:200])
    before = ok(c.get("/api/config/settings/security", headers=sh))
    seq = ok(c.get("/api/changes?limit=1", headers=sh))["last_seq"]
    r = c.put("/api/config/settings/security", headers=sh, json={**before, "require_two_factor": 1})
    assert r.status_code == 422 and "require_two_factor" in r.json()["field"], r.text
    assert ok(c.get("/api/config/settings/security", headers=sh)) == before
    assert ok(c.get("/api/changes?limit=1", headers=sh))["last_seq"] == seq
    r = c.post("/appliance/api/session", json={"username": "admin", "password": "x", "accept_agreement": "yes"})
    assert r.status_code == 422 and r.json()["field"] == "accept_agreement", r.text
    # a real boolean is still accepted
    r = c.post("/api/backup", headers=sh, json={"no_password": True, "include_history": False})
    assert r.status_code == 200, r.text[:200]


@pytest.mark.req("SEC-01", "ROB-02")
def test_the_html_login_429_says_when_to_retry(ready_site):
    a, c, ah, sh = ready_site
    c.cookies.clear()
    status = []
    for _ in range(8):
        pre = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"csrf_token": pre, "username": "admin", "password": "wrong-password-1"})
        status.append(r.status_code)
        if r.status_code == 429:
            break
    assert status[-1] == 429, status
    assert int(r.headers["retry-after"]) > 0 and "text/html" in r.headers["content-type"]
    # the JSON API says the same for the same account
    j = c.post("/api/session", json={"username": "admin", "password": NEW_SITE_PASSWORD})
    assert j.status_code == 429 and 0 < int(j.headers["retry-after"]) <= int(r.headers["retry-after"]) + 1
