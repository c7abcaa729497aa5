"""Issue 17, item 9: the /login admin pages behave like a product. Users are edited, disabled, have their
password reset and are deleted on the page, and the same through the CLI (one domain function each, the
same permission check); the menu shows only what the signed-in user may open; labels and headers are
written for people, a table says when it is empty; the certificate card says "Private key | yes"; every
page names its icon (no 404 for /favicon.ico). Headless Chromium against a real appliance."""

from __future__ import annotations

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, browser_login, ok, run_cli, site_token


def _login(page, url, user, password):
    browser_login(page, f"{url}/login", password, user)


@pytest.mark.req("OPS-05", "OPS-02")
def test_users_menus_labels_and_icon(ready_site, page, tmp_path):
    a, c, ah, sh = ready_site
    url = a.url
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    for name, perms in (("rita", ["reporting"]), ("sam", []), ("tom", [])):
        ok(c.post("/api/users", headers=sh, json={"username": name, "password": "Initial-pass-1",
                                                   "permissions": perms}), 201)
    _login(page, url, "admin", NEW_SITE_PASSWORD)
    # the users table links each user to its page: edit (disable), reset the password, delete
    page.goto(f"{url}/login/users")
    page.click("#users a[href='/login/users/sam']")
    assert page.url.endswith("/login/users/sam")
    page.uncheck("input[name=enabled]")
    page.click("#save")
    assert "Saved." in page.inner_text("#notice")
    assert c.post("/api/session", json={"username": "sam", "password": "Initial-pass-1"}).status_code == 401
    page.fill("#new_password", "Reset-pass-17x")
    page.click("#reset-password-submit")
    assert "must change it" in page.inner_text("#notice")
    page.click("#delete-user-open")
    page.click("#delete-user-confirm")
    assert page.url.endswith("/login/users?deleted=sam") and "User sam deleted." in page.inner_text("#notice")
    assert "sam" not in [u["username"] for u in ok(c.get("/api/users", headers=sh))]
    # the same through the CLI (same functions, same check)
    env = {**a.cli_env(), "TETHER_USER": "admin", "TETHER_SITE_PASSWORD": NEW_SITE_PASSWORD,
           "TETHER_SESSION_CACHE": str(tmp_path / "sessions.json")}
    cp = run_cli("users", "disable", "tom", "--json", env=env)
    assert cp.returncode == 0 and '"enabled": false' in cp.stdout, cp.stderr
    cp = run_cli("users", "edit", "tom", "--enable", "--display-name", "Tom T", "--permission", "reporting", env=env)
    assert cp.returncode == 0 and "enabled" in cp.stdout, cp.stderr
    tom = ok(c.get("/api/users/tom", headers=sh))
    assert tom["enabled"] and tom["display_name"] == "Tom T" and tom["permissions"] == ["reporting"]
    assert run_cli("users", "delete", "tom", env=env).returncode == 0
    cp = run_cli("users", "delete", "rita", env={**env, "TETHER_USER": "rita",
                                                  "TETHER_SITE_PASSWORD": "Initial-pass-1"})
    assert cp.returncode == 3, cp.stderr  # rita may not manage users (she must change her password first, too)
    # labels for people, one header style, a line when a table is empty
    page.goto(f"{url}/login/config/jump-clients")
    headers = page.locator("table th").all_inner_texts()
    assert "OS" in headers and "Public IP" in headers, headers
    assert "None yet." in page.inner_text("table")
    page.goto(f"{url}/login/config/security-providers")
    body = page.inner_text("main")
    assert "TLS mode" in body and "Bind DN" in body and "Tls mode" not in body, body[:500]
    page.goto(f"{url}/login/settings/inter-appliance-psk")
    assert "Pre-shared key" in page.inner_text("main")
    # a user without user management does not see Users (nor API accounts) in the menu
    token = site_token(c, "rita", "Initial-pass-1")
    ok(c.post("/api/session/password", headers={"Authorization": f"Bearer {token}"},
              json={"current_password": "Initial-pass-1", "new_password": "Rita-new-pass-1"}))
    page.click("#logout")
    _login(page, url, "rita", "Rita-new-pass-1")
    menu = page.locator("header nav a").all_inner_texts()
    assert "Users" not in menu and "API accounts" not in menu and "Audit log" in menu, menu
    # the certificate card, on /appliance
    page.goto(f"{url}/appliance/login")
    page.fill("#username", "admin")
    page.fill("#password", NEW_ADMIN_PASSWORD)
    page.click("#login-submit")
    page.goto(f"{url}/appliance/certificates")
    card = page.inner_text(".private-key")
    assert card.strip() in ("yes", "no") and "Private key:" not in page.inner_text("main")
    assert page.locator("link[rel=icon]").get_attribute("href") == "/static/favicon.svg"
    r = c.get("/favicon.ico", follow_redirects=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg")
    assert not missing, missing
