"""OPS-05: every page of the appliance's two faces (/appliance and /login,
as their menus list them, and the API documentation) and of the support
desk passes axe-core with no critical or serious violation, in headless
Chromium under each face's own Content-Security-Policy; with one main
landmark, all content in landmarks and no empty table header. The desk sends
a CSP and has a log-out control."""

from urllib.parse import urlsplit

import pytest

from tests.browser.axe import blocking
from tests.desk.process import PASSWORD as DESK_PASSWORD
from tests.helpers import NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, browser_login, ok


def _login(page, url, user, password):
    browser_login(page, url, password, user)


def _menu(page, prefix) -> list[str]:
    hrefs = page.eval_on_selector_all("nav a[href]", "els => els.map(e => e.getAttribute('href'))")
    return sorted({h for h in hrefs if h.startswith(prefix)})


def _check(page, url, failures):
    page.goto(url)
    found = blocking(page)
    if found:
        failures[urlsplit(url).path] = found


@pytest.mark.req("OPS-05")
def test_no_critical_or_serious_accessibility_violation_on_any_page(page, ready_site, desk_factory):
    a, c, _ah, sh = ready_site
    failures: dict[str, list] = {}
    # /appliance: the login page, then every page of its menu
    _check(page, f"{a.url}/appliance/login", failures)
    _login(page, f"{a.url}/appliance/login", "admin", NEW_ADMIN_PASSWORD)
    pages = _menu(page, "/appliance")
    assert len(pages) >= 5, pages
    for path in pages:
        _check(page, a.url + path, failures)
    # /login: a session with an event and a recording, so that its page has rows
    lsid = ok(c.post("/api/command/sessions", headers=sh, json={"rep": "axe-rep", "kind": "shell"}), 201)["lsid"]
    ok(c.post(f"/api/command/sessions/{lsid}/events", headers=sh,
              json={"type": "participant.join", "actor": "axe-rep", "data": {"customer": "web-01"}}), 201)
    _check(page, f"{a.url}/login", failures)
    _login(page, f"{a.url}/login", "admin", NEW_SITE_PASSWORD)
    pages = _menu(page, "/login")
    assert len(pages) >= 5, pages
    for path in [*pages, "/login/history/sessions", f"/login/history/session/{lsid}"]:
        _check(page, a.url + path, failures)
    for path in ("/api/docs", "/appliance/api/docs"):
        page.goto(a.url + path)
        page.wait_for_selector(".opblock")
        if found := blocking(page):
            failures[path] = found
    # the desk: public pages, then a staff member's, an incident's included
    desk = desk_factory()
    desk.customer("Axe Co", ["pat@axe.test"])
    number = desk.open("pat@axe.test", summary="axe check", severity=2)["number"]
    for path in ("/new", "/login", f"/incidents/{number}/feedback"):
        _check(page, desk.url + path, failures)
    page.goto(f"{desk.url}/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", DESK_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/incidents")
    for path in ("/incidents", f"/incidents/{number}"):
        _check(page, desk.url + path, failures)
    # the desk sends a Content-Security-Policy (its pages ran under it above) and has a log-out control
    csp = page.request.get(f"{desk.url}/incidents").headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto(f"{desk.url}/incidents")
    assert urlsplit(page.url).path == "/login"  # the session is gone
    page.goto(f"{desk.url}/api/docs")
    page.wait_for_selector(".opblock")
    if found := blocking(page):
        failures["desk /api/docs"] = found
    assert failures == {}, failures
