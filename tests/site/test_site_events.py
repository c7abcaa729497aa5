"""SITE-01 outbound events: a webhook configured through the API really
fires on login and on session start/end, with an HMAC-SHA256 signature a
receiver can verify, and a failed delivery is retried (a real HTTP receiver
on loopback)."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import SmtpSink, wait_for

SECRET = "Webhook-hmac-secret-1"


class Receiver:
    def __init__(self, fail_first: int):
        self.got: list[dict] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append({"headers": dict(self.headers), "body": body})
                status = 500 if len(outer.got) <= outer.fail_first else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, pred, timeout=20):
        wait_for(lambda: pred(self.got), timeout, every=0.05,
                 what=lambda: f"webhooks; the receiver got {[g['headers'].get('X-Tether-Event') for g in self.got]}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(fail_first=1)
    yield r
    r.close()


@pytest.mark.req("SITE-01")
def test_webhooks_fire_signed_and_failed_deliveries_are_retried(rs_site, receiver):
    c, h = rs_site.c, rs_site.sh
    assert c.put("/api/config/settings/events", headers=h, json={"retry_base_seconds": 0.3}).status_code == 200
    r = c.post("/api/config/event-targets", headers=h, json={
        "name": "soc-hook", "kind": "webhook", "url": receiver.url, "hmac_secret": SECRET,
        "event_types": ["login", "session.start", "session.end"]})
    assert r.status_code == 201 and "hmac_secret" not in r.json() and r.json()["hmac_secret_set"]
    assert c.post("/api/session", json={"username": "admin", "password": "Site-admin-pass-1"}).status_code == 200
    # the first attempt gets a 500, the retry (same delivery id) a 204
    receiver.wait(lambda got: len(got) >= 2)
    first, second = receiver.got[0], receiver.got[1]
    assert first["headers"]["X-Tether-Delivery"] == second["headers"]["X-Tether-Delivery"]
    assert first["body"] == second["body"]
    for g in (first, second):
        hd = g["headers"]
        mac = hmac.new(SECRET.encode(), hd["X-Tether-Timestamp"].encode() + b"." + g["body"], hashlib.sha256)
        assert hmac.compare_digest(hd["X-Tether-Signature"], "sha256=" + mac.hexdigest())
        assert abs(int(hd["X-Tether-Timestamp"]) - time.time()) < 60
    body = json.loads(second["body"])
    assert body["event"] == "login" and body["site"] == "demo" and body["data"]["actor"] == "admin"
    # session start and end fire too
    s = c.post("/api/command/sessions", headers=h, json={"rep": "admin"}).json()
    c.post(f"/api/command/sessions/{s['lsid']}/end", headers=h)
    receiver.wait(lambda got: {json.loads(g["body"])["event"] for g in got} >= {"session.start", "session.end"})
    forged = dict(second)
    mac = hmac.new(b"wrong-secret", forged["headers"]["X-Tether-Timestamp"].encode() + b"." + forged["body"],
                   hashlib.sha256).hexdigest()
    assert forged["headers"]["X-Tether-Signature"] != "sha256=" + mac

    def all_delivered():
        d = c.get("/api/reporting/event-deliveries", headers=h).json()
        return d if d and all(x["status"] == "delivered" for x in d if x["target"] == "soc-hook") else None

    d = wait_for(all_delivered, 10, what="every delivery to soc-hook delivered")
    login = [x for x in d if x["event_type"] == "login"][-1]
    assert login["status"] == "delivered" and login["attempts"] == 2 and "HTTP 500" not in str(login["last_error"])


@pytest.mark.req("SITE-01")
def test_email_targets_receive_their_event_types(rs_site):
    with SmtpSink() as box:
        c, h = rs_site.c, rs_site.sh
        assert c.put("/api/config/settings/events", headers=h, json={
            "retry_base_seconds": 0.3, "mail_relay_host": "127.0.0.1", "mail_relay_port": box.port,
            "mail_sender": "tether@example.com"}).status_code == 200
        assert c.post("/api/config/event-targets", headers=h, json={
            "name": "hr-mail", "kind": "email", "recipients": ["hr@example.com", "sec@example.com"],
            "event_types": ["user.create"]}).status_code == 201
        assert c.post("/api/users", headers=h, json={"username": "mailed", "password": "Initial-pass-1"}).status_code == 201
        [envelope, *_] = wait_for(lambda: box.envelopes, 20, every=0.05, what="the event mail")
        text = envelope.content.decode("utf-8", "replace")
        assert sorted(envelope.rcpt_tos) == ["hr@example.com", "sec@example.com"]
        assert "user.create" in text and "mailed" in text and "Initial-pass-1" not in text
