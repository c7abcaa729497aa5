"""OPS-05, DR-02: /appliance Status > Drills in headless Chromium: a drill
started from the page runs as a job, its report page follows the progress
and shows the figures the API gives; the list shows past drills."""

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, ok, wait_for


@pytest.mark.req("OPS-05", "DR-02")
def test_a_drill_started_from_the_page_shows_its_progress_and_figures(page, ready_site):
    a, c, ah, _sh = ready_site
    page.goto(f"{a.url}/appliance/login")
    page.fill("#username", "admin")
    page.fill("#password", NEW_ADMIN_PASSWORD)
    page.click("#login-submit")
    page.click("nav a[href='/appliance/drills']")
    assert page.text_content("#no-drills") == "No drills yet."
    page.select_option("#backup", "fresh")
    page.click("#start-drill")
    page.wait_for_url(f"{a.url}/appliance/drills/*")
    drill_id = page.url.rsplit("/", 1)[1]
    # the page refreshes itself while the job runs
    assert page.text_content("#state") == "running"
    busy = c.post("/appliance/api/drills", headers=ah, json={"failover": False})  # one drill at a time
    assert busy.status_code == 409 and drill_id in busy.json()["message"]
    page.locator("#state", has_text="done").wait_for(timeout=120000)
    r = ok(c.get(f"/appliance/api/drills/{drill_id}", headers=ah))
    assert r["state"] == "done" and r["result"] == "pass", r
    assert r["restore"]["backup"]["source"] == "fresh" and r["restore"]["comparison"]["matches"] is True
    assert page.text_content("#result") == "pass"
    t = r["restore"]["timings"]
    assert page.text_content("#restore_seconds") == str(t["restore_seconds"])
    assert page.text_content("#restore_to_answer_seconds") == str(t["restore_to_answer_seconds"])
    assert page.text_content("#failover-result") == "skipped"  # a standalone appliance: no pair
    users = r["restore"]["comparison"]["users"]
    assert page.text_content("#cmp-users td:nth-of-type(2)") == str(users["restored"])
    assert page.locator("#progress li").count() == len(r["progress"]) >= 4
    page.click("text=All drills")
    row = page.locator(f"#drills tr[data-id='{drill_id}']")
    assert row.locator(".result").text_content() == "pass"
    assert row.locator(".restore_seconds").text_content() == str(t["restore_seconds"])
    wait_for(lambda: ok(c.get("/appliance/api/drills", headers=ah))[0]["id"] == drill_id, 5)
