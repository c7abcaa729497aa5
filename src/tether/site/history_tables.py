"""Tables of the site's logged history (SITE-03), the change log that
failover sync and incremental backup read, and the outbound-event delivery
queue; created by migration 0003. Recordings are referenced here by the
SHA-256 of a file under ``<data>/site/recordings``, never stored inside."""

from __future__ import annotations

import sqlalchemy as sa

from .tables import metadata

# 64-bit ids on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is already 64-bit (and the rowid)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

session_records = sa.Table(
    "session_records", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("lsid", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("rep", sa.String(64), nullable=False),
    sa.Column("team", sa.String(64)),
    sa.Column("customer_name", sa.String(128), nullable=False),
    sa.Column("customer_host", sa.String(253), nullable=False),
    sa.Column("jump_client", sa.String(64)),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("end_reason", sa.String(32)),
    sa.Index("ix_session_records_started", "started_at", "id"),
    sa.Index("ix_session_records_rep", "rep", "started_at", "id"),
    sa.Index("ix_session_records_kind", "kind", "started_at", "id"),
)

session_events = sa.Table(
    "session_events", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("session_id", BigId, sa.ForeignKey("session_records.id"), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

presentation_logs = sa.Table(
    "presentation_logs", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("presentation", sa.String(64), nullable=False),
    sa.Column("presenter", sa.String(64), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("attendees", sa.JSON, nullable=False),
    sa.Index("ix_presentation_logs_started", "started_at", "id"),
)

recordings = sa.Table(
    "recordings", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("session_id", BigId, sa.ForeignKey("session_records.id"), index=True),
    sa.Column("presentation_log_id", BigId, sa.ForeignKey("presentation_logs.id")),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("duration_seconds", sa.Float, nullable=False),
)

license_usage = sa.Table(
    "license_usage", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),  # license.acquire / license.release
    sa.Column("in_use", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Index("ix_license_usage_at", "at", "id"),
)

team_activity = sa.Table(
    "team_activity", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("team", sa.String(64), nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("detail", sa.String(512), nullable=False),
    sa.Index("ix_team_activity_at", "at", "id"),
)

exit_survey_answers = sa.Table(
    "exit_survey_answers", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("survey", sa.String(64), nullable=False),
    sa.Column("session_id", BigId, sa.ForeignKey("session_records.id")),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)

change_log = sa.Table(
    "change_log", metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("tbl", sa.String(64), nullable=False),
    sa.Column("op", sa.String(8), nullable=False),  # "upsert" | "delete"
    sa.Column("key", sa.JSON, nullable=False),
    sa.Column("row", sa.JSON),
    sa.Column("gen", sa.BigInteger, nullable=False, server_default="0"),  # the role generation it was written under
    sa.Column("fence", sa.BigInteger),  # the witness's fencing token it was written under (FO-11), or null
    sqlite_autoincrement=True,  # never reuse a sequence number, even after truncation
)

event_deliveries = sa.Table(
    "event_deliveries", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.String(512)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
    sa.Index("ix_event_deliveries_due", "status", "next_attempt_at"),
)
