"""The running desk: configuration, database engine, clock, catalog and the
outgoing-mail flush, handed to every service function as ``desk``.

It owns transactions (``desk.tx()``: commit, then flush queued mail) and the
data directory layout::

    DATA/desk.db          the database (unless --db names another URL)
    DATA/attachments/N/   files attached to incident N
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from tether.core.audit import AuditLog
from tether.core.db import make_engine, sqlite_url
from tether.core.releases import CATALOG, Catalog

from . import tables
from .clock import FileClock, SystemClock

MIB = 1024 * 1024


@dataclass
class DeskConfig:
    data_dir: Path
    db_url: str | None = None
    relay: tuple[str, int] | None = None  # outgoing SMTP relay; None keeps mail queued
    mail_from: str = "support@tether-desk.invalid"
    base_url: str = "http://127.0.0.1:8750"
    auto_close_days: float = 7.0
    close_notice_days: float = 2.0
    max_attachment_bytes: int = 10 * MIB
    max_attachments: int = 10
    retired_policy: str = "flag"  # flag | refuse
    catalog_file: Path | None = None
    clock_file: Path | None = None
    extra: dict = field(default_factory=dict)


class Desk:
    def __init__(self, config: DeskConfig, clock=None):
        from .updates import load_catalog

        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        (config.data_dir / "attachments").mkdir(exist_ok=True)
        url = config.db_url or sqlite_url(config.data_dir / "desk.db")
        self.engine = make_engine(url)
        tables.md.create_all(self.engine)
        if clock is None:
            clock = FileClock(config.clock_file) if config.clock_file else SystemClock()
        self.clock = clock
        self.catalog: Catalog = load_catalog(config.catalog_file) if config.catalog_file else CATALOG
        self.audit = AuditLog(self.engine, tables.audit, "desk")
        self.jobs_lock = threading.Lock()

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def attachments_dir(self) -> Path:
        return self.config.data_dir / "attachments"

    @contextmanager
    def tx(self):
        """A transaction; queued mail goes out after it commits."""
        with self.engine.begin() as conn:
            yield conn
        self.flush_mail()

    def read(self):
        return self.engine.connect()

    def flush_mail(self) -> int:
        from .mailout import flush

        return flush(self)

    def close(self) -> None:
        self.engine.dispose()


def one(conn: sa.Connection, stmt) -> dict | None:
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None
