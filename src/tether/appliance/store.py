"""The appliance database (``<data>/appliance.db``): its tables and the
key/value settings store. Settings are JSON documents, one per section
(``networking``, ``security``, ``identity`` ...), which keeps the /appliance
configuration export (APPL-04) a straight dump."""

from __future__ import annotations

import time

import sqlalchemy as sa

from tether.core.db import audit_table, sessions_table

metadata = sa.MetaData()

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

admin_account = sa.Table(
    "admin_account",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("must_change_password", sa.Boolean, nullable=False),
    sa.Column("password_changed_at", sa.Float),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("builtin", sa.Boolean, nullable=False, default=False),
    sa.Column("cert_pem", sa.Text, nullable=False),
    sa.Column("chain_pem", sa.Text, nullable=False, default=""),
    sa.Column("key_sealed", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
)

sessions = sessions_table(metadata)
audit_log = audit_table(metadata)

# support incidents the appliance opens by itself (DESK-09), kept until the desk has taken them
support_outbox = sa.Table(
    "support_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(128), nullable=False, unique=True),  # sent to the desk: one incident per key
    sa.Column("summary", sa.String(300), nullable=False),
    sa.Column("details", sa.Text),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text),
)


def create_schema(engine: sa.Engine) -> None:
    """Create the tables of ``metadata``. Other packages (certs: expiry, pending) add theirs to it
    when imported; the runtime imports them first (tether.runtime.provision), so this package
    never imports them back."""
    metadata.create_all(engine)


def get_setting(engine: sa.Engine, key: str, default=None):
    with engine.connect() as c:
        row = c.execute(sa.select(settings.c.value).where(settings.c.key == key)).first()
    return default if row is None else row[0]


def put_setting(conn: sa.Connection, key: str, value) -> None:
    exists = conn.execute(sa.select(settings.c.key).where(settings.c.key == key)).first()
    if exists:
        conn.execute(settings.update().where(settings.c.key == key).values(value=value, updated_at=time.time()))
    else:
        conn.execute(settings.insert().values(key=key, value=value, updated_at=time.time()))
