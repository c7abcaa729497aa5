"""Tables of the site's configuration (SITE-01, and SITE-02 for Remote
Support sites), on the same metadata as ``tables.py``; created by migration
0003. Named things are keyed by their (immutable) name so that references,
the change log and failover sync never depend on generated ids.

Secret columns (LDAP bind password, RADIUS shared secret, webhook HMAC key,
Kerberos keytab) are stored as given in the site database, not sealed with
the per-appliance key: they must travel with site backups and failover sync
to other appliances. The API never returns them (``<name>_set`` only)."""

from __future__ import annotations

import sqlalchemy as sa

from .tables import metadata

NAME = sa.String(64)


def _named(name: str, *cols: sa.Column, **kw) -> sa.Table:
    return sa.Table(name, metadata, sa.Column("name", NAME, primary_key=True), *cols,
                    sa.Column("created_at", sa.Float, nullable=False), **kw)


teams = _named("teams", sa.Column("description", sa.String(512), nullable=False))

team_members = sa.Table(
    "team_members", metadata,
    sa.Column("team", NAME, sa.ForeignKey("teams.name"), primary_key=True),
    sa.Column("username", sa.String(64), sa.ForeignKey("users.username"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
)

security_providers = _named(
    "security_providers",
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("host", sa.String(253)),
    sa.Column("port", sa.Integer),
    sa.Column("tls_mode", sa.String(16)),
    sa.Column("timeout_seconds", sa.Integer, nullable=False),
    sa.Column("bind_dn", sa.String(512)),
    sa.Column("bind_password", sa.Text),
    sa.Column("search_base", sa.String(512)),
    sa.Column("user_filter", sa.String(512)),
    sa.Column("attr_username", sa.String(64)),
    sa.Column("attr_display_name", sa.String(64)),
    sa.Column("attr_email", sa.String(64)),
    sa.Column("attr_groups", sa.String(64)),
    sa.Column("radius_secret", sa.Text),
    sa.Column("realm", sa.String(253)),
    sa.Column("keytab", sa.LargeBinary),
)

group_policies = _named(
    "group_policies",
    sa.Column("description", sa.String(512), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("permissions", sa.JSON, nullable=False),
)

group_policy_members = sa.Table(
    "group_policy_members", metadata,
    sa.Column("policy", NAME, sa.ForeignKey("group_policies.name"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("username", sa.String(64), sa.ForeignKey("users.username")),
    sa.Column("team", NAME, sa.ForeignKey("teams.name")),
    sa.Column("provider", NAME, sa.ForeignKey("security_providers.name")),
    sa.Column("group_name", sa.String(256)),
)

jumpoints = _named(
    "jumpoints",
    sa.Column("description", sa.String(512), nullable=False),
    sa.Column("hostname", sa.String(253), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("protocols", sa.JSON, nullable=False),
    sa.Column("allowed_networks", sa.JSON, nullable=False),
    sa.Column("max_sessions", sa.Integer, nullable=False),
)

jump_client_groups = _named(
    "jump_client_groups",
    sa.Column("description", sa.String(512), nullable=False),
    sa.Column("allow_unattended", sa.Boolean, nullable=False),
    sa.Column("jumpoint", NAME, sa.ForeignKey("jumpoints.name")),
)

jump_clients = sa.Table(
    "jump_clients", metadata,
    sa.Column("name", NAME, primary_key=True),
    sa.Column("hostname", sa.String(253), nullable=False),
    sa.Column("group_name", NAME, sa.ForeignKey("jump_client_groups.name")),
    sa.Column("os", sa.String(64), nullable=False),
    sa.Column("public_ip", sa.String(64)),
    sa.Column("comments", sa.String(512), nullable=False),
    sa.Column("last_seen_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
)

languages = sa.Table(
    "languages", metadata,
    sa.Column("name", sa.String(16), primary_key=True),  # a language tag, e.g. en-US
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

event_targets = _named(
    "event_targets",
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("url", sa.String(2048)),
    sa.Column("hmac_secret", sa.Text),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("event_types", sa.JSON, nullable=False),
)

# --- Remote Support edition only (SITE-02) ---------------------------------------
canned_messages = _named(
    "canned_messages",
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("team", NAME, sa.ForeignKey("teams.name")),
)

branding_assets = sa.Table(
    "branding_assets", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

exit_surveys = _named(
    "exit_surveys",
    sa.Column("audience", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("title", sa.String(256), nullable=False),
)

exit_survey_questions = sa.Table(
    "exit_survey_questions", metadata,
    sa.Column("survey", NAME, sa.ForeignKey("exit_surveys.name"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("text", sa.String(512), nullable=False),
    sa.Column("choices", sa.JSON, nullable=False),
    sa.Column("required", sa.Boolean, nullable=False),
)

store_files = sa.Table(
    "store_files", metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(128), nullable=False),
    sa.Column("description", sa.String(512), nullable=False),
    sa.Column("uploaded_by", sa.String(128), nullable=False),
    sa.Column("uploaded_at", sa.Float, nullable=False),
)

presentations = _named(
    "presentations",
    sa.Column("title", sa.String(256), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("presenter", sa.String(64), sa.ForeignKey("users.username"), nullable=False),
    sa.Column("scheduled_at", sa.Float),
    sa.Column("duration_minutes", sa.Integer, nullable=False),
    sa.Column("attendees", sa.JSON, nullable=False),
    sa.Column("file", sa.String(255), sa.ForeignKey("store_files.name")),
    sa.Column("status", sa.String(16), nullable=False),
)
