"""Expiry reminders mailed to a real SMTP relay on loopback (expiry.py)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import sqlalchemy as sa

from tether.appliance.settings import Smtp
from tether.certs.expiry import certificate_reminders, due, run_reminders

from tests.helpers import free_port

from .conftest import NOW, PASSWORD, USER

DAY = dt.timedelta(days=1)


@pytest.fixture
def site(store, tree):
    """The site certificate, assigned to two addresses; it expires at ``tree.leaf`` not-after."""
    cert_id = store.add("site", tree.leaf.pem, tree.leaf.key_der, tree.inter.pem + tree.root.pem)
    return cert_id, tree.leaf.cert.not_valid_after_utc


def smtp_for(relay, **kw) -> Smtp:
    return Smtp(host="127.0.0.1", port=relay.port, sender="tether@example.com", admin_email="admin@example.com",
                **kw)


def run(engine, smtp, now, password=None, assignments=None, **kw):
    assignments = assignments if assignments is not None else {}
    return run_reminders(engine, smtp, password, assignments, now, helo_name="tether.test", timeout=5, **kw)



def test_each_threshold_is_mailed_once(engine, relay, site):
    cert_id, expires = site
    smtp = smtp_for(relay)
    where = {cert_id: ["192.0.2.10", "192.0.2.11"]}
    schedule = [(-31 * DAY, None), (-30 * DAY, 30), (-30 * DAY, None), (-20 * DAY, None), (-14 * DAY, 14),
                (-8 * DAY, None), (-7 * DAY, 7), (-2 * DAY, None), (-12 * 3600 * dt.timedelta(seconds=1), 1),
                (dt.timedelta(hours=1), 0), (2 * DAY, None)]
    for offset, threshold in schedule:
        sent = run(engine, smtp, expires + offset, assignments=where)
        assert [r.threshold_days for r in sent] == ([] if threshold is None else [threshold]), offset
    got = relay.mails()
    assert len(got) == 5 and all(m["To"] == "admin@example.com" for m in got)
    first = got[0]
    assert first["Subject"] == f"Tether: certificate 'site' expires on {expires:%Y-%m-%d} (in 30 days)"
    body = first.get_content()
    assert "IP assignments: 192.0.2.10, 192.0.2.11" in body
    assert f"Expires (not after): {expires:%Y-%m-%d %H:%M} UTC" in body and "Issued To: support.example.com" in body
    assert got[3]["Subject"].endswith("(in 1 day)")
    assert got[4]["Subject"] == f"Tether: certificate 'site' expired on {expires:%Y-%m-%d}"
    with engine.connect() as c:
        assert sorted(r.threshold_days for r in c.execute(sa.select(certificate_reminders))) == [0, 1, 7, 14, 30]


def test_missed_thresholds_give_one_mail(engine, relay, site):
    _, expires = site
    smtp = smtp_for(relay)
    assert [r.threshold_days for r in run(engine, smtp, expires - 5 * DAY)] == [7]
    assert run(engine, smtp, expires - 4 * DAY) == []
    assert "not assigned to any IP address" in relay.mails()[0].get_content()
    assert [r.threshold_days for r in run(engine, smtp, expires - 0.5 * DAY)] == [1]


def test_only_due_certificates_are_mailed(engine, relay, store, pki, tree, site):
    later = pki.leaf(tree.inter, "later.example.com", days=3000)
    store.add("later", later.pem, later.key_der)
    _, expires = site
    sent = run(engine, smtp_for(relay), expires - 10 * DAY, thresholds=(14,))
    assert [r.name for r in sent] == ["site"] and len(relay.envelopes) == 1


def test_failing_relay_then_working_one(engine, relay, site, caplog):
    _, expires = site
    smtp = smtp_for(relay)
    caplog.set_level(logging.INFO, logger="tether.certs.expiry")
    relay.fail = 1
    assert run(engine, smtp, expires - 20 * DAY) == []
    assert "will be retried" in caplog.text and relay.envelopes == []
    assert [r.threshold_days for r in run(engine, smtp, expires - 20 * DAY)] == [30]
    assert len(relay.envelopes) == 1
    assert run(engine, smtp, expires - 19 * DAY) == []


def test_unreachable_relay_is_logged_and_retried(engine, relay, site, caplog):
    _, expires = site
    dead = Smtp(host="127.0.0.1", port=free_port(), sender="tether@example.com", admin_email="admin@example.com")
    caplog.set_level(logging.ERROR, logger="tether.certs.expiry")
    assert run(engine, dead, expires - 20 * DAY) == []
    assert "cannot use SMTP relay 127.0.0.1" in caplog.text
    assert len(run(engine, smtp_for(relay), expires - 20 * DAY)) == 1


def test_starttls_with_login(engine, relay_starttls, relay_tls, site, caplog):
    _, expires = site
    smtp = smtp_for(relay_starttls, security="starttls", username=USER)
    caplog.set_level(logging.DEBUG, logger="tether.certs.expiry")
    bad = "wrong-password-xyz"
    assert run(engine, smtp, expires - 20 * DAY, password=bad, ssl_context=relay_tls[1]) == []
    assert "SMTPAuthenticationError" in caplog.text and bad not in caplog.text
    sent = run(engine, smtp, expires - 20 * DAY, password=PASSWORD, ssl_context=relay_tls[1])
    assert len(sent) == 1 and len(relay_starttls.envelopes) == 1
    assert PASSWORD not in caplog.text


def test_starttls_refuses_an_untrusted_relay(engine, relay_starttls, site, caplog):
    _, expires = site
    smtp = smtp_for(relay_starttls, security="starttls", username=USER)
    caplog.set_level(logging.ERROR, logger="tether.certs.expiry")
    assert run(engine, smtp, expires - 20 * DAY, password=PASSWORD) == []  # default trust store: test CA unknown
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text and relay_starttls.envelopes == []


def test_implicit_tls(engine, relay_smtps, relay_tls, site):
    _, expires = site
    smtp = smtp_for(relay_smtps, security="tls")
    assert len(run(engine, smtp, expires - 20 * DAY, ssl_context=relay_tls[1])) == 1
    assert len(relay_smtps.envelopes) == 1


def test_unconfigured_relay_sends_nothing(engine, site):
    _, expires = site
    assert run(engine, Smtp(), expires - DAY) == []
    assert run(engine, Smtp(host="127.0.0.1", port=free_port()), expires - DAY) == []  # no admin e-mail


def test_due_is_pure(tree):
    rows = [{"id": 3, "name": "x", "cert_pem": tree.leaf.pem}, {"id": 4, "name": "bad", "cert_pem": "junk"}]
    expires = tree.leaf.cert.not_valid_after_utc
    [r] = due(rows, {3: ["10.0.0.1"]}, (expires - 3 * DAY).replace(tzinfo=None))
    assert (r.cert_id, r.threshold_days, r.crossed, r.days_left, r.addresses) == (3, 7, (7, 14, 30), 3, ("10.0.0.1",))
    assert due(rows, {}, NOW) == []
    assert due(rows, {}, expires - 3 * DAY, sent={(r.fingerprint, 7)}) == []
