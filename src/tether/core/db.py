"""SQLAlchemy engine helpers and the table shapes both databases share
(sessions and the audit log), so the /appliance and /login realms use one
implementation of each."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str, schema: str | None = None) -> sa.Engine:
    """An engine; SQLite gets WAL, foreign keys and a busy timeout. PostgreSQL: ``schema`` (a name
    of our own making, ``[a-z0-9_]``) is the only schema on the search path, so unqualified names
    (the site's tables, Alembic's version table, sequences) all live there."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA secure_delete=ON")  # deleted secrets do not linger in free pages
            cur.close()

        return engine
    if schema is not None:
        if not schema.replace("_", "").isalnum() or not schema.isascii():
            raise ValueError(f"not a schema name of ours: {schema!r}")
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": f"-c search_path={schema}"})
    return sa.create_engine(url, pool_pre_ping=True)


def scratch_engine(path: Path) -> sa.Engine:
    """An engine on a private SQLite work file that a crash makes us write again from the start (a
    backup's snapshot, the copy of a site on its way between databases): no journal, no syncs and no
    foreign-key checks (the rows come from one consistent source, parents first). Never a live site:
    whoever opens the file afterwards sets its own pragmas (the live ones are ``make_engine``'s)."""
    engine = sa.create_engine(sqlite_url(path), connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=OFF")
        cur.execute("PRAGMA synchronous=OFF")
        cur.close()

    return engine


def sessions_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "sessions",
        md,
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("source_ip", sa.String(64)),
    )


def audit_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "audit_log",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("target", sa.String(256)),
        sa.Column("source_ip", sa.String(64)),
        sa.Column("details", sa.JSON),
    )
