"""The site schema (tether.site.schema) agrees with the code: the head
migration builds exactly the tables the code declares, and the current
release in the catalog runs that head."""

import sqlalchemy as sa

from tether import __version__
from tether.core.db import make_engine, sqlite_url
from tether.core.releases import CATALOG
from tether.site import schema
from tether.site.tables import metadata


def test_current_release_runs_the_head_schema():
    rel = CATALOG.get(__version__)
    assert rel is not None
    assert rel.schema_revision == schema.head_revision()


def test_tables_match_the_head_migration(tmp_path):
    engine = make_engine(sqlite_url(tmp_path / "s.db"))
    schema.upgrade(engine, "head")
    insp = sa.inspect(engine)
    for table in metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
    engine.dispose()
