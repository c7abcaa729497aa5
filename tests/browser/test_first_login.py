"""OPS-05 with APPL-05, APPL-03, SITE-04, SITE-05: the whole first-login flow
on both faces in real headless Chromium: agreement, login, forced password
change, Status shows the real serial number; then the site face."""

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD


def _change_password(page, current, new):
    page.fill("#current_password", current)
    page.fill("#new_password", new)
    page.fill("#confirm_password", new)
    page.click("#password-submit")


@pytest.mark.req("OPS-05", "APPL-05", "APPL-03", "APPL-01")
def test_appliance_first_login_in_a_browser(page, appliance):
    url = appliance.url
    page.goto(f"{url}/appliance")
    assert page.url.endswith("/appliance/login")
    page.fill("#username", "admin")
    page.fill("#password", "password")
    page.click("#login-submit")
    assert page.url.endswith("/appliance/password")
    assert page.is_visible("#must-change")
    # any other page sends us back to the password change
    page.goto(f"{url}/appliance/status")
    assert page.url.endswith("/appliance/password")
    _change_password(page, "password", "short")
    assert "at least 8 characters" in page.inner_text("#error")
    _change_password(page, "password", NEW_ADMIN_PASSWORD)
    assert page.url.endswith("/appliance/status")
    serial = page.inner_text("#serial_number")
    with appliance.client() as c:
        tok = c.post("/appliance/api/session", json={"username": "admin", "password": NEW_ADMIN_PASSWORD}).json()["token"]
        basics = c.get("/appliance/api/status", headers={"Authorization": f"Bearer {tok}"}).json()
    assert serial == basics["serial_number"]
    # switch on the login agreement through the Security page
    page.click("a[href='/appliance/security']")
    page.check("#agreement_enabled")
    page.fill("#agreement_title", "Authorised use only")
    page.fill("#agreement_text", "All activity is recorded.")
    page.click("#save")
    assert page.inner_text("#notice") == "Saved."
    # a bad value is refused with the field named, and nothing saved
    page.fill("#syslog_port", "99999")
    page.click("#save")
    assert "syslog.port" in page.inner_text("#error")
    page.click("#logout")
    # the agreement now comes before the login page
    page.goto(f"{url}/appliance/login")
    assert "All activity is recorded." in page.inner_text("#agreement-text")
    assert page.locator("#password").count() == 0
    page.click("#accept-agreement")
    page.fill("#username", "admin")
    page.fill("#password", NEW_ADMIN_PASSWORD)
    page.click("#login-submit")
    assert page.url.endswith("/appliance/status")
    assert page.inner_text("#serial_number") == serial


@pytest.mark.req("OPS-05", "SITE-04", "SITE-05")
def test_site_install_and_first_login_in_a_browser(page, appliance, vendor):
    from tether import __version__

    url = appliance.url
    page.goto(f"{url}/login")
    assert "No site is installed" in page.inner_text("#error")
    page.goto(f"{url}/appliance/login")
    page.fill("#username", "admin")
    page.fill("#password", "password")
    page.click("#login-submit")
    _change_password(page, "password", NEW_ADMIN_PASSWORD)
    page.click("a[href='/appliance/site']")
    assert page.is_visible("#no-site")
    page.set_input_files("#file", str(vendor["package"]("acme", "remote-support")))
    page.click("#install")
    assert "install done" in page.inner_text("#notice")
    assert page.inner_text("#site-name") == "acme"
    page.goto(f"{url}/login")
    page.fill("#username", "admin")
    page.fill("#password", "password")
    page.click("#login-submit")
    assert page.url.endswith("/login/password")
    page.goto(f"{url}/login/users")
    assert page.url.endswith("/login/password")
    _change_password(page, "password", NEW_SITE_PASSWORD)
    assert page.url.endswith("/login/status")
    assert page.inner_text("#product_version") == __version__
    assert page.inner_text("#site_name") == "acme"
    assert page.inner_text("#edition") == "remote-support"
    assert page.inner_text("#clients_jump") == "0"
    # create an API account and see its secret once
    page.click("a[href='/login/api-accounts']")
    page.fill("#name", "nightly-backup")
    page.check("input[value='backup']")
    page.click("#create-api-account")
    secret = page.inner_text("#client-secret")
    assert len(secret) > 30
    page.goto(f"{url}/login/api-accounts")
    assert "nightly-backup" in page.inner_text("#api-accounts") and secret not in page.content()


@pytest.mark.req("OPS-05", "BK-01", "BK-06")
def test_backup_download_and_restore_in_a_browser(page, make_appliance, tmp_path):
    a = make_appliance(site=True)
    from tests.helpers import first_site_login

    with a.client() as c:
        sh = first_site_login(c)
        c.post("/api/users", headers=sh, json={"username": "judy", "password": "Judy-initial-1"})
    url = a.url
    page.goto(f"{url}/login")
    page.fill("#username", "admin")
    page.fill("#password", NEW_SITE_PASSWORD)
    page.click("#login-submit")
    page.click("a[href='/login/software']")
    page.fill("#backup_password", "Browser-backup-1")
    page.fill("#backup_password_confirm", "Browser-backup-1")
    page.check("#include_history")
    with page.expect_download() as info:
        page.click("#download-backup")
    download = info.value
    assert download.suggested_filename.startswith("tether-") and download.suggested_filename.endswith(".nsb")
    saved = tmp_path / download.suggested_filename
    download.save_as(str(saved))
    # a user added after the backup disappears with the restore
    with a.client() as c:
        from tests.helpers import site_token
        h = {"Authorization": "Bearer " + site_token(c)}
        assert c.post("/api/users", headers=h, json={"username": "kate", "password": "Kate-initial-1"}).status_code == 201
    page.goto(f"{url}/login/software")
    page.set_input_files("#restore_file", str(saved))
    page.fill("#restore_password", "Wrong-password-1")
    page.check("#confirm_replace")  # the restore asks for confirmation: it replaces every user
    page.click("#restore")
    assert "wrong password" in page.inner_text("#error")
    page.set_input_files("#restore_file", str(saved))
    page.fill("#restore_password", "Browser-backup-1")
    page.click("#restore")
    assert page.input_value("#restore_password") == "Browser-backup-1"  # not sent: the box is unticked
    page.check("#confirm_replace")
    page.click("#restore")
    assert "Restored site demo" in page.inner_text("#restore-result")
    assert "you are logged out" in page.inner_text("#logged-out")
    page.goto(f"{url}/login/software")
    assert page.url.endswith("/login")  # the cookie went with the session
    with a.client() as c:
        from tests.helpers import site_token
        h = {"Authorization": "Bearer " + site_token(c)}
        names = [u["username"] for u in c.get("/api/users", headers=h).json()]
    assert "judy" in names and "kate" not in names
