"""Copying a site database between SQLite and PostgreSQL, for backups and
restores of a site hosted on PostgreSQL (OPS-03, BK-06).

``dump``: any site database -> a SQLite file (the .nsb payload, which stays
database-neutral), read in one REPEATABLE READ, read-only transaction on
PostgreSQL (one consistent snapshot while the site keeps working), streamed
through a server-side cursor in batches, so memory stays flat.

``load``: a staged SQLite site file -> a new PostgreSQL schema of our own
(site/location.py): the schema is made by the migrations, the rows copied in
one transaction with ``COPY ... FROM STDIN``, the sequences set past the
highest key. The schema becomes the site only when the restore swaps the
site directory that names it.

Between the two databases the rows go through the drivers (psycopg, the
sqlite3 module) as tuples, not through SQLAlchemy's row and parameter
processing, which cost most of the time; the one type the drivers do not
carry alike, JSON (a parsed value from psycopg, text in SQLite), goes as
its text both ways. Other pairs (SQLite to
SQLite) take SQLAlchemy's path.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tether.core.crashpoints import checkpoint
from tether.core.fsutil import fsync_file
from tether.core.db import make_engine, scratch_engine, sqlite_url
from tether.site import schema
from tether.site.location import SiteDatabase, create_schema
from tether.site.tables import metadata

BATCH = 5000


def _tables(src: sa.Connection, skip=frozenset()):
    """(table, the columns ``src`` has of it) for every site table ``src`` has, parents first (a site at an
    older revision has fewer: before its update)."""
    insp = sa.inspect(src)
    names = set(insp.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in names or table.name in skip:
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        yield table, [c for c in table.columns if c.name in have]


def _select(cols) -> str:
    return ", ".join(f'"{c.name}"' for c in cols)


def _json_at(cols) -> list[int]:
    return [i for i, c in enumerate(cols) if isinstance(c.type, sa.JSON)]


def _copy_rows(src: sa.Connection, dst: sa.Connection, label: str, skip=frozenset()) -> dict[str, int]:
    """Every site table ``src`` has into ``dst``, in batches (the driver-level paths for PostgreSQL <-> SQLite)."""
    pair = (src.dialect.name, dst.dialect.name)
    counts = {}
    for table, cols in _tables(src, skip):
        if pair == ("postgresql", "sqlite"):
            n = _pg_to_sqlite(src, dst, table, cols, label)
        elif pair == ("sqlite", "postgresql"):
            n = _sqlite_to_pg(src, dst, table, cols, label)
        else:
            n = 0
            result = src.execution_options(stream_results=True, yield_per=BATCH).execute(sa.select(*cols))
            for rows in result.mappings().partitions(BATCH):
                dst.execute(table.insert(), [dict(r) for r in rows])
                n += len(rows)
                checkpoint(f"{label} rows {table.name}")
        counts[table.name] = n
    return counts


def _pg_to_sqlite(src: sa.Connection, dst: sa.Connection, table: sa.Table, cols, label: str) -> int:
    """A server-side cursor in the source's snapshot -> ``executemany`` on the SQLite file. JSON columns
    are read as their text (``json`` keeps what SQLAlchemy wrote, which is what it writes in SQLite), so
    no value is parsed and dumped again."""
    pg, lite = src.connection.driver_connection, dst.connection.driver_connection
    js = set(_json_at(cols))
    select = ", ".join(f'"{c.name}"::text' if i in js else f'"{c.name}"' for i, c in enumerate(cols))
    insert = f'INSERT INTO "{table.name}" ({_select(cols)}) VALUES ({", ".join("?" * len(cols))})'
    n = 0
    with pg.cursor(name=f"tether_dump_{table.name}") as cur:
        cur.itersize = BATCH
        cur.execute(f'SELECT {select} FROM "{table.name}"')
        while rows := cur.fetchmany(BATCH):
            lite.executemany(insert, rows)
            n += len(rows)
            checkpoint(f"{label} rows {table.name}")
    return n


def _sqlite_to_pg(src: sa.Connection, dst: sa.Connection, table: sa.Table, cols, label: str) -> int:
    """The SQLite file's rows -> ``COPY ... FROM STDIN`` into the new schema (JSON goes as its text)."""
    lite, pg = src.connection.driver_connection, dst.connection.driver_connection
    cur = lite.execute(f'SELECT {_select(cols)} FROM "{table.name}"')
    n = 0
    with pg.cursor() as out, out.copy(f'COPY "{table.name}" ({_select(cols)}) FROM STDIN') as copy:
        while rows := cur.fetchmany(BATCH):
            for r in rows:
                copy.write_row(r)
            n += len(rows)
            checkpoint(f"{label} rows {table.name}")
    cur.close()
    return n


def dump(engine: sa.Engine, dest: Path, skip=frozenset()) -> None:
    """``engine``'s site (at its schema revision) -> a new SQLite file ``dest`` (same revision); the
    tables named in ``skip`` stay empty. The file is filled as a scratch file (core/db.py
    ``scratch_engine``: no journal, syncs or foreign-key checks, half the time of the live pragmas)
    and synced once at the end."""
    out = scratch_engine(dest)
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
    fsync_file(dest)  # written without syncs (a scratch file): on disk before anyone relies on it


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
