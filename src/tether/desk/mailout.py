"""Outgoing mail: an outbox table and its flush through the SMTP relay.

Service functions queue messages inside their transaction (``queue``); the
desk flushes after commit and the job runner retries what failed. A message
is claimed before sending (``sent_at = 'sending'``) so two processes sharing
the database do not send it twice. Subjects of incident mail start with
``Incident #N:`` so replies thread back (docs/formats/desk-mail.md).
"""

from __future__ import annotations

import logging
import smtplib
import threading
from email.message import EmailMessage
from email.utils import make_msgid

import sqlalchemy as sa

from . import tables
from .clock import iso

log = logging.getLogger("tether.desk.mail")
_lock = threading.Lock()


def queue(conn: sa.Connection, now, to: str, subject: str, body: str) -> None:
    conn.execute(tables.outbox.insert().values(
        created_at=iso(now), to_addr=to, subject=subject[:300], body=body, attempts=0))


def incident_subject(number: int, summary: str) -> str:
    return f"Incident #{number}: {summary}"


def flush(desk) -> int:
    """Send every queued message; returns how many went out."""
    relay = desk.config.relay
    if relay is None:
        return 0
    t = tables.outbox
    sent = 0
    with _lock:
        with desk.engine.connect() as c:
            pending = c.execute(sa.select(t).where(t.c.sent_at.is_(None)).order_by(t.c.id)).mappings().all()
        for row in pending:
            with desk.engine.begin() as c:
                claimed = c.execute(t.update().where(t.c.id == row["id"], t.c.sent_at.is_(None))
                                    .values(sent_at="sending", attempts=t.c.attempts + 1)).rowcount
            if not claimed:
                continue
            try:
                _send(desk, relay, row)
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("mail to %s not sent: %s", row["to_addr"], exc)
                with desk.engine.begin() as c:
                    c.execute(t.update().where(t.c.id == row["id"]).values(sent_at=None, last_error=str(exc)))
                continue
            with desk.engine.begin() as c:
                c.execute(t.update().where(t.c.id == row["id"]).values(sent_at=iso(desk.now()), last_error=None))
            sent += 1
    return sent


def _send(desk, relay: tuple[str, int], row) -> None:
    msg = EmailMessage()
    msg["From"] = desk.config.mail_from
    msg["To"] = row["to_addr"]
    msg["Subject"] = row["subject"]
    msg["Message-ID"] = make_msgid(domain="tether-desk")
    msg.set_content(row["body"])
    with smtplib.SMTP(relay[0], relay[1], timeout=10) as s:
        s.send_message(msg)
