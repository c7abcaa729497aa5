"""The /login HTML pages for the site's data: create/edit/delete through the
forms (cookie session + CSRF), errors naming the field with nothing stored,
permission checks on every page, history filters, the Remote Support pages
absent on a Privileged Remote Access site, and one full flow in headless
Chromium (OPS-05)."""

import re

import pytest

from tests.helpers import NEW_SITE_PASSWORD



def html_login(env, user="admin", password=NEW_SITE_PASSWORD):
    c = env.proc.client(follow_redirects=False)
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", data={"csrf_token": token, "username": user, "password": password})
    assert r.status_code == 303, r.text
    return c


def csrf(c, path="/login/status"):
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


@pytest.mark.req("SITE-01")
def test_forms_create_edit_delete_and_refuse_bad_input(rs_site):
    c = html_login(rs_site)
    try:
        tok = csrf(c, "/login/config/jumpoints")
        r = c.post("/login/config/jumpoints", data={"csrf_token": tok, "name": "hq", "hostname": "jp.hq.example",
                                                   "protocols": ["ssh", "rdp"], "allowed_networks": "10.0.0.0/8",
                                                   "enabled": "on", "max_sessions": "20"})
        assert r.status_code == 200 and "hq created" in r.text
        r = c.post("/login/config/jumpoints", data={"csrf_token": tok, "name": "bad", "hostname": "jp.example",
                                                   "max_sessions": "lots"})
        assert r.status_code == 422 and "max_sessions" in r.text
        r = c.post("/login/config/jumpoints", data={"csrf_token": tok, "name": "hq", "hostname": "x.example"})
        assert r.status_code == 409 and "already exists" in r.text
        r = c.post("/login/config/jumpoints", data={"name": "nocsrf", "hostname": "x.example"})
        assert r.status_code == 403
        api = c.get("/api/config/jumpoints", headers=rs_site.sh).json()
        assert [j["name"] for j in api if j["name"] in ("hq", "bad", "nocsrf")] == ["hq"]
        assert api[[j["name"] for j in api].index("hq")]["protocols"] == ["ssh", "rdp"]
        edit = c.get("/login/config/jumpoints/hq").text
        assert "jp.hq.example" in edit and "10.0.0.0/8" in edit
        r = c.post("/login/config/jumpoints/hq", data={"csrf_token": tok, "hostname": "jp2.hq.example",
                                                      "max_sessions": "5"})
        assert r.status_code == 200 and "Saved" in r.text
        assert c.get("/api/config/jumpoints/hq", headers=rs_site.sh).json()["hostname"] == "jp2.hq.example"
        # secrets: a form never shows one back
        r = c.post("/login/config/security-providers", data={
            "csrf_token": tok, "name": "rad", "kind": "radius", "host": "10.9.9.9",
            "radius_secret": "Form-radius-secret"})
        assert r.status_code == 200, r.text
        assert "Form-radius-secret" not in c.get("/login/config/security-providers/rad").text
        r = c.post("/login/config/jumpoints/hq/delete", data={"csrf_token": tok})
        assert r.status_code == 200 and "hq deleted" in r.text
        assert c.get("/api/config/jumpoints/hq", headers=rs_site.sh).status_code == 404
        # settings sections and user editing
        r = c.post("/login/settings/jump-clients", data={"csrf_token": tok, "connection_rate_per_second": "999"})
        assert r.status_code == 422 and "connection_rate_per_second" in r.text
        r = c.post("/login/settings/jump-clients", data={"csrf_token": tok, "connection_rate_per_second": "120",
                                                         "statistics": ["cpu"]})
        assert r.status_code == 200
        assert c.get("/api/config/settings/jump-clients", headers=rs_site.sh).json()["connection_rate_per_second"] == 120
    finally:
        c.close()


@pytest.mark.req("SEC-05", "SITE-01")
def test_pages_check_permissions(rs_site):
    h = rs_site.sh
    rs_site.c.post("/api/users", headers=h, json={"username": "reporter", "password": "Reporter-pass-1",
                                                  "permissions": ["reporting"], "display_name": "R"})
    rs_site.c.put("/api/users/reporter/password", headers=h, json={"password": "Reporter-pass-2",
                                                                     "must_change_password": False})
    c = html_login(rs_site, "reporter", "Reporter-pass-2")
    try:
        tok = csrf(c)
        for path in ("/login/config", "/login/config/jumpoints", "/login/settings/security", "/login/files",
                     "/login/users/admin", "/login/config/teams"):
            assert c.get(path).status_code == 403, path
        for path, data in [("/login/config/jumpoints", {"name": "x", "hostname": "h.example"}),
                           ("/login/settings/security", {"lockout_threshold": "9"}),
                           ("/login/users/admin", {"display_name": "pwned"})]:
            assert c.post(path, data={"csrf_token": tok, **data}).status_code == 403, path
        assert c.get("/login/history/sessions").status_code == 200
        assert all(j["name"] != "x" for j in rs_site.c.get("/api/config/jumpoints", headers=h).json())
        assert rs_site.c.get("/api/users/admin", headers=h).json()["display_name"] != "pwned"
    finally:
        c.close()


@pytest.mark.req("SITE-03")
def test_history_pages_filter_and_paginate(rs_site):
    h = rs_site.sh
    for i in range(60):
        rs_site.c.post("/api/command/sessions", headers=h, json={
            "rep": "pager" if i % 2 else "other", "customer_name": f"P{i}", "started_at": 1_780_000_000 + i})
    c = html_login(rs_site)
    try:
        window = {"since": "2026-05-28", "until": "2026-05-29"}
        r = c.get("/login/history/sessions", params={"user": "pager", **window})
        assert r.status_code == 200
        first = re.findall(r"<td>P(\d+)</td>", r.text)
        assert len(first) == 30 and first[0] == "59"
        assert "next-page" not in r.text
        r = c.get("/login/history/sessions", params=window)
        nxt = re.search(r'href="([^"]+)" id="next-page"', r.text).group(1).replace("&amp;", "&")
        second = re.findall(r"<td>P(\d+)</td>", c.get(nxt).text)
        assert len(second) == 10 and second[0] == "9"
        r = c.get("/login/history/sessions", params={"since": "soon"})
        assert r.status_code == 422 and "since" in r.text
    finally:
        c.close()


@pytest.mark.req("SITE-02")
def test_privileged_remote_access_site_shows_no_remote_support_pages(pra_site):
    c = html_login(pra_site)
    try:
        index = c.get("/login/config").text
        for absent in ("Canned messages", "Exit surveys", "Presentations", "File store", "Public portal",
                       "branding"):
            assert absent not in index
        assert "Jumpoints" in index and "Failover settings" in index
        for path in ("/login/files", "/login/config/canned-messages", "/login/settings/public-portal",
                     "/login/history/presentation-logs"):
            r = c.get(path)
            assert r.status_code == 404 and "remote-support" in r.text, path
    finally:
        c.close()


@pytest.mark.req("OPS-05", "SITE-01", "SITE-02")
def test_browser_create_edit_delete_flow(rs_site, browser, tmp_path):
    ctx = browser.new_context(ignore_https_errors=True)
    page = ctx.new_page()
    page.set_default_timeout(15000)
    try:
        url = rs_site.proc.url
        page.goto(f"{url}/login")
        page.fill("#username", "admin")
        page.fill("#password", NEW_SITE_PASSWORD)
        page.click("#login-submit")
        page.click("a[href='/login/config']")
        page.click("a[href='/login/config/teams']")
        page.fill("#f-name", "Browser team")
        page.fill("#f-description", "made in Chromium")
        page.fill("#f-members", "admin lead")
        page.click("#create")
        assert "Browser team created" in page.inner_text("#notice")
        assert "made in Chromium" in page.inner_text("#teams")
        page.click("#edit-Browser\\ team")
        page.fill("#f-description", "edited in Chromium")
        page.fill("#f-members", "ghost")
        page.click("#save")
        assert "members.0.username" in page.inner_text("#error")
        page.fill("#f-members", "admin manager")
        page.click("#save")
        assert page.inner_text("#notice") == "Saved."
        team = rs_site.c.get("/api/config/teams/Browser team", headers=rs_site.sh).json()
        assert team["description"] == "edited in Chromium" and team["members"] == [{"username": "admin",
                                                                                    "role": "manager"}]
        page.goto(f"{url}/login/config/teams")
        page.click("#delete-Browser\\ team")
        assert "Browser team deleted" in page.inner_text("#notice")
        assert rs_site.c.get("/api/config/teams/Browser team", headers=rs_site.sh).status_code == 404
        # the file store: upload through the form, download, delete
        f = tmp_path / "manual.txt"
        f.write_bytes(b"how to reboot\n" * 1000)
        page.goto(f"{url}/login/files")
        page.set_input_files("#f-file", str(f))
        page.fill("#f-description", "runbook")
        page.click("#upload")
        assert "manual.txt uploaded (14000 bytes)" in page.inner_text("#notice")
        got = rs_site.c.get("/api/files/manual.txt", headers=rs_site.sh)
        assert got.content == f.read_bytes()
        page.click("#files button")
        assert "manual.txt deleted" in page.inner_text("#notice")
    finally:
        ctx.close()
