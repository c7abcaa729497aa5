"""SITE-05, SITE-06, SEC-01, SEC-06: the site's JSON API, API accounts and
bearer tokens limited to their permissions, Status > Information, audit."""

import time

import pytest

from tether import __version__ as CURRENT

from tests.helpers import NEW_SITE_PASSWORD, api_token, site_token


@pytest.mark.req("SITE-05")
def test_status_information(ready_site):
    a, c, _ah, sh = ready_site
    info = c.get("/api/site/information", headers=sh).json()
    assert info == {"product_version": CURRENT, "site_name": "demo", "edition": "remote-support",
                    "appliance_role": "none", "generation": 0,
                    "connected_clients": {"representatives": 0, "jump_clients": 0, "jumpoints": 0, "total": 0}}


def _account(c, sh, name, perms, ttl=900):
    r = c.post("/api/api-accounts", headers=sh, json={"name": name, "permissions": perms, "token_ttl": ttl})
    assert r.status_code == 201, r.text
    return r.json()


# one real endpoint per permission, with a request that the permission allows
ENDPOINTS = {
    "reporting": ("GET", "/api/reporting/audit", None),
    "command": ("POST", "/api/command/check_health", None),
    "config:read": ("GET", "/api/config/site", None),
    "config:write": ("PUT", "/api/config/site", {"display_name": "Helpdesk", "session_timeout_minutes": 60}),
    "users:manage": ("GET", "/api/users", None),
}


@pytest.mark.req("SITE-06", "SEC-01")
def test_api_accounts_get_exactly_their_permissions(ready_site):
    a, c, _ah, sh = ready_site
    for perm in ("backup", "command", "reporting", "config:read", "config:write"):
        acct = _account(c, sh, f"only-{perm.replace(':', '-')}", [perm])
        tok = api_token(c, acct["client_id"], acct["client_secret"])
        h = {"Authorization": f"Bearer {tok}"}
        assert c.get("/api/me", headers=h).json()["permissions"] == [perm]
        for needed, (method, path, body) in ENDPOINTS.items():
            r = c.request(method, path, headers=h, json=body)
            if needed == perm:
                assert r.status_code == 200, (perm, path, r.text)
            else:
                assert r.status_code == 403, (perm, path, r.text)
                assert needed in r.json()["message"]
    # the config write really happened, once, by the config:write account
    assert c.get("/api/config/site", headers=sh).json()["display_name"] == "Helpdesk"
    health = c.post("/api/command/check_health", headers=sh).json()
    assert health["success"] is True and health["failover_role"] == "none" and health["version"] == CURRENT


@pytest.mark.req("SITE-06", "SEC-01")
def test_bad_expired_and_forged_credentials(ready_site, clock):
    a, c, ah, sh = ready_site
    acct = _account(c, sh, "short-lived", ["reporting"], ttl=60)
    r = c.post("/api/oauth/token", data={"grant_type": "client_credentials", "client_id": acct["client_id"],
                                         "client_secret": "wrong"})
    assert r.status_code == 401
    r = c.post("/api/oauth/token", data={"grant_type": "password", "client_id": acct["client_id"],
                                         "client_secret": acct["client_secret"]})
    assert r.status_code == 422 and r.json()["field"] == "grant_type"
    tok = api_token(c, acct["client_id"], acct["client_secret"])
    assert c.get("/api/reporting/audit", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    clock.advance(50)  # within the token's 60 s
    assert c.get("/api/reporting/audit", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    clock.advance(11)  # past them
    r = c.get("/api/reporting/audit", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 401 and "expired" in r.json()["message"]
    assert c.get("/api/reporting/audit", headers={"Authorization": "Bearer " + tok[:-2] + "xx"}).status_code == 401
    assert c.get("/api/reporting/audit").status_code == 401
    # deleting the account revokes its tokens
    acct2 = _account(c, sh, "to-delete", ["reporting"])
    tok2 = api_token(c, acct2["client_id"], acct2["client_secret"])
    assert c.delete(f"/api/api-accounts/{acct2['client_id']}", headers=sh).status_code == 200
    assert c.get("/api/reporting/audit", headers={"Authorization": f"Bearer {tok2}"}).status_code == 401
    # login sessions of both realms last 8 hours
    clock.advance(8 * 3600 - 120)
    assert c.get("/api/me", headers=sh).status_code == 200
    assert c.get("/appliance/api/status", headers=ah).status_code == 200
    clock.advance(120)
    r = c.get("/api/me", headers=sh)
    assert r.status_code == 401 and r.json()["message"] == "the token or session is invalid or has expired"
    r = c.get("/appliance/api/status", headers=ah)
    assert r.status_code == 401 and r.json()["message"] == "log in to /appliance first"


@pytest.mark.req("SITE-06")
def test_api_account_input_is_validated(ready_site):
    a, c, _ah, sh = ready_site
    before = c.get("/api/api-accounts", headers=sh).json()
    for body, field in [({"name": "x", "permissions": ["root"]}, "permissions"),
                        ({"name": "x", "permissions": []}, "permissions"),
                        ({"name": "", "permissions": ["backup"]}, "name"),
                        ({"name": "x", "permissions": ["backup"], "token_ttl": 0}, "token_ttl"),
                        ({"permissions": ["backup"]}, "name")]:
        r = c.post("/api/api-accounts", headers=sh, json=body)
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    _account(c, sh, "dup", ["backup"])
    r = c.post("/api/api-accounts", headers=sh, json={"name": "dup", "permissions": ["backup"]})
    assert r.status_code == 409
    assert len(c.get("/api/api-accounts", headers=sh).json()) == len(before) + 1


@pytest.mark.req("SITE-06")
def test_openapi_describes_only_real_endpoints(ready_site):
    a, c, _ah, sh = ready_site
    spec = c.get("/api/openapi.json").json()
    assert spec["servers"] == [{"url": "/api"}]
    assert len(spec["paths"]) >= 10
    for path, ops in spec["paths"].items():
        concrete = path.replace("{username}", "admin").replace("{client_id}", "tc_missing")
        for method in ops:
            r = c.request(method.upper(), "/api" + concrete, headers=sh)
            assert r.status_code not in (404, 405, 500) or (r.status_code == 404 and "tc_missing" in concrete), \
                (method, path, r.status_code, r.text)
    spec2 = c.get("/appliance/api/openapi.json").json()
    assert "/site-package" in spec2["paths"] and "/security" in spec2["paths"]


@pytest.mark.req("SEC-06", "SITE-06")
def test_site_audit_log_records_who_what_when_where(ready_site):
    a, c, _ah, sh = ready_site
    t0 = time.time()
    r = c.post("/api/users", headers=sh, json={"username": "bob", "password": "Initial-pass-1",
                                               "permissions": ["reporting"]})
    assert r.status_code == 201
    c.post("/api/session", json={"username": "bob", "password": "nope-nope"})
    log = c.get("/api/reporting/audit", headers=sh).json()
    create = next(e for e in log if e["action"] == "user.create")
    assert create["actor"] == "admin" and create["target"] == "bob" and create["source_ip"] == "127.0.0.1"
    assert t0 - 1 <= create["at"] <= time.time() + 1
    assert any(e["action"] == "login.failed" and e["actor"] == "bob" for e in log)
    text = str(log)
    assert "Initial-pass-1" not in text and NEW_SITE_PASSWORD not in text and "nope-nope" not in text


@pytest.mark.req("SEC-01")
def test_new_users_must_change_their_initial_password(ready_site):
    a, c, _ah, sh = ready_site
    assert c.post("/api/users", headers=sh, json={"username": "carol", "password": "Initial-pass-1"}).status_code == 201
    tok = site_token(c, "carol", "Initial-pass-1")
    h = {"Authorization": f"Bearer {tok}"}
    assert c.get("/api/me", headers=h).status_code == 403
    r = c.post("/api/session/password", headers=h, json={"current_password": "Initial-pass-1",
                                                         "new_password": "Carol-pass-22"})
    assert r.status_code == 200
    assert c.get("/api/me", headers=h).json()["permissions"] == []
    assert c.get("/api/users", headers=h).status_code == 403
