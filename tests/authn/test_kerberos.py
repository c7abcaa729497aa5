"""The Kerberos security provider against a real MIT KDC (Debian ``krb5-kdc``): the service
principal's keytab (made with ``kadmin.local ktadd``) is installed in the site; a user gets a ticket
with ``kinit`` and curl logs in to /login/negotiate with SPNEGO (``Authorization: Negotiate``),
getting the group policy of the user's group in the site's LDAP directory (a real slapd); without a
ticket, or with a ticket of another realm's key, the form and the other providers are the fallback."""

from __future__ import annotations

import base64
import importlib.util
import json
import hashlib
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.helpers import NEW_SITE_PASSWORD, free_port, ok, run_cli

from . import kdc as K
from . import slapd as S
from .conftest import SITE_HOST, api_login, audit, csrf, group_policy, html_login, rep

KDC_IP, LDAP_IP, OTHER_KDC_IP = "127.0.21.4", "127.0.21.5", "127.0.21.6"  # no other test uses 127.0.21.x
IVY, JO, KIM = "Ivy-pass-1", "Jo-pass-1", "Kim-pass-1"

pytestmark = pytest.mark.skipif(not (K.available() and S.available() and importlib.util.find_spec("gssapi")),
                                reason="krb5-kdc, slapd or gssapi is not installed (scripts/install-system-deps, "
                                       "scripts/bootstrap test)")


@pytest.fixture(scope="module")
def kdc(tmp_path_factory):
    k = K.Kdc(tmp_path_factory.mktemp("kdc"), KDC_IP, SITE_HOST).start()
    k.add_user("ivy", IVY)
    k.add_user("jo", JO)
    yield k
    k.stop()


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    d = S.Slapd(tmp_path_factory.mktemp("slapd"), LDAP_IP,
                S.person("ivy", "Ivy-ldap-pass-1", "Ivy Ng") + S.group("support", "ivy")).start()
    yield d
    d.stop()


def spki_pin(cert_path: str) -> str:
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def curl_negotiate(a, env: dict, tmp_path) -> tuple[int, dict, str]:
    """curl (GSS-API/SPNEGO build) opens /login/negotiate by the site's hostname with the user's
    ticket cache: (status of the last answer, its headers, its body)."""
    port = httpx.URL(a.url).port
    headers, body = tmp_path / "headers", tmp_path / "body"
    r = subprocess.run(["curl", "-sS", "--negotiate", "-u", ":", "-k", "--pinnedpubkey", spki_pin(a.cert_path),
                        "--resolve", f"{SITE_HOST}:{port}:127.0.0.1", "-D", str(headers), "-o", str(body),
                        "-w", "%{http_code}", f"https://{SITE_HOST}:{port}/login/negotiate"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    last = [b for b in headers.read_text().split("\r\n\r\n") if b.strip()][-1]  # the final answer's headers
    h = {}
    for line in last.splitlines()[1:]:
        k, _, v = line.partition(":")
        h.setdefault(k.strip().lower(), []).append(v.strip())
    return int(r.stdout), h, body.read_text()


def configure(c, h, kdc: K.Kdc, directory: S.Slapd, keytab: bytes | None = None, kdc_host: bool = False) -> None:
    """corp-sso (Kerberos; with ``kdc_host`` it names the KDC, so passwords are checked there too),
    corp (LDAP: the groups) and the group policy of corp's group support."""
    ok(c.post("/api/config/security-providers", headers=h, json={
        "name": "corp-sso", "kind": "kerberos", "realm": K.REALM, "priority": 5,
        **({"host": kdc.ip, "port": kdc.port} if kdc_host else {}),
        "keytab": base64.b64encode(keytab or kdc.keytab.read_bytes()).decode()}), 201)
    ok(c.post("/api/config/security-providers", headers=h, json={
        "name": "corp", "kind": "ldap", "host": LDAP_IP, "port": directory.port, "tls_mode": "starttls",
        "ca_certificate": directory.ca.read_text(), "bind_dn": S.READER_DN, "bind_password": S.READER_PW,
        "search_base": S.SUFFIX, "user_filter": "(objectClass=inetOrgPerson)", "attr_username": "uid",
        "attr_display_name": "displayName", "attr_groups": "member", "priority": 10}), 201)
    group_policy(c, h, "corp", ["jump.use"])


@pytest.mark.req("SITE-01", "SEC-01")
def test_kinit_then_negotiate_logs_in_with_the_directory_group_policy(ready_site, kdc, directory, tmp_path):
    a, c, _ah, h = ready_site
    configure(c, h, kdc, directory)
    stored = ok(c.get("/api/config/security-providers/corp-sso", headers=h))
    assert stored["keytab_set"] and "keytab" not in stored
    assert 'id="login-kerberos"' in c.get("/login").text

    env = kdc.kinit("ivy", IVY, tmp_path / "ivy.ccache")
    status, headers, _body = curl_negotiate(a, env, tmp_path)
    assert status == 303 and headers["location"] == ["/login/status"], (status, headers)
    cookie = next(v for v in headers["set-cookie"] if v.startswith("tether_site="))
    assert "secure" in cookie.lower() and "httponly" in cookie.lower()
    assert headers["www-authenticate"][0].startswith("Negotiate ")  # mutual authentication answer
    session = cookie.split(";")[0].split("=", 1)[1]
    with a.client(follow_redirects=False) as browser:
        browser.cookies.set("tether_site", session)
        assert browser.get("/login/status").status_code == 200
    user = ok(c.get("/api/users/ivy", headers=h))
    assert user["display_name"] == "Ivy Ng" and not user["is_admin"]
    entry = [e for e in audit(c, h, "login") if e["actor"] == "ivy"]
    assert entry and entry[0]["details"]["provider"] == "corp-sso"

    # the same site user logs in by form through LDAP, with the same group policy
    r = ok(api_login(c, "ivy", "Ivy-ldap-pass-1"))
    assert r["provider"] == "corp" and r["group_policies"] == ["Support reps"]

    # the test action checks the keytab
    test = ok(c.post("/api/config/security-providers/corp-sso/test", headers=h, json={"username": "x", "password": ""}))
    assert test["ok"], json.dumps(test)
    assert test["steps"][0]["step"] == "keytab" and K.REALM in test["steps"][0]["detail"]


@pytest.mark.req("SITE-01", "SEC-01")
def test_no_ticket_or_a_ticket_for_another_key_falls_back_to_the_form(ready_site, kdc, directory, tmp_path):
    a, c, _ah, h = ready_site
    # a keytab with another key for the same service principal: tickets from the KDC do not decrypt
    other = tmp_path / "other.keytab"
    kdc.kadmin(f"ktadd -k {other} {kdc.service}")  # re-keys the service: the KDC now issues the new key
    configure(c, h, kdc, directory, keytab=kdc.keytab.read_bytes())  # the site holds the old, stale key
    env = kdc.kinit("jo", JO, tmp_path / "jo.ccache")
    status, headers, body = curl_negotiate(a, env, tmp_path)
    assert status == 401 and "tether_site=" not in " ".join(headers.get("set-cookie", []))
    assert 'id="login-form"' in body and "was not accepted" in body, body
    failed = [e for e in audit(c, h, "login.failed") if e["details"].get("provider") == "kerberos"]
    assert failed

    # with the right keytab it works; a browser without a ticket gets the challenge and the form
    ok(c.put("/api/config/security-providers/corp-sso", headers=h, json={
        "name": "corp-sso", "kind": "kerberos", "realm": K.REALM, "priority": 5,
        "keytab": base64.b64encode(other.read_bytes()).decode()}))
    status, _headers, _body = curl_negotiate(a, kdc.kinit("jo", JO, tmp_path / "jo2.ccache"), tmp_path)
    assert status == 303
    none = c.get("/login/negotiate")
    assert none.status_code == 401 and none.headers["www-authenticate"] == "Negotiate"
    assert 'id="login-form"' in none.text
    bad = c.get("/login/negotiate", headers={"Authorization": "Negotiate !!!not-base64"})
    assert bad.status_code == 400 and 'id="login-form"' in bad.text
    junk = c.get("/login/negotiate", headers={"Authorization": "Negotiate " + base64.b64encode(b"junk" * 8).decode()})
    assert junk.status_code == 401 and "was not accepted" in junk.text
    resp, browser = html_login(a, "ivy", "Ivy-ldap-pass-1")  # the form: LDAP is the fallback
    assert resp.status_code == 303, resp.text
    browser.close()


@pytest.mark.req("SITE-01", "CL-01", "SEC-01")
def test_kerberos_password_logs_in_to_the_api_and_the_rep_console_with_the_directory_group_policy(
        ready_site, kdc, directory, tmp_path):
    a, c, _ah, h = ready_site
    fresh = tmp_path / "fresh.keytab"
    kdc.kadmin(f"ktadd -k {fresh} {kdc.service}")  # the service's current key (earlier tests re-key it)
    configure(c, h, kdc, directory, keytab=fresh.read_bytes(), kdc_host=True)

    # the API session: the KDC checks ivy's Kerberos password (not her LDAP one); LDAP tells her groups
    r = ok(api_login(c, "ivy", IVY))
    assert r["provider"] == "corp-sso" and r["groups"] == ["support"] and r["group_policies"] == ["Support reps"]
    assert r["rep_permissions"] == ["jump.use"]
    assert ok(c.get("/api/me", headers={"Authorization": f"Bearer {r['token']}"}))["name"] == "ivy"
    assert ok(c.get("/api/users/ivy", headers=h))["display_name"] == "Ivy Ng"
    # the representative console, with the group policy's jump.use
    listed = rep(a, c, h, tmp_path, "ivy", IVY, "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert json.loads(listed.stdout) == {"jump_clients": [], "jumpoints": []}
    # the /login form too
    resp, browser = html_login(a, "ivy", IVY)
    assert resp.status_code == 303 and resp.headers["location"] == "/login/status", resp.text
    browser.close()
    # jo: a principal the directory does not know; logged in, but no group, so no policy
    r = ok(api_login(c, "jo", JO))
    assert r["provider"] == "corp-sso" and r["groups"] == [] and r["group_policies"] == []
    no_policy = rep(a, c, h, tmp_path, "jo", JO, "list")
    assert no_policy.returncode == 3 and "jump.use" in no_policy.stderr, no_policy.stdout + no_policy.stderr
    # wrong passwords are refused on both faces; so is a principal of another realm (4 failures from
    # this address in all: one less than the throttle's lock-out)
    wrong = rep(a, c, h, tmp_path, "ivy", "not-her-password", "list")
    assert wrong.returncode == 3 and "refused the login" in wrong.stderr, wrong.stderr
    assert api_login(c, "jo", "not-his-password").status_code == 401
    assert api_login(c, "jo@OTHER.TEST", JO).status_code == 401
    logins = {(e["actor"], e["details"].get("provider")) for e in audit(c, h, "login")}
    assert {("ivy", "corp-sso"), ("jo", "corp-sso")} <= logins
    assert len([e for e in audit(c, h, "login.failed") if e["actor"] == "jo"]) == 1
    assert not [e for e in audit(c, h, "authn.provider_unavailable") if e["target"] == "corp-sso"]

    # the test action: each step of the password login, on the API, the page and the CLI
    t = ok(c.post("/api/config/security-providers/corp-sso/test", headers=h,
                  json={"username": "ivy", "password": IVY}))
    assert t["ok"] and t["outcome"] == "ok", json.dumps(t)
    assert [s["step"] for s in t["steps"]] == ["keytab", "negotiate", "kdc", "password", "verify", "groups"]
    assert kdc.service in t["steps"][4]["detail"] and "support" in t["steps"][5]["detail"]
    assert t["user"]["groups"] == ["support"]
    t = ok(c.post("/api/config/security-providers/corp-sso/test", headers=h,
                  json={"username": "ivy", "password": "wrong"}))
    assert not t["ok"] and t["outcome"] == "refused" and t["steps"][-1]["step"] == "password", json.dumps(t)
    resp, browser = html_login(a, "admin", NEW_SITE_PASSWORD)
    page = "/login/config/security-providers/corp-sso"
    r = browser.post(page + "/test", data={"csrf_token": csrf(browser, page), "test_username": "jo",
                                           "test_password": JO})
    assert r.status_code == 200 and 'id="test-report"' in r.text and "passed" in r.text, r.text
    assert f"the KDC accepted the password of jo@{K.REALM}" in r.text
    assert browser.post(page + "/test", data={"test_username": "jo", "test_password": JO}).status_code == 403
    browser.close()
    env = {**os.environ, "TETHER_PASSWORD": NEW_SITE_PASSWORD, "TETHER_TEST_PASSWORD": IVY}
    out = run_cli("config", "test-provider", "corp-sso", "--username", "ivy", "--url", a.url,
                  "--pin-cert", a.cert_path, "--user", "admin", env=env)
    assert out.returncode == 0 and "ok     verify" in out.stdout and "result: passed (ok)" in out.stdout, \
        out.stdout + out.stderr
    assert all(IVY not in json.dumps(e) and JO not in json.dumps(e) for e in audit(c, h, "config.security-providers.test"))

    # a second Kerberos provider, of another realm with its own KDC, in the same appliance: each
    # provider's check uses its own realm and KDC (kim is unknown to the first realm: the next is asked)
    (tmp_path / "other-kdc").mkdir()
    other = K.Kdc(tmp_path / "other-kdc", OTHER_KDC_IP, SITE_HOST, realm="OTHER.TEST")
    try:
        other.start()
        other.add_user("kim", KIM)
        ok(c.post("/api/config/security-providers", headers=h, json={
            "name": "other-sso", "kind": "kerberos", "realm": "OTHER.TEST", "priority": 6, "host": other.ip,
            "port": other.port, "keytab": base64.b64encode(other.keytab.read_bytes()).decode()}), 201)
        r = ok(api_login(c, "kim", KIM))
        assert r["provider"] == "other-sso" and r["groups"] == [] and r["group_policies"] == []
        assert ok(api_login(c, "ivy", IVY))["provider"] == "corp-sso"
    finally:
        other.stop()
    ok(c.delete("/api/config/security-providers/other-sso", headers=h))

    # a KDC that says yes is not enough: with a keytab the KDC's ticket does not decrypt with (as from a
    # forged KDC), the right password does not log in, and the provider is audited as unavailable
    ok(c.put("/api/config/security-providers/corp-sso", headers=h, json={
        "name": "corp-sso", "kind": "kerberos", "realm": K.REALM, "priority": 5, "host": kdc.ip, "port": kdc.port,
        "keytab": base64.b64encode(kdc.keytab.read_bytes()).decode()}))  # the key of before the re-keying
    assert api_login(c, "jo", JO).status_code == 401
    skipped = [e for e in audit(c, h, "authn.provider_unavailable") if e["target"] == "corp-sso"]
    assert skipped and "does not verify with the keytab" in skipped[0]["details"]["reason"], skipped
    # an unreachable KDC: the provider is skipped with the reason, and the next provider (LDAP) answers
    ok(c.put("/api/config/security-providers/corp-sso", headers=h, json={
        "name": "corp-sso", "kind": "kerberos", "realm": K.REALM, "priority": 5, "host": kdc.ip,
        "port": free_port(kdc.ip), "keytab": base64.b64encode(fresh.read_bytes()).decode()}))
    assert ok(api_login(c, "ivy", "Ivy-ldap-pass-1"))["provider"] == "corp"
    reasons = [e["details"]["reason"] for e in audit(c, h, "authn.provider_unavailable") if e["target"] == "corp-sso"]
    assert len(reasons) == 2 and "no KDC of the realm answered" in reasons[0], reasons
    t = ok(c.post("/api/config/security-providers/corp-sso/test", headers=h, json={"username": "ivy", "password": IVY}))
    assert t["outcome"] == "unavailable" and t["steps"][-1]["step"] == "kdc" and not t["steps"][-1]["ok"], t

    # throttling counts each refused attempt once, whichever provider refused: the fifth failure from
    # this address locks it out, and then even the right password waits
    assert api_login(c, "jo", "still-not-his-password").status_code == 401
    locked = api_login(c, "ivy", "Ivy-ldap-pass-1")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
