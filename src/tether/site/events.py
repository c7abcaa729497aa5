"""Outbound events (SITE-01): webhooks and e-mail on site events, delivered
at least once by the dispatcher (a continuous job of the appliance's job runner), with retries.

An event (an audited action such as ``login``, or ``session.start``,
``session.end``, ``backup.taken`` ...) is queued in memory by ``emit``; the
dispatcher persists one delivery row per subscribed target in
``event_deliveries`` (local to this appliance, not in the change log) and
sends it. A webhook is an HTTP POST of the JSON body

    {"id": "<event id>", "event": "<type>", "at": <epoch>, "site": "<name>", "data": {...}}

with headers ``X-Tether-Event``, ``X-Tether-Delivery`` (the event id, the
same on every retry), ``X-Tether-Timestamp`` (epoch seconds of this attempt)
and ``X-Tether-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.
A receiver verifies the signature and rejects stale timestamps (replay).
Any answer but 2xx, or no answer, is retried after ``retry_base_seconds *
2**(attempt-1)`` until ``max_attempts``; then the delivery is ``failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import secrets
import smtplib
import threading
import time
from email.message import EmailMessage
from typing import Callable

import httpx
import sqlalchemy as sa

from tether.core.shapes import of_table

from . import sections
from .config_tables import event_targets
from .history_tables import event_deliveries
from .models import EVENT_TYPES

DELIVERY_COLUMNS = ("id", "target", "event_type", "status", "attempts", "last_error", "created_at", "delivered_at")
Delivery = of_table(event_deliveries, "Delivery", only=DELIVERY_COLUMNS)  # as ``deliveries`` lists one

log = logging.getLogger("tether.site.events")
_AUDITED = {"login", "login.failed", "user.create", "user.update", "user.delete", "file.upload", "file.delete",
            "backup.taken"}


def audit_event_type(action: str) -> str | None:
    if action in _AUDITED:
        return action
    if action.startswith("config."):
        return "config.change"
    return None


def sign(secret: str, timestamp: str, body: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


class Events:
    def __init__(self, engine: sa.Engine, site_name: Callable[[], str]):
        self.engine = engine
        self.site_name = site_name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._closed = False

    def emit(self, event_type: str, data: dict) -> None:
        assert event_type in EVENT_TYPES, event_type
        self._queue.put((event_type, data, time.time()))
        self._wake.set()

    def on_audit(self, event: dict) -> None:
        """Hooked to the site's audit log: audited actions become events (secrets never are in audit details)."""
        t = audit_event_type(event.get("action", ""))
        if t:
            self.emit(t, {k: event.get(k) for k in ("actor", "action", "target", "source_ip")})

    def close(self) -> None:
        """Store what is queued (delivered by the next dispatcher, on this or a later start)."""
        self._closed = True
        self._wake.set()
        try:
            self._persist()
        except Exception:  # noqa: BLE001 - closing must not fail; the events are lost, say so
            log.exception("outbound events queued at close could not be stored")

    # --- the dispatcher: a continuous job of the appliance's job runner ------------------------------
    def run(self, stop: threading.Event) -> None:
        """Persist emitted events and deliver due ones until ``stop`` is set or the site closes."""
        while not stop.is_set() and not self._closed:
            try:
                self._persist()
                wait = self._deliver_due()
            except Exception:  # keep the dispatcher alive; the next round retries
                log.exception("event dispatcher round failed")
                wait = 5.0
            self._wake.wait(min(wait, 0.5))
            self._wake.clear()

    def _persist(self) -> None:
        batch = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        with self.engine.begin() as c:
            targets = [dict(r) for r in c.execute(sa.select(event_targets).where(event_targets.c.enabled.is_(True)))
                       .mappings()]
            for event_type, data, at in batch:
                body = json.dumps({"id": secrets.token_hex(16), "event": event_type, "at": at,
                                   "site": self.site_name(), "data": data}, sort_keys=True, default=str)
                for t in targets:
                    if event_type in t["event_types"]:
                        c.execute(event_deliveries.insert().values(
                            target=t["name"], event_type=event_type, body=body, status="pending", attempts=0,
                            next_attempt_at=at, created_at=at))

    def _deliver_due(self) -> float:
        now = time.time()
        d = event_deliveries
        with self.engine.connect() as c:
            due = [dict(r) for r in c.execute(sa.select(d).where(d.c.status == "pending", d.c.next_attempt_at <= now)
                                              .order_by(d.c.id).limit(50)).mappings()]
        cfg = sections.get_model(self.engine, sections.SECTIONS["events"])
        for row in due:
            with self.engine.connect() as c:
                target = c.execute(sa.select(event_targets).where(event_targets.c.name == row["target"])).mappings().first()
            try:
                if target is None:
                    raise RuntimeError("the target was deleted")
                self._send(dict(target), row, cfg)
                values = dict(status="delivered", attempts=row["attempts"] + 1, delivered_at=time.time(),
                              last_error=None)
            except Exception as exc:  # noqa: BLE001 - any failure is retried
                attempts = row["attempts"] + 1
                failed = attempts >= cfg.max_attempts or target is None
                values = dict(status="failed" if failed else "pending", attempts=attempts, last_error=str(exc)[:500],
                              next_attempt_at=time.time() + cfg.retry_base_seconds * 2 ** (attempts - 1))
            with self.engine.begin() as c:
                c.execute(d.update().where(d.c.id == row["id"]).values(**values))
        if len(due) == 50:
            return 0.0
        with self.engine.connect() as c:
            nxt = c.execute(sa.select(sa.func.min(d.c.next_attempt_at)).where(d.c.status == "pending")).scalar()
        return 1.0 if nxt is None else max(0.05, min(1.0, nxt - time.time()))

    def _send(self, target: dict, row: dict, cfg) -> None:
        body = row["body"]
        event_id = json.loads(body)["id"]
        if target["kind"] == "webhook":
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", "User-Agent": "Tether-Webhook/1",
                       "X-Tether-Event": row["event_type"], "X-Tether-Delivery": event_id,
                       "X-Tether-Timestamp": ts, "X-Tether-Signature": sign(target["hmac_secret"] or "", ts, body)}
            r = httpx.post(target["url"], content=body.encode(), headers=headers, timeout=10)
            if not 200 <= r.status_code < 300:
                raise RuntimeError(f"HTTP {r.status_code}")
        else:
            if not cfg.mail_relay_host:
                raise RuntimeError("no mail relay configured (settings section 'events')")
            msg = EmailMessage()
            msg["From"], msg["To"] = cfg.mail_sender, ", ".join(target["recipients"])
            msg["Subject"] = f"[Tether {self.site_name()}] {row['event_type']}"
            msg.set_content(json.dumps(json.loads(body), indent=2))
            with smtplib.SMTP(cfg.mail_relay_host, cfg.mail_relay_port, timeout=10) as s:
                s.send_message(msg)

    def deliveries(self, limit: int = 100) -> list[dict]:
        d = event_deliveries
        with self.engine.connect() as c:
            q = sa.select(*(d.c[n] for n in DELIVERY_COLUMNS)).order_by(d.c.id.desc()).limit(limit)
            return [dict(r) for r in c.execute(q).mappings()]
