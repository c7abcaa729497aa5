"""The site database's tables as SQLAlchemy Core objects. The schema itself is
created and changed only by the Alembic migrations in ``migrations/``; these
definitions must match the newest revision (a test checks that)."""

from __future__ import annotations

import sqlalchemy as sa

from tether.core.db import audit_table, sessions_table

metadata = sa.MetaData()

site_info = sa.Table(
    "site_info",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("edition", sa.String(32), nullable=False),
    sa.Column("version", sa.String(16), nullable=False),
    sa.Column("installed_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(128), nullable=False, default=""),
    sa.Column("email", sa.String(256)),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("must_change_password", sa.Boolean, nullable=False, default=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("permissions", sa.JSON, nullable=False, default=list),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_login_at", sa.Float),
    sa.Column("timezone", sa.String(64)),  # added in revision 0002 (release 1.1)
)

api_accounts = sa.Table(
    "api_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("client_id", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(256), nullable=False),
    sa.Column("permissions", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("token_ttl", sa.Integer, nullable=False, default=900),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("api_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

site_settings = sa.Table(
    "site_settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

sessions = sessions_table(metadata)
audit_log = audit_table(metadata)

# Tables added by revision 0003 (release 1.2) live in their own modules on this metadata.
from . import client_tables, config_tables, history_tables  # noqa: E402,F401
