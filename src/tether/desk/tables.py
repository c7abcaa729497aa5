"""The desk database's tables (SQLAlchemy Core). The desk is its own service
with its own database (``--db URL``, SQLite in the data directory by default);
tables are created on start (``create_all``), there is no migration history yet.

Times are ISO 8601 UTC strings (see ``clock``). Nothing here holds logic.
"""

from __future__ import annotations

import sqlalchemy as sa

from tether.core.db import audit_table, sessions_table

md = sa.MetaData()
S = sa.String
T = sa.Text

staff = sa.Table(
    "staff", md,
    sa.Column("username", S(64), primary_key=True),
    sa.Column("password_hash", S(256), nullable=False),
    sa.Column("email", S(254), nullable=False, unique=True),
    sa.Column("display_name", S(128)),
    sa.Column("role", S(16), nullable=False, default="staff"),  # staff | engineer | supervisor
)

sessions = sessions_table(md)
audit = audit_table(md)

customers = sa.Table(
    "customers", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", S(200), nullable=False, unique=True),
    sa.Column("country", S(2), nullable=False, default="US"),
    sa.Column("vat_number", S(32)),
)

agreements = sa.Table(
    "agreements", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("starts", sa.Date, nullable=False),
    sa.Column("ends", sa.Date, nullable=False),  # last day covered
    sa.Column("level", S(32), nullable=False, default="standard"),
)

representatives = sa.Table(
    "representatives", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("name", S(200), nullable=False),
    sa.Column("email", S(254), nullable=False, unique=True),  # stored lower-case
    sa.Column("phone", S(64)),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
)

refusals = sa.Table(
    "refusals", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", S(40), nullable=False),
    sa.Column("channel", S(16), nullable=False),  # web | api | mail | appliance
    sa.Column("who", S(254)),
    sa.Column("incident", sa.Integer),
    sa.Column("reason", T, nullable=False),
)

incidents = sa.Table(
    "incidents", md,
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("summary", S(300), nullable=False),
    sa.Column("customer_id", sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("organisation", S(200), nullable=False),
    sa.Column("inquirer_name", S(200)),
    sa.Column("inquirer_email", S(254), nullable=False),
    sa.Column("source", S(16), nullable=False),  # web | api | mail | appliance
    sa.Column("product_version", S(20)),
    sa.Column("version_retired", sa.Boolean, nullable=False, default=False),
    sa.Column("error_messages", T), sa.Column("reproduction_steps", T),
    sa.Column("prior_actions", T), sa.Column("changes_made", T),
    sa.Column("duration", S(200)), sa.Column("os", S(200)), sa.Column("server_roles", S(300)),
    sa.Column("description", T),
    sa.Column("appliance_status", sa.JSON),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("status", S(40), nullable=False),
    sa.Column("received_at", S(40), nullable=False),
    sa.Column("clock_start", S(40), nullable=False),
    sa.Column("first_response_base", S(40), nullable=False),
    sa.Column("first_response_at", S(40)),
    sa.Column("customer_wait_base", S(40)),  # set while Customer Information Requested
    sa.Column("status_since", S(40), nullable=False),
    sa.Column("close_notice_at", S(40)),
    sa.Column("escalated_to", S(64)),
    sa.Column("closed_at", S(40)),
)

# what an appliance sent as the key of one report (e.g. one automatic failover): a retry with the same key
# gets the incident it already opened, never a second one (DESK-09)
appliance_reports = sa.Table(
    "appliance_reports", md,
    sa.Column("customer_id", sa.ForeignKey("customers.id"), primary_key=True),
    sa.Column("key", S(128), primary_key=True),
    sa.Column("incident", sa.ForeignKey("incidents.number"), nullable=False),
    sa.Column("at", S(40), nullable=False),
)

events = sa.Table(
    "events", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident", sa.ForeignKey("incidents.number"), nullable=False, index=True),
    sa.Column("at", S(40), nullable=False),
    sa.Column("actor", S(254), nullable=False),
    sa.Column("kind", S(32), nullable=False),
    sa.Column("text", T),
    sa.Column("data", sa.JSON),
)

attachments = sa.Table(
    "attachments", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident", sa.ForeignKey("incidents.number"), nullable=False, index=True),
    sa.Column("event", sa.ForeignKey("events.id")),
    sa.Column("filename", S(255), nullable=False),
    sa.Column("content_type", S(128)),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", S(64), nullable=False),
    sa.Column("path", S(512), nullable=False),  # relative to the data directory
)

feedback = sa.Table(
    "feedback", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident", sa.ForeignKey("incidents.number"), nullable=False),
    sa.Column("at", S(40), nullable=False),
    sa.Column("email", S(254), nullable=False),
    sa.Column("rating", sa.Integer, nullable=False),
    sa.Column("comment", T),
)

tokens = sa.Table(
    "appliance_tokens", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", S(64), nullable=False, unique=True),
    sa.Column("name", S(128), nullable=False, unique=True),
    sa.Column("customer_id", sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("contact_email", S(254), nullable=False),
    sa.Column("created_at", S(40), nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

outbox = sa.Table(
    "outbox", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", S(40), nullable=False),
    sa.Column("to_addr", S(254), nullable=False),
    sa.Column("subject", S(300), nullable=False),
    sa.Column("body", T, nullable=False),
    sa.Column("sent_at", S(40)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", T),
)

rmas = sa.Table(
    "rmas", md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident", sa.ForeignKey("incidents.number")),
    sa.Column("customer_id", sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("model", S(16), nullable=False),
    sa.Column("serial", S(64), nullable=False),
    sa.Column("part", S(16), nullable=False),  # disk | power_supply | appliance
    sa.Column("service", S(16), nullable=False),  # replacement | repair_return
    sa.Column("contact", sa.JSON, nullable=False),
    sa.Column("shipping_address", T, nullable=False),
    sa.Column("country", S(2), nullable=False),
    sa.Column("vat_number", S(32)),
    sa.Column("vat_consent", sa.Boolean, nullable=False, default=False),
    sa.Column("status", S(24), nullable=False),
    sa.Column("created_at", S(40), nullable=False),
    sa.Column("shipped_at", S(40)), sa.Column("live_at", S(40)),
    sa.Column("defective_due", S(40)), sa.Column("defective_received_at", S(40)),
    sa.Column("repair_due", S(40)),
    sa.Column("invoice", sa.Boolean, nullable=False, default=False),
    sa.Column("invoice_amount", sa.Integer),  # US dollars, list price
)

hosted = sa.Table(
    "hosted_appliances", md,
    sa.Column("name", S(128), primary_key=True),
    sa.Column("customer_id", sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("version", S(20), nullable=False),
    sa.Column("level", sa.Integer, nullable=False, default=1),
    sa.Column("contact_email", S(254), nullable=False),
)

notices = sa.Table(  # update notices already mailed, so each goes once
    "update_notices", md,
    sa.Column("appliance", S(128), primary_key=True),
    sa.Column("target", S(20), primary_key=True),
    sa.Column("sent_at", S(40), nullable=False),
    sa.Column("update_at", S(40), nullable=False),
)
