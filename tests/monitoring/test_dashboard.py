"""OPS-07 in headless Chromium (OPS-05): the first page of /appliance and of
/login is the dashboard (role and peer, sync lag, readiness, certificates and
their expiry, the last backup, connected clients, and the last hour as a
server-rendered SVG), and every figure it shows is the API's
(GET /appliance/api/dashboard, GET /api/dashboard); Status > Readiness shows
the audit's checks. Nothing on these pages breaks the Content-Security-Policy
(no inline script, no CDN), and axe finds no serious accessibility fault.
Role and lag are shown on a standalone appliance (role none, no pair)."""

from __future__ import annotations

import pytest

from tests.browser.axe import blocking
from tests.helpers import NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, browser_login, ok, site_token

pytestmark = [pytest.mark.req("OPS-07"), pytest.mark.req("OPS-05")]


def _watch_csp(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: problems.append(r.url) if not r.url.startswith(("https://127.0.0.1", "data:"))
            else None)
    return problems


def _figures_match(page, dash: dict) -> None:
    f, cc, r = dash["failover"], dash["connected_clients"], dash["readiness"]
    assert page.inner_text("#dash-role") == f["role"]
    assert page.inner_text("#dash-generation") == str(f["generation"])
    assert page.inner_text("#dash-peer") == "not in a failover pair"
    assert page.inner_text("#dash-lag-seconds") == "-" and page.inner_text("#dash-lag-entries") == "-"
    assert page.inner_text("#dash-readiness") == r["status"]
    for k in ("fail", "warn", "pass"):
        assert page.inner_text(f"#dash-readiness-{k}") == str(r["counts"][k])
    assert page.inner_text("#dash-clients-total") == str(cc["total"])
    assert page.inner_text("#dash-clients-jump") == str(cc["jump_clients"]) == "1"
    assert page.inner_text("#dash-clients-representatives") == str(cc["representatives"])
    assert page.inner_text("#dash-backup-file") == dash["last_backup"]["file"]
    shown_age = int(page.get_attribute("#dash-backup-age", "data-age-seconds"))
    assert abs(shown_age - dash["last_backup"]["age_seconds"]) <= 5
    rows = page.locator("#dash-certificates tr[data-id]")
    assert rows.count() == len(dash["certificates"]) >= 1
    for i, cert in enumerate(dash["certificates"]):
        row = rows.nth(i)
        assert row.get_attribute("data-id") == str(cert["id"])
        assert row.locator("td.days").inner_text() == str(cert["days_to_expiry"])
        assert row.locator("td").nth(2).inner_text() == cert["not_after"]
    # the chart: an inline SVG of the last hour, with the sampler's samples (one every 10 s)
    svg = page.locator("svg#dashboard-chart")
    assert svg.count() == 1
    assert int(svg.get_attribute("data-samples")) == len(dash["last_hour"]) or \
        abs(int(svg.get_attribute("data-samples")) - len(dash["last_hour"])) <= 1
    assert page.locator("svg#dashboard-chart polyline").count() >= 1 or len(dash["last_hour"]) == 0


def _log_in_to_the_dashboard(watched, page, face: str, password: str, api: str, headers: dict) -> None:
    """Log in on ``face`` (/appliance or /login) as admin: the first page is Status with the dashboard, whose
    figures are those of its JSON twin ``api``."""
    browser_login(page, f"{watched.a.url}{face}" + ("/login" if face == "/appliance" else ""), password)
    assert page.url.endswith(f"{face}/status")
    dash = ok(watched.c.get(api, headers=headers))
    page.reload()
    _figures_match(page, dash)


def test_appliance_first_page_is_the_dashboard(watched, page):
    c = watched.c
    csp = _watch_csp(page)
    _log_in_to_the_dashboard(watched, page, "/appliance", NEW_ADMIN_PASSWORD, "/appliance/api/dashboard", watched.ah)
    assert page.inner_text("#status-basics #hostname")  # Status > Basics is still there, below
    assert blocking(page) == []
    # Status > Readiness: the audit's checks, each with its result and mend
    page.click("text=Status › Readiness")
    report = ok(c.get("/appliance/api/readiness", headers=watched.ah))
    assert page.inner_text("#readiness-status") == report["status"]
    for check in report["checks"]:
        row = page.locator(f"#check-{check['name']}")
        assert row.locator("td").nth(1).inner_text() == check["status"]
        assert row.locator("td").nth(3).inner_text() == (check["mend"] or "")
    assert blocking(page) == []
    assert csp == []


def test_login_first_page_is_the_dashboard(watched, page):
    c = watched.c
    csp = _watch_csp(page)
    _log_in_to_the_dashboard(watched, page, "/login", NEW_SITE_PASSWORD, "/api/dashboard", watched.sh)
    assert page.inner_text("#status-information #site_name")
    assert blocking(page) == []
    assert csp == []
    # a user without config:read sees Status > Information, not the dashboard (nor its API)
    ok(c.post("/api/users", headers=watched.sh, json={"username": "viewer", "password": "Viewer-pass-1",
                                                        "permissions": ["reporting"]}), 201)
    h = {"Authorization": f"Bearer {site_token(c, 'viewer', 'Viewer-pass-1')}"}
    ok(c.post("/api/session/password", headers=h,
              json={"current_password": "Viewer-pass-1", "new_password": "Viewer-pass-2"}))
    r = c.get("/api/dashboard", headers=h)
    assert r.status_code == 403 and "config:read" in r.json()["message"]
    page.click("#logout")
    page.fill("#username", "viewer")
    page.fill("#password", "Viewer-pass-2")
    page.click("#login-submit")
    assert page.url.endswith("/login/status")
    assert page.locator("#dashboard").count() == 0 and page.inner_text("#status-information #site_name")
