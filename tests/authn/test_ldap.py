"""The LDAP security provider against a real OpenLDAP (Debian ``slapd``) over StartTLS with a test
CA: directory users log in to /login, the API session and ``tether-rep`` and get the group policy of
their directory group; users disabled or removed in the directory are refused; wrong passwords,
filter injection, an untrusted certificate and an unreachable server are refused or skipped with an
audit entry, and never lock out the local admin; the provider's "test" action (API, page, CLI)
reports each step."""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers import NEW_SITE_PASSWORD, first_admin_login, first_site_login, ok, run_cli, site_token

from . import slapd as S
from .conftest import api_login, audit, csrf, group_policy, html_login, rep

IP = "127.0.21.1"  # this module's directory server; no other test uses 127.0.21.x
DANA, ERIN, GUS, HAL, FRANK = "Dana-pass-1", "Erin-pass-1", "Gus-pass-1", "Hal-pass-1", "Frank-dir-pass-1"
IVAN = "Ivan-pass-1"

pytestmark = pytest.mark.skipif(not S.available(), reason="slapd is not installed (scripts/install-system-deps)")


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    people = (S.person("dana", DANA, "Dana Scully") + S.person("erin", ERIN, "Erin Reyes")
              + S.person("gus", GUS, "Gus Grissom") + S.person("hal", HAL, "Hal Jordan")
              + S.person("frank", FRANK, "Frank Directory") + S.person("ivan", IVAN, "Ivan Petrov"))
    groups = S.group("support", "dana", "gus", "hal") + S.group("auditors", "erin")
    d = S.Slapd(tmp_path_factory.mktemp("slapd"), IP, people + groups).start()
    yield d
    d.stop()


def provider(d: S.Slapd, **over) -> dict:
    body = {"name": "corp", "kind": "ldap", "host": IP, "port": d.port, "tls_mode": "starttls",
            "ca_certificate": d.ca.read_text(), "bind_dn": S.READER_DN, "bind_password": S.READER_PW,
            "search_base": S.SUFFIX, "user_filter": "(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))",
            "attr_username": "uid", "attr_display_name": "displayName", "attr_email": "mail",
            "attr_groups": "member", "priority": 10, "timeout_seconds": 3}
    body.update(over)
    return body


def configure(c, h, d: S.Slapd, **over) -> None:
    ok(c.post("/api/config/security-providers", headers=h, json=provider(d, **over)), 201)
    group_policy(c, h, "corp", ["jump.use", "session.start"])


@pytest.mark.req("SITE-01", "CL-01", "SEC-01")
def test_directory_user_logs_in_to_login_api_and_rep_with_group_policy(ready_site, directory, tmp_path):
    a, c, _ah, h = ready_site
    configure(c, h, directory)
    stored = ok(c.get("/api/config/security-providers/corp", headers=h))
    assert stored["bind_password_set"] and stored["keytab_set"] and "bind_password" not in stored

    # the API session: the directory vouches, the group maps to the policy
    r = ok(api_login(c, "dana", DANA))
    assert r["provider"] == "corp" and r["groups"] == ["support"] and r["group_policies"] == ["Support reps"]
    assert r["rep_permissions"] == ["jump.use", "session.start"] and r["must_change_password"] is False
    me = ok(c.get("/api/me", headers={"Authorization": f"Bearer {r['token']}"}))
    assert me == {"realm": "site", "name": "dana", "permissions": []}
    user = ok(c.get("/api/users/dana", headers=h))
    assert user["display_name"] == "Dana Scully" and user["email"] == "dana@tether.test" and not user["is_admin"]

    # the HTML login: a secure session cookie, then the site's pages
    resp, browser = html_login(a, "dana", DANA)
    assert resp.status_code == 303 and resp.headers["location"] == "/login/status", resp.text
    cookie = resp.headers["set-cookie"].lower()
    assert "tether_site=" in cookie and "secure" in cookie and "httponly" in cookie
    assert browser.get("/login/status").status_code == 200
    browser.close()

    # the representative console: the group policy's jump.use lets dana list; erin's group has no policy
    listed = rep(a, c, h, tmp_path, "dana", DANA, "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert json.loads(listed.stdout) == {"jump_clients": [], "jumpoints": []}
    refused = rep(a, c, h, tmp_path, "erin", ERIN, "list")
    assert refused.returncode == 3 and "jump.use" in refused.stderr, refused.stdout + refused.stderr
    wrong = rep(a, c, h, tmp_path, "dana", "not-her-password", "list")
    assert wrong.returncode == 3 and "refused the login" in wrong.stderr, wrong.stderr

    # wrong password on the API and the form; nothing logged in, audited as a failed login
    assert api_login(c, "dana", "not-her-password").status_code == 401
    resp, browser = html_login(a, "dana", "also-wrong")
    assert resp.status_code == 401 and "wrong user name or password" in resp.text and "set-cookie" not in {
        k.lower() for k in resp.headers if resp.headers[k].startswith("tether_site")}
    browser.close()
    logins = audit(c, h, "login")
    assert {(e["actor"], e["details"].get("provider")) for e in logins} >= {("dana", "corp")}
    assert len([e for e in audit(c, h, "rep.login") if e["actor"] == "dana"]) == 1
    assert len([e for e in audit(c, h, "login.failed") if e["actor"] == "dana"]) == 2


@pytest.mark.req("SITE-01", "SEC-01")
def test_disabled_removed_injected_and_local_names_are_refused(ready_site, directory):
    a, c, _ah, h = ready_site
    configure(c, h, directory)
    ok(api_login(c, "gus", GUS))
    ok(api_login(c, "hal", HAL))

    # disabled in the directory (the user filter excludes employeeType=disabled), and removed
    directory.modify(f"dn: uid=gus,ou=people,{S.SUFFIX}\nchangetype: modify\nadd: employeeType\n"
                     "employeeType: disabled\n")
    directory.delete(f"uid=hal,ou=people,{S.SUFFIX}")
    assert api_login(c, "gus", GUS).status_code == 401
    assert api_login(c, "hal", HAL).status_code == 401

    # filter injection: the username is escaped (RFC 4515), so it matches no entry at all
    assert api_login(c, "dana)(uid=*", DANA).status_code == 401
    probe = ok(c.post("/api/config/security-providers/corp/test", headers=h, json={"username": "*", "password": DANA}))
    assert probe["outcome"] == "unknown_user" and "(uid=\\2a)" in probe["steps"][-1]["detail"], probe

    # a local user of the same name is never taken over by the directory
    ok(c.post("/api/users", headers=h, json={"username": "frank", "password": "Frank-local-pass-1"}), 201)
    assert api_login(c, "frank", FRANK).status_code == 401
    assert ok(api_login(c, "frank", "Frank-local-pass-1"))["provider"] == "local"


@pytest.mark.req("SITE-01", "SEC-01")
def test_unreachable_or_untrusted_provider_is_skipped_and_never_locks_out_local_admin(ready_site, directory):
    a, c, _ah, h = ready_site
    dead_port = S.free_port(IP)
    # an unreachable server first, then one whose certificate is not trusted
    ok(c.post("/api/config/security-providers", headers=h,
              json=provider(directory, name="down", port=dead_port, priority=1)), 201)
    ok(c.post("/api/config/security-providers", headers=h,
              json=provider(directory, name="untrusted", ca_certificate=directory.other_ca.read_text(),
                            priority=2)), 201)
    # a directory user cannot get in through a provider that is down or untrusted; both are skipped, audited
    assert api_login(c, "dana", DANA).status_code == 401
    skipped = {e["target"]: e["details"]["reason"] for e in audit(c, h, "authn.provider_unavailable")}
    assert f"cannot reach {IP}:{dead_port}" in skipped["down"]
    assert "not trusted" in skipped["untrusted"]
    assert "secret" not in json.dumps(skipped).lower() and S.READER_PW not in json.dumps(skipped)
    # the local admin is answered by the local users alone: no directory is asked, none can lock it out
    before = len(audit(c, h, "authn.provider_unavailable"))
    assert ok(api_login(c, "admin", NEW_SITE_PASSWORD))["provider"] == "local"
    assert api_login(c, "admin", "a-wrong-one").status_code == 401
    assert len(audit(c, h, "authn.provider_unavailable")) == before

    # a second server listed after the dead one is used (servers in order of preference)
    ok(c.put("/api/config/security-providers/down", headers=h,
             json=provider(directory, name="down", host=f"127.0.21.9,{IP}", port=directory.port, priority=1)))
    assert ok(api_login(c, "dana", DANA))["provider"] == "down"
    steps = ok(c.post("/api/config/security-providers/down/test", headers=h,
                      json={"username": "dana", "password": DANA}))["steps"]
    assert steps[0]["step"] == "connect" and not steps[0]["ok"] and "127.0.21.9" in steps[0]["detail"]
    assert steps[1] == {"step": "connect", "ok": True, "detail": f"reached {IP}:{directory.port}"}

    # bad provider input is refused with the field named, nothing stored
    bad = c.post("/api/config/security-providers", headers=h,
                 json=provider(directory, name="bad", ca_certificate="-----BEGIN CERTIFICATE-----\nnope\n"))
    assert bad.status_code == 422 and "ca_certificate" in bad.text, bad.text
    bad = c.post("/api/config/security-providers", headers=h, json=provider(directory, name="bad2", host="a,,b"))
    assert bad.status_code == 422 and "host" in bad.text, bad.text
    bad = c.post("/api/config/security-providers", headers=h,
                 json=provider(directory, name="bad3", user_filter="(&(objectClass=person)(uid=*)"))
    assert bad.status_code == 422 and bad.json()["field"] == "user_filter", bad.text
    names = {p["name"] for p in ok(c.get("/api/config/security-providers", headers=h))}
    assert names == {"down", "untrusted"}


@pytest.mark.req("SITE-01")
def test_provider_test_action_reports_each_step_on_api_page_and_cli(ready_site, directory):
    a, c, _ah, h = ready_site
    configure(c, h, directory)
    url = "/api/config/security-providers/corp/test"
    good = ok(c.post(url, headers=h, json={"username": "dana", "password": DANA}))
    assert good["ok"] and good["outcome"] == "ok" and good["group_policies"] == ["Support reps"]
    assert [s["step"] for s in good["steps"]] == ["connect", "tls", "bind", "search", "user-bind", "groups"]
    assert good["user"] == {"username": "dana", "display_name": "Dana Scully", "email": "dana@tether.test",
                            "groups": ["support"]}
    # Active Directory's convention: the groups in the user's own memberOf (kept by slapd's memberof overlay
    # for a group added while it runs)
    directory.modify(f"dn: cn=helpdesk,ou=groups,{S.SUFFIX}\nchangetype: add\nobjectClass: groupOfNames\n"
                     f"cn: helpdesk\nmember: uid=ivan,ou=people,{S.SUFFIX}\n")
    ok(c.post("/api/config/security-providers", headers=h,
              json=provider(directory, name="corp-ad", attr_groups="memberOf")), 201)
    ad = ok(c.post("/api/config/security-providers/corp-ad/test", headers=h, json={"username": "ivan", "password": IVAN}))
    assert ad["ok"] and ad["user"]["groups"] == ["helpdesk"] and ad["steps"][-1]["detail"] == "memberOf: helpdesk"
    wrong = ok(c.post(url, headers=h, json={"username": "dana", "password": "nope"}))
    assert not wrong["ok"] and wrong["outcome"] == "refused"
    assert wrong["steps"][-1]["step"] == "user-bind" and "refused the password" in wrong["steps"][-1]["detail"]
    unknown = ok(c.post(url, headers=h, json={"username": "nobody", "password": "x"}))
    assert unknown["outcome"] == "unknown_user" and "no entry matches" in unknown["steps"][-1]["detail"]
    assert c.post(url, headers=h, json={"username": ""}).status_code == 422
    assert c.post("/api/config/security-providers/none/test", headers=h,
                  json={"username": "dana", "password": DANA}).status_code == 404
    # a user without config:write may not use it
    ok(c.post("/api/users", headers=h, json={"username": "viewer", "password": "Viewer-pass-1",
                                             "permissions": ["config:read"]}), 201)
    vt = ok(api_login(c, "viewer", "Viewer-pass-1"))["token"]
    ok(c.post("/api/session/password", headers={"Authorization": f"Bearer {vt}"},
              json={"current_password": "Viewer-pass-1", "new_password": "Viewer-pass-2-long"}))
    assert c.post(url, headers={"Authorization": f"Bearer {vt}"},
                  json={"username": "dana", "password": DANA}).status_code == 403
    # untrusted certificate, in words
    ok(c.post("/api/config/security-providers", headers=h,
              json=provider(directory, name="untrusted", ca_certificate=directory.other_ca.read_text())), 201)
    bad = ok(c.post("/api/config/security-providers/untrusted/test", headers=h,
                    json={"username": "dana", "password": DANA}))
    assert bad["outcome"] == "unavailable" and bad["steps"][-1]["step"] == "tls"
    assert "not trusted" in bad["steps"][-1]["detail"]

    # the page: a provider created through the form (the CA pasted as PEM), then tested there
    resp, browser = html_login(a, "admin", NEW_SITE_PASSWORD)
    form = {k: str(v) for k, v in provider(directory, name="corp-form").items()}
    r = browser.post("/login/config/security-providers",
                     data={"csrf_token": csrf(browser, "/login/config/security-providers"), **form})
    assert r.status_code == 200 and "<textarea" in browser.get("/login/config/security-providers/corp-form").text
    assert S.READER_PW not in browser.get("/login/config/security-providers/corp-form").text
    page = "/login/config/security-providers/corp-form"
    r = browser.post(page + "/test", data={"csrf_token": csrf(browser, page), "test_username": "dana",
                                           "test_password": DANA})
    assert r.status_code == 200 and 'id="test-report"' in r.text and "passed" in r.text, r.text
    assert "the password of uid=dana,ou=people,dc=tether,dc=test is correct" in r.text
    assert "groups: support; group policies: none" in " ".join(r.text.split())  # Support reps names corp
    assert browser.post(page + "/test", data={"test_username": "dana", "test_password": DANA}).status_code == 403
    browser.close()

    # the CLI
    env = {**os.environ, "TETHER_PASSWORD": NEW_SITE_PASSWORD, "TETHER_TEST_PASSWORD": DANA}
    out = run_cli("config", "test-provider", "corp", "--username", "dana", "--url", a.url,
                  "--pin-cert", a.cert_path, "--user", "admin", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok     user-bind" in out.stdout and "result: passed (ok)" in out.stdout
    out = run_cli("config", "test-provider", "corp", "--username", "dana", "--url", a.url,
                  "--pin-cert", a.cert_path, "--user", "admin", env={**env, "TETHER_TEST_PASSWORD": "wrong"})
    assert out.returncode == 3 and "FAILED user-bind" in out.stdout, out.stdout + out.stderr
    tests = audit(c, h, "config.security-providers.test")
    assert tests and all(DANA not in json.dumps(e) for e in tests)


@pytest.mark.req("SITE-01", "BK-02")
def test_after_a_restore_onto_a_replacement_appliance_directory_users_log_in_with_nothing_reentered(
        ready_site, make_appliance, directory, tmp_path):
    a, c, _ah, h = ready_site
    configure(c, h, directory)
    r = c.post("/api/backup", headers=h, json={"password": "Backup-password-1"})
    assert r.status_code == 200, r.text
    backup = r.content

    b = make_appliance(site=True)  # the replacement: a fresh appliance with its own per-appliance key
    with b.client() as c2:
        first_admin_login(c2)
        h2 = first_site_login(c2)
        r = c2.post("/api/restore", headers=h2, files={"file": ("site.nsb", backup)},
                    data={"password": "Backup-password-1"})
        assert r.status_code == 200, r.text
        h2 = {"Authorization": "Bearer " + site_token(c2)}
        stored = ok(c2.get("/api/config/security-providers/corp", headers=h2))
        assert stored["bind_password_set"] and stored["keytab_set"]
        got = ok(api_login(c2, "dana", DANA))
        assert got["provider"] == "corp" and got["group_policies"] == ["Support reps"]
        check = ok(c2.post("/api/config/security-providers/corp/test", headers=h2,
                           json={"username": "dana", "password": DANA}))
        assert check["ok"] and check["steps"][2] == {"step": "bind", "ok": True, "detail": f"bound as {S.READER_DN}"}
