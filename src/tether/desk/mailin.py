"""Incoming mail (DESK-01): the desk's SMTP listener and how a message becomes
an incident or a message on one. The rules are specified in
docs/formats/desk-mail.md; in short:

* a subject that starts (after any ``Re:``/``Fwd:``-style prefixes) with
  ``Incident #N`` (also ``Incident# N``, ``incident #N``) threads the mail
  onto incident N, attachments included;
* any other subject opens a new incident, subject as summary, with optional
  ``Version:``/``Severity:``/``OS:``... lines at the top of the body;
* the sender must be a known representative under a current agreement (or a
  staff member, whose mail counts as a reply); refusals are recorded and the
  reason is mailed back.
"""

from __future__ import annotations

import asyncio
import logging
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

from tether.core.errors import TetherError

from .attachments import Upload
from .auth import staff_by_email
from .customers import refuse
from .incidents import add_message, open_incident
from .schemas import IncidentIn

log = logging.getLogger("tether.desk.mail")

_PREFIX = r"(?:(?:re|fwd?|fw|aw|sv|tr|wg|antw)\s*(?:\[\d+\])?\s*:\s*)*"
SUBJECT = re.compile(r"^\s*" + _PREFIX + r"\[?\s*incident\s*#\s*(\d{1,9})\b", re.IGNORECASE)
HEADER_FIELDS = {
    "version": "product_version", "product version": "product_version", "severity": "severity",
    "os": "os", "operating system": "os", "server roles": "server_roles", "duration": "duration",
    "error messages": "error_messages", "error": "error_messages", "changes made": "changes_made",
    "prior actions": "prior_actions", "reproduction steps": "reproduction_steps", "name": "inquirer_name",
}
_FIELD_LINE = re.compile(r"^\s*([A-Za-z ]{2,20}?)\s*:\s*(.+?)\s*$")


def thread_number(subject: str | None) -> int | None:
    m = SUBJECT.match(subject or "")
    return int(m.group(1)) if m else None


def parse(raw: bytes) -> tuple[str, str, str, list[Upload]]:
    """(sender, subject, text body, attachments) of a raw RFC 5322 message."""
    msg: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)
    sender = parseaddr(str(msg.get("From", "")))[1].strip().lower()
    subject = " ".join(str(msg.get("Subject", "")).split())
    body_part = msg.get_body(preferencelist=("plain", "html"))
    text = body_part.get_content() if body_part is not None else ""
    if body_part is not None and body_part.get_content_subtype() == "html":
        text = re.sub(r"<[^>]+>", " ", text)
    uploads = []
    for part in msg.iter_attachments():
        data = part.get_payload(decode=True) or b""
        uploads.append(Upload(part.get_filename() or "attachment", data, part.get_content_type()))
    return sender, subject, text.strip(), uploads


def _split_fields(text: str) -> tuple[dict, str]:
    fields, lines = {}, text.splitlines()
    i = 0
    while i < len(lines):
        m = _FIELD_LINE.match(lines[i])
        if not m or m.group(1).strip().lower() not in HEADER_FIELDS:
            break
        fields[HEADER_FIELDS[m.group(1).strip().lower()]] = m.group(2)
        i += 1
    return fields, "\n".join(lines[i:]).strip()


def receive(desk, raw: bytes, envelope_from: str | None = None) -> dict:
    """Handle one incoming message; returns what was done (never raises for
    the sender's mistakes: those are recorded and answered by mail)."""
    sender, subject, text, uploads = parse(raw)
    sender = sender or (envelope_from or "").lower()
    number = thread_number(subject)
    too_big = [u for u in uploads if len(u.data) > desk.config.max_attachment_bytes]
    kept = [u for u in uploads if u not in too_big][: desk.config.max_attachments]
    if too_big:
        text += "\n\n[desk: attachments refused as too large: " + ", ".join(u.filename for u in too_big) + "]"
    try:
        if number is not None:
            return _thread(desk, number, sender, text, kept)
        fields, rest = _split_fields(text)
        data = IncidentIn(summary=(subject or "(no subject)")[:300], inquirer_email=sender,
                          description=rest or None, **fields)
        inc = open_incident(desk, data, kept, channel="mail")
        return {"action": "opened", "incident": inc["number"]}
    except TetherError as exc:
        if exc.code != "forbidden":  # forbidden ones are recorded and answered already
            refuse(desk, channel="mail", who=sender or None, reason=exc.message, incident=number, reply=True,
                   subject=f"Re: {subject}"[:300])
        return {"action": "refused", "reason": exc.message}
    except ValueError as exc:  # pydantic: a bad Version:/Severity: line or sender address
        reason = f"the message could not be read: {str(exc).splitlines()[0]}"
        refuse(desk, channel="mail", who=sender or None, reason=reason, reply=bool(sender))
        return {"action": "refused", "reason": reason}


def _thread(desk, number: int, sender: str, text: str, uploads: list[Upload]) -> dict:
    with desk.read() as c:
        staff = staff_by_email(c, sender)
    if staff is not None:
        add_message(desk, number, text=text, uploads=uploads, channel="mail", staff=staff)
    else:
        add_message(desk, number, text=text, uploads=uploads, channel="mail", sender_email=sender)
    return {"action": "threaded", "incident": number}


class Handler:
    """aiosmtpd handler: accept, then process off the event loop."""

    def __init__(self, desk):
        self.desk = desk

    async def handle_DATA(self, server, session, envelope):
        try:
            result = await asyncio.to_thread(receive, self.desk, envelope.original_content or envelope.content,
                                             envelope.mail_from)
        except Exception:  # a bug, not the sender's fault: let the sender retry
            log.exception("incoming mail failed")
            return "451 4.3.0 Local error while processing the message"
        log.info("mail from %s: %s", envelope.mail_from, result)
        return "250 2.0.0 Message accepted"


async def start_listener(desk, host: str, port: int):
    """Start the SMTP listener on the running loop; returns the asyncio server."""
    from aiosmtpd.smtp import SMTP

    limit = desk.config.max_attachment_bytes * (desk.config.max_attachments + 1) * 2
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(Handler(desk), hostname="tether-desk", data_size_limit=limit, loop=loop), host, port)

