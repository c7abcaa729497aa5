"""The appliance opens support incidents on the vendor's desk by itself
(DESK-09): on request from /appliance, and automatically when a site backup
fails or on an automatic failover. Each incident carries the appliance's
version, its status and its recent audit logs, sent through the desk opener
that the runtime wires (``tether.desk.client``), with the token kept sealed
in the /appliance ``support`` settings.

An incident the appliance opens by itself is first written to the outbox
(``support_outbox`` in the appliance database), then sent in the background;
while the desk cannot be reached or refuses, it stays there and is sent
again (after 5 s, 10 s, 20 s ... at most every 5 min; the ``support-outbox``
job), across restarts, until the desk takes it or it is a week old. Each
carries a key (the event's: one per automatic failover) that the desk keeps,
so a retry whose first answer was lost gets the incident already opened,
never a second one. ``GET /appliance/api/support/pending`` lists what waits.

This module declares what it needs (``SupportHost``, ``DeskOpener``,
``Spawn``) and imports neither the runtime nor the desk."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any, Callable, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from tether.appliance import store
from tether.appliance.settings import ApplianceSettings
from tether.core.audit import AuditLog
from tether.core.errors import Conflict, TetherError
from tether.core.shapes import of_table

log = logging.getLogger("tether.support")

PENDING_COLUMNS = ("key", "summary", "severity", "created_at", "attempts", "next_attempt_at", "last_error")
PendingIncident = of_table(store.support_outbox, "PendingIncident", only=PENDING_COLUMNS)  # as ``pending`` lists one


class DeskAnswer(BaseModel):
    """The support desk's answer to an incident (the desk's document: its known fields typed, any
    other it adds kept)."""
    model_config = ConfigDict(extra="allow")
    number: int
    status: str | None = None
    severity: int | None = None
    duplicate: bool | None = None


class DeskRefused(Exception):
    """The desk answered with an error (its message)."""


RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0
GIVE_UP_SECONDS = 7 * 24 * 3600.0
OUTBOX_JOB_SECONDS = 5.0  # how often the outbox job looks for incidents due again


class SupportHost(Protocol):
    settings: ApplianceSettings
    audit: AuditLog
    engine: sa.Engine  # the appliance database (the outbox)
    identity: dict

    @property
    def site(self) -> Any: ...
    def status_basics(self) -> dict: ...
    def site_information(self) -> dict: ...


# (desk_url, token, *, summary, version, status, logs, severity, details, verify) -> the desk's answer;
# raises DeskRefused when the desk refuses, anything else when it cannot be reached
DeskOpener = Callable[..., dict]
Spawn = Callable[[str, Callable[[], Any]], Any]  # run a one-shot background job (the job runner's submit)


class Support:
    def __init__(self, host: SupportHost, opener: DeskOpener, spawn: Spawn):
        self.host = host
        self.opener = opener
        self.spawn = spawn
        self._sending = threading.Lock()  # one delivery at a time: an incident is never sent twice at once

    def _logs(self) -> dict[str, bytes]:
        def lines(events):
            return "\n".join(json.dumps({**e, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["at"]))},
                                        sort_keys=True, default=str) for e in events).encode()

        logs = {"appliance-audit.log": lines(self.host.audit.list(200))}
        site = self.host.site
        if site is not None:
            logs["site-audit.log"] = lines(site.audit.list(200))
        return logs

    def _status(self) -> dict:
        status = dict(self.host.status_basics())
        try:
            status["site"] = self.host.site_information()
        except TetherError:
            status["site"] = None
        return status

    def _desk(self):
        desk = self.host.settings.get("support").desk
        return desk if desk.enabled and desk.url else None

    def _send(self, summary: str, details: str | None, severity: int, key: str | None = None) -> dict:
        """One attempt at the desk; its answer, or TetherError saying why not."""
        from tether import __version__

        desk = self._desk()
        if desk is None:
            raise Conflict("no support desk is configured", hint="set it under /appliance Support (url and token)")
        token = self.host.settings.reveal("support", "desk", "token") or ""
        try:
            return self.opener(desk.url, token, summary=summary, version=__version__, status=self._status(),
                               logs=self._logs(), severity=severity, details=details, verify=desk.verify_tls,
                               key=key)
        except DeskRefused as exc:
            raise TetherError(f"the support desk refused the incident: {exc}",
                              hint="check the desk URL and the appliance token") from None
        except Exception as exc:  # network, TLS
            raise TetherError(f"the support desk could not be reached: {exc.__class__.__name__}: {exc}") from None

    def open_incident(self, summary: str, details: str | None = None, severity: int = 2,
                      actor: str = "appliance", source_ip: str | None = None) -> dict:
        """On request (/appliance): at once, the desk's answer or a clear error (nothing is queued)."""
        answer = self._send(summary, details, severity)
        self.host.audit.record(actor, "support.incident", str(answer.get("number")), source_ip, {"summary": summary})
        return answer

    def report_failure(self, summary: str, details: str) -> None:
        """A failed site backup (when the desk settings ask for it). Best effort, in the background:
        never raises, never delays the failing action."""
        self._report(summary, details, backup_failure=True, key=None)

    def report_event(self, summary: str, details: str, key: str | None = None) -> None:
        """An event the vendor must hear of (an automatic failover, DESK-09), whenever a desk is configured:
        one incident per ``key`` (made unique when None), however often it is sent."""
        self._report(summary, details, backup_failure=False, key=key)

    def _report(self, summary: str, details: str, *, backup_failure: bool, key: str | None) -> None:
        try:
            desk = self._desk()
            if desk is None or (backup_failure and not desk.on_backup_failure):
                return
            key = key or f"{self.host.identity['appliance_id']}:{uuid.uuid4().hex}"
            now = time.time()
            with self.host.engine.begin() as c:
                if c.execute(sa.select(store.support_outbox.c.id).where(store.support_outbox.c.key == key)).first():
                    return  # already waiting
                c.execute(store.support_outbox.insert().values(key=key, summary=summary[:300], details=details,
                                                               severity=2, created_at=now, attempts=0,
                                                               next_attempt_at=now))
        except Exception as exc:  # noqa: BLE001 - reporting never breaks the action reported
            log.error("could not queue a support incident (%s): %s: %s", summary, type(exc).__name__, exc)
            return
        self.spawn("support-incident", self.deliver)

    # --- the outbox ---------------------------------------------------------------------------------------
    def deliver(self) -> int:
        """Send every queued incident that is due (the ``support-outbox`` job, and after each report);
        returns how many the desk took."""
        o = store.support_outbox
        taken = 0
        with self._sending:
            if self._desk() is None:
                return 0
            now = time.time()
            with self.host.engine.connect() as c:
                rows = [dict(r) for r in c.execute(sa.select(o).where(o.c.next_attempt_at <= now)
                                                   .order_by(o.c.id)).mappings()]
            for row in rows:
                if now - row["created_at"] > GIVE_UP_SECONDS:
                    self._drop(row)
                    continue
                try:
                    answer = self._send(row["summary"], row["details"], row["severity"], row["key"])
                except TetherError as exc:
                    attempts = row["attempts"] + 1
                    wait = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempts - 1))
                    with self.host.engine.begin() as c:
                        c.execute(o.update().where(o.c.id == row["id"]).values(
                            attempts=attempts, last_error=exc.message[:500], next_attempt_at=time.time() + wait))
                    log.warning("support incident %r not sent (attempt %d; again in %.0f s): %s", row["summary"],
                                attempts, wait, exc.message)
                    continue
                with self.host.engine.begin() as c:
                    c.execute(o.delete().where(o.c.id == row["id"]))
                self.host.audit.record("appliance", "support.incident", str(answer.get("number")), None,
                                       {"summary": row["summary"], "key": row["key"],
                                        "attempts": row["attempts"] + 1,
                                        "duplicate": bool(answer.get("duplicate"))})
                taken += 1
        return taken

    def _drop(self, row: dict) -> None:
        with self.host.engine.begin() as c:
            c.execute(store.support_outbox.delete().where(store.support_outbox.c.id == row["id"]))
        log.error("support incident %r given up after %d attempts: %s", row["summary"], row["attempts"],
                  row["last_error"])
        self.host.audit.record("appliance", "support.incident_dropped", None, None,
                               {"summary": row["summary"], "key": row["key"], "attempts": row["attempts"],
                                "last_error": row["last_error"]})

    def pending(self) -> list[dict]:
        """The incidents waiting for the desk: summary, key, attempts, last error, next attempt."""
        o = store.support_outbox
        with self.host.engine.connect() as c:
            rows = c.execute(sa.select(*(o.c[n] for n in PENDING_COLUMNS)).order_by(o.c.id)).mappings()
            return [dict(r) for r in rows]
