"""CERT-07 end to end: a running appliance's background job mails expiry
reminders through the /appliance SMTP settings to a real SMTP relay
(aiosmtpd) on loopback, each threshold once; a relay that is down or
refuses gets a logged error and a retry, never a crash. The job interval is
shortened with TETHER_JOB_INTERVAL; "nothing more was sent" is shown by a
sentinel certificate whose reminder must be the next mail, not by sleeping."""

from __future__ import annotations

import datetime as dt
import ssl

import httpx
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


def subjects(relay) -> list[str]:
    return [m["Subject"] for m in relay.mails()]


def expires(node, days: int) -> str:
    return f"expires on {node.cert.not_valid_after_utc:%Y-%m-%d} (in {days} days)"


def sentinel_reminder(c, h, live, relay) -> str:
    """Upload a certificate due for a reminder at once and wait for its mail: the job has run again since
    the certificate was uploaded, so anything else it would have sent in that run came too."""
    sentinel = live.pki.leaf(live.inter, "sentinel.example.com", days=3)  # expires in 2 days
    assert upload(c, h, p12(sentinel, [live.inter, live.root]), "sentinel").status_code == 201
    subject = f"Tether: certificate 'sentinel' {expires(sentinel, 2)}"
    wait_for(lambda: subject in subjects(relay), 30, what="the sentinel's reminder")
    return subject


@pytest.mark.req("CERT-07")
def test_reminders_through_the_smtp_settings_each_threshold_once(make_appliance, relay_starttls, relay_ca_file,
                                                                monkeypatch):
    monkeypatch.setenv("TETHER_JOB_INTERVAL", "1")
    monkeypatch.setenv("SSL_CERT_FILE", str(relay_ca_file))  # the appliance trusts the relay's CA, as a site would
    a = make_appliance()
    live = live_pki()
    # expires 7 days and a few seconds from now: the 14-day threshold is crossed at once, the 7-day one
    # a few seconds later, while the appliance runs. Real time crosses it: the job takes "now" from
    # tether.runtime (send_certificate_reminders), not from tether.core.clock, so the clock fixture cannot.
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
    assert first["Subject"] == f"Tether: certificate 'expiring' {expires(soon, 8)}"
    assert first["To"] == "admin@example.com" and first["From"] == "tether@example.com"
    body = first.get_content()
    assert "Issued To: expiring.example.com" in body and "IP assignments: 127.0.0.1" in body
    wait_for(lambda: len(relay_starttls.envelopes) >= 2, 40, what="the 7-day reminder")
    # the job runs on: the next mail is the sentinel's, never a third one for 'expiring'
    with httpx.Client(base_url=a.url, verify=ssl.create_default_context(cadata=live.root.pem)) as c:
        sentinel = sentinel_reminder(c, h, live, relay_starttls)  # 127.0.0.1 now presents 'expiring'
    a.stop()  # lets a run in progress finish
    assert subjects(relay_starttls) == [f"Tether: certificate 'expiring' {expires(soon, 8)}",
                                        f"Tether: certificate 'expiring' {expires(soon, 7)}", sentinel]
    assert all(m.mail_from == "tether@example.com" and m.rcpt_tos == ["admin@example.com"]
               for m in relay_starttls.envelopes)
    log = a.log_path.read_text()
    assert "expiry reminder sent for certificate 'expiring'" in log
    assert PASSWORD not in log


@pytest.mark.req("CERT-07")
def test_failing_relay_is_logged_and_retried_without_crash(make_appliance, relay, monkeypatch):
    monkeypatch.setenv("TETHER_JOB_INTERVAL", "1")
    a = make_appliance()
    live = live_pki()
    soon = live.pki.leaf(live.inter, "expiring.example.com", days=4)  # expires in 3 days
    with a.client() as c:
        h = first_admin_login(c)
        smtp_settings(c, h, port=free_port())  # nothing listens there
        assert upload(c, h, p12(soon, [live.inter, live.root]), "expiring").status_code == 201
        wait_for(lambda: "cannot use SMTP relay 127.0.0.1" in a.log_path.read_text(), 30,
                 what="the connection error")
        relay.fail = 2  # the relay answers 451 twice, then accepts
        smtp_settings(c, h, port=relay.port)
        wait_for(lambda: a.log_path.read_text().count("not sent: SMTPDataError") >= 2, 30, what="two refusals")
        wait_for(lambda: len(relay.envelopes) == 1, 30, what="the retried reminder")
        sentinel = sentinel_reminder(c, h, live, relay)
        assert a.proc.poll() is None  # the appliance kept running throughout
        r = c.get("/health")  # and answers (503: no site is installed)
        assert (r.status_code, r.text) == (503, "no site\n")
    a.stop()
    # sent once, when the relay finally took it
    assert subjects(relay) == [f"Tether: certificate 'expiring' {expires(soon, 3)}", sentinel]
    log = a.log_path.read_text()
    assert "will be retried" in log and "Traceback" not in log
