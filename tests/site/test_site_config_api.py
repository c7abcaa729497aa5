"""SITE-01 through the JSON API of a running appliance: users with teams,
security providers (write-only secrets, the Kerberos keytab), group
policies, jumpoints, jump clients, languages, outbound events and settings
sections; bad input is refused naming the field and stores nothing."""

import base64
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import api_token, ok, site_token

LDAP = {"name": "corp-ldap", "kind": "ldap", "host": "ldap.example.com", "tls_mode": "ldaps",
        "bind_dn": "CN=tether,OU=svc,DC=example,DC=com", "bind_password": "Ldap-bind-secret-1",
        "search_base": "DC=example,DC=com", "attr_groups": "memberOf"}
RADIUS = {"name": "radius-1", "kind": "radius", "host": "10.1.2.3", "radius_secret": "Radius-shared-secret"}
KEYTAB = bytes(range(256)) * 4
KERBEROS = {"name": "krb", "kind": "kerberos", "realm": "EXAMPLE.COM", "keytab": base64.b64encode(KEYTAB).decode()}
SECRETS = ("Ldap-bind-secret-1", "Radius-shared-secret", "Webhook-hmac-secret-1", base64.b64encode(KEYTAB).decode()[:40])


@pytest.mark.pg
@pytest.mark.req("SITE-01")
def test_configuration_with_relations_round_trips(rs_site):
    c, h = rs_site.c, rs_site.sh
    ok(c.post("/api/users", headers=h, json={"username": "alice", "password": "Initial-pass-1"}), 201)
    ok(c.post("/api/config/teams", headers=h, json={"name": "Tier 1", "description": "first line",
                                                       "members": [{"username": "alice", "role": "lead"}]}), 201)
    assert ok(c.get("/api/users/alice", headers=h))["teams"] == ["Tier 1"]
    for body in (LDAP, RADIUS, KERBEROS):
        out = ok(c.post("/api/config/security-providers", headers=h, json=body), 201)
        assert not any(s in str(out) for s in SECRETS)
    ldap = ok(c.get("/api/config/security-providers/corp-ldap", headers=h))
    assert ldap["bind_password_set"] and ldap["port"] == 636 and ldap["attr_username"] == "sAMAccountName"
    assert ok(c.get("/api/config/security-providers/krb", headers=h))["keytab_set"] is True
    # an edit that omits the secret keeps it (GET -> PUT round trip)
    ldap["timeout_seconds"] = 20
    assert ok(c.put("/api/config/security-providers/corp-ldap", headers=h, json=ldap))["bind_password_set"]
    policy = {"name": "Helpdesk", "priority": 5, "permissions": ["session.start", "jump.use"],
              "members": [{"kind": "user", "username": "alice"}, {"kind": "team", "team": "Tier 1"},
                          {"kind": "provider_group", "provider": "corp-ldap", "group_name": "CN=Helpdesk"}]}
    got = ok(c.post("/api/config/group-policies", headers=h, json=policy), 201)
    assert got["members"][2] == {"kind": "provider_group", "provider": "corp-ldap", "group_name": "CN=Helpdesk"}
    ok(c.post("/api/config/jumpoints", headers=h, json={"name": "dc-east", "hostname": "jp1.example.com",
                                                           "allowed_networks": ["10.0.0.0/8"]}), 201)
    ok(c.post("/api/config/jump-client-groups", headers=h, json={"name": "servers", "jumpoint": "dc-east"}), 201)
    ok(c.post("/api/config/jump-clients", headers=h, json={"name": "web01", "hostname": "web01.example.com",
                                                              "group_name": "servers", "public_ip": "192.0.2.7"}), 201)
    ok(c.post("/api/config/languages", headers=h, json={"name": "de-DE", "label": "Deutsch"}), 201)
    ok(c.post("/api/config/event-targets", headers=h, json={
        "name": "ops-mail", "kind": "email", "recipients": ["ops@example.com"], "event_types": ["backup.taken"]}), 201)
    # in use: refused, nothing deleted
    r = c.delete("/api/config/teams/Tier 1", headers=h)
    assert r.status_code == 409 and "group_policy_members" in r.json()["message"]
    r = c.delete("/api/config/jumpoints/dc-east", headers=h)
    assert r.status_code == 409
    # edit and delete
    policy["members"] = policy["members"][:1]
    assert len(ok(c.put("/api/config/group-policies/Helpdesk", headers=h, json=policy))["members"]) == 1
    ok(c.delete("/api/config/group-policies/Helpdesk", headers=h))
    assert c.get("/api/config/group-policies/Helpdesk", headers=h).status_code == 404
    # the change log holds every change in order, secrets travel (site DB), audit has none
    changes = ok(c.get("/api/changes?after=0&limit=10000", headers=h))
    seqs = [e["seq"] for e in changes["entries"]]
    assert seqs == sorted(seqs) and changes["last_seq"] == seqs[-1]
    tables = {e["tbl"] for e in changes["entries"]}
    assert {"teams", "team_members", "security_providers", "group_policy_members", "audit_log"} <= tables
    assert any(e["op"] == "delete" and e["tbl"] == "group_policies" for e in changes["entries"])
    audit = str(ok(c.get("/api/reporting/audit?limit=1000", headers=h)))
    assert "config.security-providers.create" in audit and not any(s in audit for s in SECRETS)


@pytest.mark.req("SITE-01")
def test_bad_input_names_the_field_and_stores_nothing(rs_site):
    c, h = rs_site.c, rs_site.sh
    ok(c.post("/api/config/teams", headers=h, json={"name": "dupe"}), 201)
    before = ok(c.get("/api/changes?after=0&limit=10000", headers=h))["last_seq"]
    cases = [
        ("teams", {"description": "no name"}, 422, "name"),
        ("teams", {"name": "x", "members": [{"username": "nobody"}]}, 422, "members.0.username"),
        ("teams", {"name": "dupe"}, 409, "name"),
        ("teams", {"name": "bad/name"}, 422, "name"),
        ("security-providers", {"name": "l", "kind": "ldap", "search_base": "dc=x"}, 422, None),
        ("security-providers", {"name": "l", "kind": "ldap", "host": "h", "search_base": "b", "port": 70000}, 422, "port"),
        ("security-providers", {"name": "r", "kind": "radius", "host": "h", "radius_secret": "short"}, 422,
         "radius_secret"),
        ("security-providers", {"name": "k", "kind": "kerberos", "realm": "EX.COM", "keytab": "not base64!"}, 422,
         "keytab"),
        ("group-policies", {"name": "g", "permissions": ["root"]}, 422, "permissions.0"),
        ("group-policies", {"name": "g", "members": [{"kind": "team", "team": "ghost"}]}, 422, "members.0.team"),
        ("jumpoints", {"name": "j", "hostname": "-bad-"}, 422, "hostname"),
        ("jumpoints", {"name": "j", "hostname": "ok.example", "max_sessions": "many"}, 422, "max_sessions"),
        ("jump-client-groups", {"name": "g", "jumpoint": "ghost"}, 422, "jumpoint"),
        ("jump-clients", {"name": "c", "hostname": "h.example", "public_ip": "999.1.1.1"}, 422, "public_ip"),
        ("languages", {"name": "english", "label": "English"}, 422, "name"),
        ("event-targets", {"name": "w", "kind": "webhook", "url": "ftp://x", "event_types": ["login"]}, 422, None),
        ("event-targets", {"name": "w", "kind": "webhook", "url": "https://x.example/h", "event_types": ["login"]},
         422, "hmac_secret"),
        ("event-targets", {"name": "w", "kind": "email", "recipients": ["a@b"], "event_types": ["nope"]}, 422,
         "event_types.0"),
    ]
    for slug, body, status, field in cases:
        r = c.post(f"/api/config/{slug}", headers=h, json=body)
        assert r.status_code == status, (slug, body, r.text)
        if field:
            assert r.json()["field"] == field, (slug, body, r.json())
    for path, body, field in [("/api/config/teams/dupe", {"name": "other"}, "name"),
                              ("/api/config/settings/jump-clients", {"connection_rate_per_second": 301},
                               "connection_rate_per_second"),
                              ("/api/config/settings/failover", {"peer_host": "not a host!"}, "peer_host"),
                              ("/api/config/settings/inter-appliance-psk", {"psk": "too-short"}, "psk"),
                              ("/api/users/admin", {"display_name": "A", "teams": ["ghost"], "is_admin": True},
                               "teams.0")]:
        r = c.put(path, headers=h, json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (path, r.text)
    r = c.post("/api/config/teams", headers={**h, "Content-Type": "application/json"}, content=b"[1, 2]")
    assert r.status_code == 422
    # nothing but audit entries was written by the refused requests
    after = ok(c.get(f"/api/changes?after={before}&limit=10000", headers=h))["entries"]
    assert {e["tbl"] for e in after} <= {"audit_log"}


@pytest.mark.req("SITE-01", "FO-03")
def test_settings_sections_and_write_only_psk(rs_site):
    c, h = rs_site.c, rs_site.sh
    assert ok(c.get("/api/config/settings/jump-clients", headers=h))["connection_rate_per_second"] == 50
    ok(c.put("/api/config/settings/jump-clients", headers=h, json={"connection_rate_per_second": 300}))
    sec = ok(c.put("/api/config/settings/security", headers=h, json={"password_min_length": 14,
                                                                      "rep_allowed_networks": ["10.0.0.0/8"]}))
    assert sec["password_min_length"] == 14 and sec["lockout_threshold"] == 5
    fo = ok(c.put("/api/config/settings/failover", headers=h, json={
        "enabled": True, "role": "primary", "peer_host": "backup.example.com", "primary_timeout_seconds": 30,
        "connectivity_test_ips": ["192.0.2.1"], "shared_ips": ["192.0.2.100"]}))
    assert fo["peer_host"] == "backup.example.com"
    psk = "p" * 40
    assert ok(c.put("/api/config/settings/inter-appliance-psk", headers=h, json={"psk": psk})) == {"psk_set": True}
    assert ok(c.get("/api/config/settings/inter-appliance-psk", headers=h)) == {"psk_set": True}
    assert ok(c.put("/api/config/settings/inter-appliance-psk", headers=h, json={"psk_set": True}))["psk_set"]
    changes = str(ok(c.get("/api/changes?after=0&limit=10000", headers=h)))
    # each appliance of a pair keeps its own key: never in the change log, so never synced (FO-03); it is in
    # the site database's table (not sealed per appliance), so it travels with site backups (BK-08)
    assert psk not in changes and "inter_appliance_psk" not in changes
    assert psk not in str(ok(c.get("/api/reporting/audit?limit=1000", headers=h)))


@pytest.mark.req("SITE-01", "SEC-01")
def test_user_accounts_teams_enable_disable_last_login(rs_site):
    c, h = rs_site.c, rs_site.sh
    ok(c.post("/api/users", headers=h, json={"username": "dave", "password": "Initial-pass-1"}), 201)
    ok(c.post("/api/config/teams", headers=h, json={"name": "Tier 2"}), 201)
    tok = site_token(c, "dave", "Initial-pass-1")
    ok(c.post("/api/session/password", headers={"Authorization": f"Bearer {tok}"},
               json={"current_password": "Initial-pass-1", "new_password": "Dave-pass-123"}))
    u = ok(c.get("/api/users/dave", headers=h))
    assert u["last_login_at"] and u["enabled"] and u["teams"] == []
    u = ok(c.put("/api/users/dave", headers=h, json={"display_name": "Dave D", "email": "dave@example.com",
                                                       "enabled": False, "teams": ["Tier 2"]}))
    assert u["teams"] == ["Tier 2"] and u["enabled"] is False
    assert c.get("/api/me", headers={"Authorization": f"Bearer {tok}"}).status_code == 401  # sessions ended
    assert c.post("/api/session", json={"username": "dave", "password": "Dave-pass-123"}).status_code == 401
    assert ok(c.get("/api/config/teams/Tier 2", headers=h))["members"] == [{"username": "dave", "role": "member"}]
    assert c.put("/api/users/admin", headers=h, json={"display_name": "A", "enabled": False,
                                                       "is_admin": True}).status_code == 409
    assert c.delete("/api/users/admin", headers=h).status_code == 409
    ok(c.delete("/api/users/dave", headers=h))
    assert c.get("/api/config/teams/Tier 2", headers=h).json()["members"] == []


# one request per endpoint, with the permission it needs (SEC-05)
def _endpoints():
    return [
        ("GET", "/api/users/admin", None, "users:manage"),
        ("PUT", "/api/users/perm-target", {"display_name": "P", "enabled": True}, "users:manage"),
        ("GET", "/api/config/teams", None, "users:manage"),
        ("POST", "/api/config/teams", {"name": "perm-team"}, "users:manage"),
        ("GET", "/api/config/jumpoints", None, "config:read"),
        ("POST", "/api/config/jumpoints", {"name": "perm-jp", "hostname": "jp.example"}, "config:write"),
        ("PUT", "/api/config/jumpoints/perm-jp", {"hostname": "jp2.example"}, "config:write"),
        ("GET", "/api/config/jumpoints/perm-jp", None, "config:read"),
        ("DELETE", "/api/config/jumpoints/perm-jp", None, "config:write"),
        ("GET", "/api/config/settings/security", None, "config:read"),
        ("PUT", "/api/config/settings/security", {"lockout_threshold": 7}, "config:write"),
        ("GET", "/api/config/canned-messages", None, "config:read"),
        ("POST", "/api/config/canned-messages", {"name": "perm-cm", "body": "Hi"}, "config:write"),
        ("GET", "/api/files", None, "config:read"),
        ("PUT", "/api/files/perm.txt", b"hello", "config:write"),
        ("GET", "/api/files/perm.txt", None, "config:read"),
        ("DELETE", "/api/files/perm.txt", None, "config:write"),
        ("GET", "/api/reporting/sessions", None, "reporting"),
        ("GET", "/api/reporting/team-activity", None, "reporting"),
        ("GET", "/api/reporting/event-deliveries", None, "reporting"),
        ("POST", "/api/command/sessions", {"rep": "admin"}, "command"),
        ("GET", "/api/changes", None, "backup"),
    ]


@pytest.mark.req("SEC-05", "SITE-06")
def test_every_site_data_endpoint_checks_its_permission(rs_site):
    c, h = rs_site.c, rs_site.sh
    ok(c.post("/api/users", headers=h, json={"username": "perm-target", "password": "Initial-pass-1"}), 201)
    perms = ("backup", "command", "reporting", "config:read", "config:write", "users:manage")
    headers = {}
    for perm in perms:
        acct = ok(c.post("/api/api-accounts", headers=h, json={"name": f"scope-{perm.replace(':', '-')}",
                                                                "permissions": [perm]}), 201)
        headers[perm] = {"Authorization": f"Bearer {api_token(c, acct['client_id'], acct['client_secret'])}"}
    for method, path, body, needed in _endpoints():
        for perm in perms:
            if perm == needed:
                continue
            seq = ok(c.get("/api/changes?limit=1", headers=h))["last_seq"]
            kw = {"content": body} if isinstance(body, bytes) else {"json": body}
            r = c.request(method, path, headers=headers[perm], **kw)
            assert r.status_code == 403 and needed in r.json()["message"], (perm, method, path, r.text)
            # nothing changed (the refusal writes no site data, not even an audit entry)
            assert ok(c.get("/api/changes?limit=1", headers=h))["last_seq"] == seq, (perm, method, path)
        kw = {"content": body} if isinstance(body, bytes) else {"json": body}
        r = c.request(method, path, headers=headers[needed], **kw)
        assert r.status_code in (200, 201), (needed, method, path, r.text)


def _concrete(path: str) -> str:
    if path.startswith("/config/languages/"):
        path = path.replace("{name}", "xx-XX")
    return (path.replace("{username}", "nobody-here").replace("{name}", "perm-probe.bin")
            .replace("{lsid}", "0" * 32).replace("{rec_id}", "999999").replace("{kind}", "session"))


@pytest.mark.req("SEC-05")
def test_each_site_data_endpoint_is_open_to_exactly_one_scope(rs_site):
    """Generated from the OpenAPI description: every site-data endpoint
    answers 403 to every single-permission account but one, and the refused
    calls change nothing."""
    c, h = rs_site.c, rs_site.sh
    from tether.web import site_data_api, site_history_api

    mine = {(m, r.path) for mod in (site_data_api, site_history_api) for r in mod.router.routes for m in getattr(r, "methods", ())}
    spec = c.get("/api/openapi.json").json()["paths"]
    routes = [(m.upper(), p) for p, ops in spec.items() for m in ops if (m.upper(), p) in mine]
    assert len(routes) >= 60
    perms = ("backup", "command", "reporting", "config:read", "config:write", "users:manage")
    headers = {}
    for perm in perms:
        acct = ok(c.post("/api/api-accounts", headers=h, json={"name": f"one-{perm.replace(':', '-')}",
                                                                "permissions": [perm]}), 201)
        headers[perm] = {"Authorization": f"Bearer {api_token(c, acct['client_id'], acct['client_secret'])}"}
    seq = ok(c.get("/api/changes?limit=1", headers=h))["last_seq"]
    allowed: dict = {}

    def probe(method, path, perm):
        body = {"json": {}} if method in ("POST", "PUT") and "files" not in path and "logo" not in path \
            and "recordings" not in path else {"content": b""}
        return c.request(method, "/api" + _concrete(path), headers=headers[perm], **body)

    with ThreadPoolExecutor(6) as pool:
        for method, path in routes:  # one route at a time, its six scopes at once
            for perm, r in zip(perms, pool.map(lambda p: probe(method, path, p), perms)):
                assert r.status_code != 500, (method, path, perm, r.text)
                if r.status_code != 403:
                    allowed.setdefault((method, path), []).append(perm)
    # the refused calls wrote nothing but audit entries of the allowed ones
    wrong = {k: v for k, v in allowed.items() if len(v) != 1}
    assert not wrong and len(allowed) == len(routes), wrong or set(routes) - set(allowed)
    after = ok(c.get(f"/api/changes?after={seq}&limit=10000", headers=h))["entries"]
    assert all(e["tbl"] in ("audit_log", "site_settings", "store_files") for e in after)
    c.delete("/api/files/perm-probe.bin", headers=h)
