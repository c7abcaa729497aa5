"""Tables of the deployed clients' credentials (CL-01, CL-02), on the same
metadata as ``tables.py``; created by migration 0003.

A deployment is a one-time installer token an admin made in /login (only
its SHA-256 is kept); redeeming it registers a jump client or a jumpoint and
creates a client identity, whose secret (256 random bits) is likewise kept
only as a SHA-256. Both are site data: they travel with backups and failover
sync, so that restored or replacement appliances recognise the clients
already deployed in the field (CL-03)."""

from __future__ import annotations

import sqlalchemy as sa

from .tables import metadata

client_deployments = sa.Table(
    "client_deployments", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # jump | jumpoint
    sa.Column("target", sa.String(64)),  # jump client group, or the jumpoint's name
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("trust", sa.JSON, nullable=False),  # {"pin": "sha256/<b64>"} or {"root": true}
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sa.Column("used_by", sa.String(32)),  # the identity it created
)

client_identities = sa.Table(
    "client_identities", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # jump | jumpoint
    sa.Column("name", sa.String(64), nullable=False),  # the jump client's or jumpoint's name
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Column("revoked_by", sa.String(64)),
    sa.Index("ix_client_identities_item", "kind", "name"),
)
