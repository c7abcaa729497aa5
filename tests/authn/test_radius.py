"""The RADIUS security provider against a real FreeRADIUS (Debian ``freeradius``) with a users file:
Access-Accept logs a user in to /login, the API session and ``tether-rep`` with the group policy of
their Class; Access-Reject refuses; Access-Challenge (a one-time code) is answered on the HTML login,
the API and the rep console; a reply with a wrong authenticator and an unreachable server are no
answer (skipped, audited) and never lock out the local admin."""

from __future__ import annotations

import json
import os
import re
import socket
import threading

import pytest

from tests.helpers import NEW_SITE_PASSWORD, ok

from . import radiusd as R
from .conftest import api_login, audit, group_policy, html_login, rep

IP, FORGER_IP = "127.0.21.2", "127.0.21.3"  # this module's servers; no other test uses 127.0.21.x
SECRET = "Radius-shared-secret-1"
CAROL, OTTO, CODE = "Carol-pass-1", "Otto-pass-1", "123456"
USERS = f'''carol\tCleartext-Password := "{CAROL}"
\tClass = "support"

otto\tCleartext-Password := "{OTTO}", State !* ANY, Response-Packet-Type := Access-Challenge
\tReply-Message = "Enter the one-time code from your token", State = 0x6f74702d31

otto\tState == 0x6f74702d31, Cleartext-Password := "{CODE}"
\tClass = "support"

erin\tCleartext-Password := "Erin-pass-1"
\tClass = "auditors"
'''

pytestmark = pytest.mark.skipif(not R.available(), reason="freeradius is not installed (scripts/install-system-deps)")


@pytest.fixture(scope="module")
def radius(tmp_path_factory):
    r = R.Radiusd(tmp_path_factory.mktemp("radiusd"), IP, SECRET, USERS).start()
    yield r
    r.stop()


@pytest.fixture
def forger():
    """A UDP server that answers every Access-Request with an Access-Accept whose Response
    Authenticator is random (what a spoofer without the shared secret can send)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((FORGER_IP, 0))
    s.settimeout(0.2)
    stop = threading.Event()
    seen = []

    def serve():
        while not stop.is_set():
            try:
                data, addr = s.recvfrom(4096)
            except socket.timeout:
                continue
            seen.append(data)
            s.sendto(bytes([2, data[1], 0, 20]) + os.urandom(16), addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield s.getsockname()[1], seen
    stop.set()
    t.join(5)
    s.close()


def configure(c, h, r: R.Radiusd, **over) -> None:
    body = {"name": "radius", "kind": "radius", "host": IP, "port": r.port, "radius_secret": SECRET,
            "nas_identifier": "tether-test", "timeout_seconds": 2, "priority": 10, **over}
    ok(c.post("/api/config/security-providers", headers=h, json=body), 201)
    group_policy(c, h, "radius", ["jump.use"])


@pytest.mark.req("SITE-01", "CL-01", "SEC-01")
def test_access_accept_and_reject_on_login_api_and_rep(ready_site, radius, tmp_path):
    a, c, _ah, h = ready_site
    configure(c, h, radius)
    stored = ok(c.get("/api/config/security-providers/radius", headers=h))
    assert stored["radius_secret_set"] and "radius_secret" not in stored and stored["bind_dn"] == "tether-test"

    r = ok(api_login(c, "carol", CAROL))
    assert (r["provider"], r["groups"], r["group_policies"]) == ("radius", ["support"], ["Support reps"])
    assert r["rep_permissions"] == ["jump.use"]
    assert api_login(c, "carol", "not-carols").status_code == 401  # Access-Reject

    resp, browser = html_login(a, "carol", CAROL)
    assert resp.status_code == 303 and resp.headers["location"] == "/login/status", resp.text
    assert "secure" in resp.headers["set-cookie"].lower()
    browser.close()

    listed = rep(a, c, h, tmp_path, "carol", CAROL, "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    refused = rep(a, c, h, tmp_path, "erin", "Erin-pass-1", "list")
    assert refused.returncode == 3 and "jump.use" in refused.stderr, refused.stderr

    test = ok(c.post("/api/config/security-providers/radius/test", headers=h,
                     json={"username": "carol", "password": "wrong"}))
    assert test["outcome"] == "refused" and [s["step"] for s in test["steps"]] == ["request", "reject"]
    assert "answered Access-Reject" in test["steps"][0]["detail"]
    assert {(e["actor"], e["details"].get("provider")) for e in audit(c, h, "login")} >= {("carol", "radius")}


@pytest.mark.req("SITE-01", "CL-01", "SEC-01")
def test_access_challenge_one_time_code_on_html_api_and_rep(ready_site, radius, tmp_path):
    a, c, _ah, h = ready_site
    configure(c, h, radius)

    # the HTML login asks for the code on the same form, then logs in
    resp, browser = html_login(a, "otto", OTTO)
    assert resp.status_code == 200 and "Enter the one-time code from your token" in resp.text, resp.text
    assert "tether_site=" not in resp.headers.get("set-cookie", "")
    token = re.search(r'name="challenge" value="([^"]+)"', resp.text).group(1)
    csrf_pre = re.search(r'name="csrf_token" value="([^"]+)"', resp.text).group(1)
    forged = browser.post("/login", data={"username": "otto", "challenge": token, "response": CODE})
    assert forged.status_code == 403 and "CSRF" in forged.text  # the code's form is CSRF-protected too
    done = browser.post("/login", data={"csrf_token": csrf_pre, "username": "otto", "challenge": token,
                                        "response": CODE})
    assert done.status_code == 303 and done.headers["location"] == "/login/status", done.text
    again = browser.post("/login", data={"csrf_token": csrf_pre, "username": "otto", "challenge": token,
                                         "response": CODE})
    assert again.status_code == 401 and "expired or was already answered" in again.text  # one use only
    browser.close()

    # the API: 401 challenge_required with a token, then the code
    first = c.post("/api/session", json={"username": "otto", "password": OTTO})
    assert first.status_code == 401 and first.json()["error"] == "challenge_required", first.text
    wrong = c.post("/api/session", json={"username": "otto", "password": "000000",
                                         "challenge": first.json()["challenge"]})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    first = c.post("/api/session", json={"username": "otto", "password": OTTO})
    r = ok(c.post("/api/session", json={"username": "otto", "password": CODE, "challenge": first.json()["challenge"]}))
    assert r["provider"] == "radius" and r["group_policies"] == ["Support reps"]

    # the rep console: the challenge frame, answered from TETHER_OTP
    os.environ["TETHER_OTP"] = CODE
    try:
        listed = rep(a, c, h, tmp_path, "otto", OTTO, "list", "--json")
        os.environ["TETHER_OTP"] = "999999"
        refused = rep(a, c, h, tmp_path, "otto", OTTO, "list")
    finally:
        del os.environ["TETHER_OTP"]
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert json.loads(listed.stdout) == {"jump_clients": [], "jumpoints": []}
    assert refused.returncode == 3 and "refused the login" in refused.stderr, refused.stderr


@pytest.mark.req("SITE-01", "SEC-01")
def test_wrong_authenticator_and_unreachable_server_are_no_answer(ready_site, radius, forger):
    a, c, _ah, h = ready_site
    port, seen = forger
    configure(c, h, radius, name="radius", host=FORGER_IP, port=port, timeout_seconds=1)
    assert api_login(c, "carol", CAROL).status_code == 401
    assert seen, "the forger got no Access-Request"
    test = ok(c.post("/api/config/security-providers/radius/test", headers=h,
                     json={"username": "carol", "password": CAROL}))
    assert test["outcome"] == "unavailable" and "wrong authenticator" in test["steps"][0]["detail"]
    reasons = [e["details"]["reason"] for e in audit(c, h, "authn.provider_unavailable") if e["target"] == "radius"]
    assert reasons and "wrong authenticator" in reasons[0] and SECRET not in json.dumps(reasons)
    # the local admin does not depend on the provider
    assert ok(api_login(c, "admin", NEW_SITE_PASSWORD))["provider"] == "local"

    # servers in order of preference: the forger first, the real server second
    ok(c.put("/api/config/security-providers/radius", headers=h, json={
        "name": "radius", "kind": "radius", "host": f"{FORGER_IP},{IP}", "port": radius.port,
        "timeout_seconds": 1}))  # the secret is kept; the forger does not listen on this port: no answer
    assert ok(api_login(c, "carol", CAROL))["provider"] == "radius"
