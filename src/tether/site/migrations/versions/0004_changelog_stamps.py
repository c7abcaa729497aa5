"""Release 1.2.1: every change-log entry carries the role generation and the
witness's fencing token it was written under (docs/formats/changelog.md,
format 2; FO-08, FO-11). Entries written before carry generation 0 and no
token.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("change_log", sa.Column("gen", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("change_log", sa.Column("fence", sa.BigInteger()))
