"""CERT-07 end to end: a running appliance's background job mails expiry
reminders through the /appliance SMTP settings to a real SMTP relay
(aiosmtpd) on loopback, each threshold once; a relay that is down or
refuses gets a logged error and a retry, never a crash. The job interval is
shortened with TETHER_JOB_INTERVAL."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.helpers import first_admin_login, free_port, wait_for

from .conftest import PASSWORD, USER
from .e2e import live_pki, p12, upload



def smtp_settings(c, h, **smtp):
    sec = c.get("/appliance/api/security", headers=h).json()
    sec["smtp"] = {"host": "127.0.0.1", "security": "none", "username": None, "password": None,
                   "sender": "tether@example.com", "admin_email": "admin@example.com", **smtp}
    r = c.put("/appliance/api/security", headers=h, json=sec)
    assert r.status_code == 200, r.text


@pytest.mark.req("CERT-07")
def test_reminders_through_the_smtp_settings_each_threshold_once(make_appliance, relay_starttls, relay_ca_file,
                                                                monkeypatch):
    monkeypatch.setenv("TETHER_JOB_INTERVAL", "1")
    monkeypatch.setenv("SSL_CERT_FILE", str(relay_ca_file))  # the appliance trusts the relay's CA, as a site would
    a = make_appliance()
    live = live_pki()
    # expires 7 days and a few seconds from now: the 14-day threshold is crossed at once, the 7-day one
    # a few seconds later, while the appliance runs
    soon = live.pki.leaf(live.inter, "expiring.example.com", ips=("127.0.0.1",),
                         not_after=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7, seconds=15))
    with a.client() as c:
        h = first_admin_login(c)
        assert upload(c, h, p12(soon, [live.inter, live.root]), "expiring").status_code == 201
        cert_id = next(x["id"] for x in c.get("/appliance/api/certificates", headers=h).json()["certificates"]
                       if x["name"] == "expiring")
        assert c.put("/appliance/api/certificate-assignments/127.0.0.1", headers=h,
                     json={"id": cert_id}).status_code == 200
        # reminders start once the relay is set (until then the job finds nothing to send through)
        smtp_settings(c, h, port=relay_starttls.port, security="starttls", username=USER, password=PASSWORD)
    wait_for(lambda: len(relay_starttls.envelopes) >= 1, 30, what="the first reminder")
    first = relay_starttls.mails()[0]
    day = f"{soon.cert.not_valid_after_utc:%Y-%m-%d}"
    assert first["Subject"] == f"Tether: certificate 'expiring' expires on {day} (in 8 days)"
    assert first["To"] == "admin@example.com" and first["From"] == "tether@example.com"
    body = first.get_content()
    assert "Issued To: expiring.example.com" in body and "IP assignments: 127.0.0.1" in body
    wait_for(lambda: len(relay_starttls.envelopes) >= 2, 40, what="the 7-day reminder")
    assert relay_starttls.mails()[1]["Subject"] == f"Tether: certificate 'expiring' expires on {day} (in 7 days)"
    time.sleep(4)  # several more runs of the job: nothing more is due
    assert len(relay_starttls.envelopes) == 2
    assert all(m.mail_from == "tether@example.com" and m.rcpt_tos == ["admin@example.com"]
               for m in relay_starttls.envelopes)
    a.stop()
    log = a.log_path.read_text()
    assert "expiry reminder sent for certificate 'expiring'" in log
    assert PASSWORD not in log


@pytest.mark.req("CERT-07")
def test_failing_relay_is_logged_and_retried_without_crash(make_appliance, relay, monkeypatch):
    monkeypatch.setenv("TETHER_JOB_INTERVAL", "1")
    a = make_appliance()
    live = live_pki()
    soon = live.pki.leaf(live.inter, "expiring.example.com", days=4)
    with a.client() as c:
        h = first_admin_login(c)
        smtp_settings(c, h, port=free_port())  # nothing listens there
        assert upload(c, h, p12(soon, [live.inter, live.root]), "expiring").status_code == 201
        wait_for(lambda: "cannot use SMTP relay 127.0.0.1" in a.log_path.read_text(), 30, what="the connection error")
        relay.fail = 2  # the relay answers 451 twice, then accepts
        smtp_settings(c, h, port=relay.port)
        wait_for(lambda: a.log_path.read_text().count("not sent: SMTPDataError") >= 2, 30, what="two refusals")
        wait_for(lambda: len(relay.envelopes) == 1, 30, what="the retried reminder")
        time.sleep(3)
        assert len(relay.envelopes) == 1  # sent once, when the relay finally took it
        assert a.proc.poll() is None  # the appliance kept running throughout
        assert c.get("/health").status_code in (200, 503)
    log = a.log_path.read_text()
    assert "will be retried" in log and "Traceback" not in log
    assert "(in 3 days)" in relay.mails()[0]["Subject"]
