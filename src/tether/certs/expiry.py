"""Certificate expiry reminders (CERT-07), mailed through the /appliance SMTP
relay, and their record: the ``certificate_reminders`` table of appliance.db.

A reminder threshold ``t`` (days; default 30, 14, 7, 1) is *crossed* when
the certificate expires in at most ``t`` days; ``0`` stands for "has
expired". On each run, a certificate whose most urgent crossed threshold has
no record gets one mail, and every threshold it has crossed is then recorded
as sent, so an appliance that was off for a fortnight sends one mail, not
three. Records are keyed by the certificate's SHA-256 fingerprint: a renewed
certificate starts afresh. A mail is recorded only after the relay accepted
it; a relay that fails leaves it unrecorded, so the next run retries. Errors
are logged without credentials and never raised.

``run_reminders`` is the single entry point for the background job. The
table is on ``tether.appliance.store.metadata``: import this module before
``create_schema``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Collection, Iterable, Mapping, Sequence

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tether.appliance.settings import Smtp
from tether.appliance.store import certificates, metadata

from .classify import info

log = logging.getLogger("tether.certs.expiry")

DEFAULT_THRESHOLDS = (30, 14, 7, 1)
EXPIRED = 0

certificate_reminders = sa.Table(
    "certificate_reminders",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),  # hex SHA-256 of the certificate DER
    sa.Column("threshold_days", sa.Integer, primary_key=True),  # 0: the "has expired" notice
    sa.Column("cert_id", sa.Integer, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=False),
    sa.Column("recipient", sa.String(254), nullable=False),
)


@dataclass(frozen=True)
class Reminder:
    cert_id: int
    name: str
    fingerprint: str
    threshold_days: int  # the most urgent threshold crossed; 0 = expired
    crossed: tuple[int, ...]  # every threshold this mail stands for
    not_after: dt.datetime
    days_left: int
    addresses: tuple[str, ...]
    details: dict


def due(rows: Iterable[dict], assignments: Mapping[int, Sequence[str]], now: dt.datetime,
        thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
        sent: Collection[tuple[str, int]] = ()) -> list[Reminder]:
    """The reminders due now, given what was already ``sent`` ((fingerprint, threshold) pairs)."""
    now, sent = _aware(now), set(sent)
    steps = sorted({int(t) for t in thresholds if int(t) > 0} | {EXPIRED})
    out = []
    for row in rows:
        try:
            cert = x509.load_pem_x509_certificate(row["cert_pem"].encode())
        except Exception:
            log.warning("certificate %s (id %s) does not parse; no expiry reminder", row.get("name"), row.get("id"))
            continue
        left = cert.not_valid_after_utc - now
        crossed = tuple(t for t in steps if left <= dt.timedelta(days=t))
        if not crossed:
            continue
        fp = cert.fingerprint(hashes.SHA256()).hex()
        if (fp, crossed[0]) in sent:
            continue
        out.append(Reminder(row["id"], row["name"], fp, crossed[0], crossed, cert.not_valid_after_utc,
                            max(math.ceil(left / dt.timedelta(days=1)), 0),
                            tuple(assignments.get(row["id"], ())), info(cert)))
    return out


def run_reminders(engine: sa.Engine, smtp: Smtp, password: str | None,
                  assignments: Mapping[int, Sequence[str]], now: dt.datetime, *,
                  rows: Iterable[dict] | None = None, thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
                  ssl_context: ssl.SSLContext | None = None, helo_name: str | None = None,
                  timeout: float = 10.0) -> list[Reminder]:
    """Mail every due reminder once; return those the relay accepted.

    ``rows`` defaults to every row of the ``certificates`` table;
    ``assignments`` maps certificate id -> its IP addresses; ``password`` is
    the clear SMTP password. Never raises for SMTP trouble: it is logged and
    the reminders stay due."""
    if not smtp.host or not smtp.admin_email:
        log.debug("SMTP relay or admin e-mail not configured; expiry reminders not sent")
        return []
    with engine.connect() as c:
        if rows is None:
            rows = [dict(r) for r in c.execute(sa.select(certificates)).mappings()]
        sent = {(r.fingerprint, r.threshold_days) for r in c.execute(sa.select(certificate_reminders))}
    pending = due(rows, assignments, now, thresholds, sent)
    if not pending:
        return []
    try:
        client = _connect(smtp, password, ssl_context, helo_name, timeout)
    except Exception as exc:  # noqa: BLE001 - SMTP trouble must not crash the job
        log.error("expiry reminders: cannot use SMTP relay %s:%s: %s; %d reminder(s) will be retried",
                  smtp.host, smtp.port, _scrub(exc, password), len(pending))
        return []
    accepted = []
    try:
        for reminder in pending:
            try:
                client.send_message(_message(reminder, smtp, now))
            except Exception as exc:  # noqa: BLE001
                log.error("expiry reminder for certificate %r not sent: %s; it will be retried",
                          reminder.name, _scrub(exc, password))
                if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
                    break
                continue
            _record(engine, reminder, smtp.admin_email)
            accepted.append(reminder)
            log.info("expiry reminder sent for certificate %r (%s)", reminder.name, _when(reminder))
    finally:
        try:
            client.quit()
        except Exception:  # noqa: BLE001
            client.close()
    return accepted


def _connect(smtp: Smtp, password: str | None, ctx: ssl.SSLContext | None, helo: str | None,
             timeout: float) -> smtplib.SMTP:
    ctx = ctx or ssl.create_default_context()
    if smtp.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, local_hostname=helo, timeout=timeout,
                                                context=ctx)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, local_hostname=helo, timeout=timeout)
    try:
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=ctx)
            client.ehlo()
        if smtp.username:
            client.login(smtp.username, password or "")
    except BaseException:
        client.close()
        raise
    return client


def _record(engine: sa.Engine, reminder: Reminder, recipient: str) -> None:
    with engine.begin() as c:
        for threshold in reminder.crossed:
            key = (certificate_reminders.c.fingerprint == reminder.fingerprint) & (
                certificate_reminders.c.threshold_days == threshold)
            if c.execute(sa.select(certificate_reminders.c.fingerprint).where(key)).first() is None:
                c.execute(certificate_reminders.insert().values(
                    fingerprint=reminder.fingerprint, threshold_days=threshold, cert_id=reminder.cert_id,
                    sent_at=time.time(), recipient=recipient))


def _message(r: Reminder, smtp: Smtp, now: dt.datetime) -> EmailMessage:
    name = _clean(r.name)
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = smtp.admin_email
    msg["Subject"] = f"Tether: certificate {name!r} {_when(r)}"
    msg["Date"] = format_datetime(_aware(now))
    msg["Message-ID"] = make_msgid("tether-cert", domain=smtp.sender.rsplit("@", 1)[-1])
    d = r.details
    places = ", ".join(r.addresses) if r.addresses else "not assigned to any IP address"
    msg.set_content(
        f"The certificate {name!r} (id {r.cert_id}) on this Tether appliance {_when(r)}.\n\n"
        f"Issued To: {d['issued_to']}\nIssued By: {d['issued_by']}\n"
        f"Alternative names: {', '.join(d['alt_names']) or '-'}\n"
        f"Expires (not after): {r.not_after:%Y-%m-%d %H:%M} UTC\n"
        f"SHA-256 fingerprint: {d['fingerprint_sha256']}\n"
        f"IP assignments: {places}\n\n"
        "To renew: generate a key and CSR (tether cert csr), have your CA sign it, install the answer\n"
        "(tether cert install-answer), assign the new certificate to the same addresses\n"
        "(tether cert assign), then export it for safe keeping (tether cert export).\n")
    return msg


def _when(r: Reminder) -> str:
    day = f"{r.not_after:%Y-%m-%d}"
    if r.threshold_days == EXPIRED:
        return f"expired on {day}"
    return f"expires on {day} (in {r.days_left} day{'s' if r.days_left != 1 else ''})"


def _scrub(exc: BaseException, password: str | None) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if password:
        text = text.replace(password, "***")
    return text[:300]


def _clean(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", " ", str(text))


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


