"""Running the site database's Alembic migrations from code: bring a site
database to the revision a release needs, and read the revision it has."""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> "Config":
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def upgrade(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        upgrade_conn(conn, revision)


def upgrade_conn(conn: sa.Connection, revision: str) -> None:
    """Migrate in the caller's transaction. Migrations run on every copy of a
    site, so their data changes are not captured by the change log."""
    from alembic import command

    from .changelog import NOLOG

    cfg = _config()
    conn.execution_options(**{NOLOG: True})
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)
