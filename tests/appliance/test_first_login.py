"""APPL-05 / SEC-01: the /appliance first login, forced password change,
throttling, cookies and CSRF, through real HTTPS."""

import re

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, admin_token


@pytest.mark.req("APPL-05", "SEC-01")
def test_first_login_forces_password_change_before_anything_else(appliance):
    with appliance.client() as c:
        tok = admin_token(c, "password")
        h = {"Authorization": f"Bearer {tok}"}
        for path in ("/appliance/api/status", "/appliance/api/networking", "/appliance/api/security",
                     "/appliance/api/audit", "/appliance/api/site"):
            r = c.get(path, headers=h)
            assert r.status_code == 403, path
            assert r.json()["error"] == "password_change_required"
        assert c.put("/appliance/api/networking", headers=h, json={}).status_code == 403
        # weak and default passwords are refused, nothing changes
        for bad in ("short", "password"):
            r = c.post("/appliance/api/password", headers=h, json={"current_password": "password", "new_password": bad})
            assert r.status_code == 422 and r.json()["field"] == "new_password"
        assert c.get("/appliance/api/status", headers=h).status_code == 403
        r = c.post("/appliance/api/password", headers=h,
                   json={"current_password": "password", "new_password": NEW_ADMIN_PASSWORD})
        assert r.status_code == 200
        assert c.get("/appliance/api/status", headers=h).status_code == 200
        # the old password no longer works, the new one does
        assert c.post("/appliance/api/session", json={"username": "admin", "password": "password"}).status_code == 401
        assert admin_token(c, NEW_ADMIN_PASSWORD)


@pytest.mark.req("APPL-05", "SEC-01")
def test_wrong_passwords_are_throttled(appliance):
    with appliance.client() as c:
        for _ in range(5):
            r = c.post("/appliance/api/session", json={"username": "admin", "password": "wrong-one"})
            assert r.status_code == 401
        r = c.post("/appliance/api/session", json={"username": "admin", "password": "password"})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert "too many failed logins" in r.json()["message"]


@pytest.mark.req("SEC-01")
def test_forged_or_missing_session_is_refused(appliance):
    with appliance.client() as c:
        assert c.get("/appliance/api/status").status_code == 401
        r = c.get("/appliance/api/status", headers={"Authorization": "Bearer forged-token-value"})
        assert r.status_code == 401


@pytest.mark.req("SEC-01", "APPL-05")
def test_html_login_sets_secure_cookie_and_forms_need_csrf(appliance):
    with appliance.client(follow_redirects=False) as c:
        page = c.get("/appliance/login")
        assert page.status_code == 200 and 'name="password"' in page.text
        pre = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        # a login post without the pre-login CSRF token is refused
        r = c.post("/appliance/login", data={"username": "admin", "password": "password"})
        assert r.status_code == 403
        r = c.post("/appliance/login", data={"username": "admin", "password": "password", "csrf_token": pre})
        assert r.status_code == 303 and r.headers["location"] == "/appliance/password"
        cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("tether_appliance=")][0]
        low = cookie.lower()
        assert "secure" in low and "httponly" in low and "samesite=strict" in low
        # every other page sends us to the password change
        r = c.get("/appliance/status")
        assert r.status_code == 303 and r.headers["location"] == "/appliance/password"
        form = c.get("/appliance/password").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        body = {"current_password": "password", "new_password": NEW_ADMIN_PASSWORD,
                "confirm_password": NEW_ADMIN_PASSWORD}
        assert c.post("/appliance/password", data=body).status_code == 403  # no CSRF token
        assert c.post("/appliance/password", data={**body, "csrf_token": "wrong"}).status_code == 403
        r = c.post("/appliance/api/session", json={"username": "admin", "password": "password"})
        assert r.status_code == 200 and r.json()["must_change_password"] is True  # nothing changed
        r = c.post("/appliance/password", data={**body, "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/appliance/status"
        status = c.get("/appliance/status")
        assert status.status_code == 200 and "Serial number" in status.text
        # a cookie-authenticated JSON write without the CSRF header is refused
        r = c.put("/appliance/api/networking", json={"hostname": "x.example.com"})
        assert r.status_code == 403 and "CSRF" in r.json()["message"]
