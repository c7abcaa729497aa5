"""The audit log (SEC-06): who did what, when, from where.

One implementation serves both realms; /appliance events live in
appliance.db and /login events in site.db (so they travel with site backups).
Every event is also handed to the syslog forwarder when one is configured.
Details must never carry secrets: callers pass names and ids, not passwords.

On a backup appliance the site database takes no writes but the primary's
(the write fence): a /login event there (an admin looking at status) is
not stored in the site's log; it is still forwarded to syslog and written
to the process log, so nothing done on a backup goes unrecorded.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import sqlalchemy as sa

from .db import audit_table
from .errors import NotPrimary
from .shapes import of_table

log = logging.getLogger("tether.audit")
AuditEntry = of_table(audit_table(sa.MetaData()), "AuditEntry")  # one entry as ``AuditLog.list`` reads it


class AuditLog:
    def __init__(self, engine: sa.Engine, table: sa.Table, realm: str, forward: Callable[[dict], None] | None = None):
        self.engine = engine
        self.table = table
        self.realm = realm
        self._forward = forward

    def record(self, actor: str, action: str, target: str | None = None,
               source_ip: str | None = None, details: dict | None = None, conn: sa.Connection | None = None) -> dict:
        event = {"at": time.time(), "actor": actor, "action": action, "target": target,
                 "source_ip": source_ip, "details": details or {}}
        if conn is not None:
            conn.execute(self.table.insert().values(**event))
        else:
            try:
                with self.engine.begin() as c:
                    c.execute(self.table.insert().values(**event))
            except NotPrimary:
                log.info("audit (%s, not stored on this backup appliance): %s %s %s from %s", self.realm, actor,
                         action, target or "-", source_ip or "-")
        if self._forward:
            self._forward({"realm": self.realm, **event})
        return event

    def latest(self, actions: tuple[str, ...] | list[str], limit: int = 100) -> list[dict]:
        """The newest entries of these actions, newest first (the readiness audit reads what was done)."""
        t = self.table
        with self.engine.connect() as c:
            rows = c.execute(sa.select(t).where(t.c.action.in_(list(actions))).order_by(t.c.id.desc())
                             .limit(limit)).mappings()
            return [dict(r) for r in rows]

    def list(self, limit: int = 100, offset: int = 0) -> list[dict]:
        t = self.table
        with self.engine.connect() as c:
            rows = c.execute(sa.select(t).order_by(t.c.id.desc()).limit(limit).offset(offset)).mappings()
            return [dict(r) for r in rows]
