"""Copying a site database between SQLite and PostgreSQL, row by row, for
backups and restores of a site hosted on PostgreSQL (OPS-03, BK-06).

``dump``: any site database -> a SQLite file (the .nsb payload, which stays
database-neutral), read in one REPEATABLE READ, read-only transaction on
PostgreSQL (one consistent snapshot while the site keeps working), streamed
through a server-side cursor in batches, so memory stays flat.

``load``: a staged SQLite site file -> a new PostgreSQL schema of our own
(site/location.py): the schema is made by the migrations, the rows copied in
one transaction, the sequences set past the highest key. The schema becomes
the site only when the restore swaps the site directory that names it.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tether.core.crashpoints import checkpoint
from tether.core.db import make_engine, sqlite_url
from tether.site import schema
from tether.site.location import SiteDatabase, create_schema
from tether.site.tables import metadata

BATCH = 5000


def _copy_rows(src: sa.Connection, dst: sa.Connection, label: str, skip=frozenset()) -> dict[str, int]:
    """Every site table ``src`` has, the columns it has (a site at an older revision: before its update)."""
    counts = {}
    insp = sa.inspect(src)
    names = set(insp.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in names or table.name in skip:
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        cols = [c for c in table.columns if c.name in have]
        n = 0
        result = src.execution_options(stream_results=True, yield_per=BATCH).execute(sa.select(*cols))
        for rows in result.mappings().partitions(BATCH):
            dst.execute(table.insert(), [dict(r) for r in rows])
            n += len(rows)
            checkpoint(f"{label} rows {table.name}")
        counts[table.name] = n
    return counts


def dump(engine: sa.Engine, dest: Path, skip=frozenset()) -> None:
    """``engine``'s site (at its schema revision) -> a new SQLite file ``dest`` (same revision); the
    tables named in ``skip`` stay empty."""
    out = make_engine(sqlite_url(dest))
    try:
        src_rev = schema.current_revision(engine)
        schema.upgrade(out, src_rev or "head")
        opts = {"isolation_level": "REPEATABLE READ"}
        if engine.dialect.name == "postgresql":
            opts["postgresql_readonly"] = True
        with engine.connect().execution_options(**opts) as src, out.begin() as dst:
            with src.begin():  # one snapshot for every table
                _copy_rows(src, dst, "dump", skip)
    finally:
        out.dispose()


def load(source: Path, db: SiteDatabase) -> dict[str, int]:
    """The staged SQLite site at ``source`` (at the head revision) -> the new schema ``db.schema``."""
    from tether.site.changelog import _reset_sequences

    create_schema(db)
    checkpoint("pg: schema created")
    src_engine, engine = make_engine(sqlite_url(source)), db.engine()
    try:
        schema.upgrade(engine, "head")
        checkpoint("pg: schema migrated")
        with src_engine.connect() as src, engine.begin() as dst:
            counts = _copy_rows(src, dst, "pg: load")
            _reset_sequences(dst)
        checkpoint("pg: loaded")
    finally:
        src_engine.dispose()
        engine.dispose()
    return counts
