"""A consistent, self-contained SQLite snapshot of the site database for a
backup. SQLite sites: a page copy (online-backup API) whose few excluded
rows are then deleted with secure_delete (their pages are zeroed); or, when
the excluded tables are big (a long change log, history left out), every
table is copied inside one read transaction into a new file with the excluded
ones left empty, so their rows never reach the snapshot. Other backends: a logical copy through
SQLAlchemy, then the excluded rows are deleted with secure_delete and the file
is vacuumed."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from tether.site.tables import metadata

from .policy import excluded_tables


def _copy_logical(engine: sa.Engine, dest: Path) -> None:
    """Any backend -> SQLite: same schema (Alembic head), rows streamed in batches."""
    from tether.core.db import make_engine, sqlite_url
    from tether.site import schema

    out = make_engine(sqlite_url(dest))
    try:
        schema.upgrade(out, "head")
        with engine.connect() as src, out.begin() as dst:
            for table in metadata.sorted_tables:
                result = src.execution_options(stream_results=True, yield_per=5000).execute(sa.select(table))
                for rows in result.mappings().partitions(5000):
                    dst.execute(table.insert(), [dict(r) for r in rows])
    finally:
        out.dispose()


_CREATE_TABLE = re.compile(r'^CREATE TABLE\s+("?)([A-Za-z_][A-Za-z0-9_]*)\1', re.I)
_CREATE_INDEX = re.compile(r'^CREATE (UNIQUE )?INDEX\s+("?)([A-Za-z_][A-Za-z0-9_]*)\2', re.I)


def _copy_sqlite(src_path: str, dest: Path, excluded: set[str]) -> None:
    """Copy the site database table by table inside ONE read transaction (a
    consistent snapshot, also under WAL), leaving excluded tables empty; indexes
    are built after the rows. Only SQL text SQLite itself stored is replayed."""
    con = sqlite3.connect(src_path, isolation_level=None)
    try:
        con.execute("ATTACH DATABASE ? AS snap", (str(dest),))
        con.execute("PRAGMA snap.journal_mode=OFF")
        con.execute("PRAGMA snap.synchronous=OFF")
        con.execute("BEGIN")
        objects = con.execute("SELECT type, name, tbl_name, sql FROM main.sqlite_master "
                              "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
        tables = [(n, q) for t, n, _tbl, q in objects if t == "table"]
        for name, sql in tables:
            con.execute(_CREATE_TABLE.sub(lambda m: f'CREATE TABLE snap."{m.group(2)}"', sql, count=1))
            if name not in excluded:
                con.execute(f'INSERT INTO snap."{name}" SELECT * FROM main."{name}"')
        has_seq = con.execute("SELECT 1 FROM main.sqlite_master WHERE name='sqlite_sequence'").fetchone()
        if has_seq and con.execute("SELECT 1 FROM snap.sqlite_master WHERE name='sqlite_sequence'").fetchone():
            con.execute("INSERT INTO snap.sqlite_sequence SELECT * FROM main.sqlite_sequence")
        for kind, name, _tbl, sql in objects:
            if kind == "index":
                con.execute(_CREATE_INDEX.sub(lambda m: f'CREATE {m.group(1) or ""}INDEX snap."{m.group(3)}"', sql,
                                              count=1))
            elif kind in ("view", "trigger"):
                raise RuntimeError(f"the site database has a {kind} ({name}) the snapshot does not copy")
        con.execute("COMMIT")
        con.execute("DETACH DATABASE snap")
    finally:
        con.close()


FILTER_THRESHOLD = 50_000  # excluded rows above which copying table by table beats a page copy + delete


def _rows(path: str, tables) -> int:
    con = sqlite3.connect(path)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return sum(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables if t in names)
    finally:
        con.close()


def take(engine: sa.Engine, dest: Path, include_history: bool) -> dict[str, int]:
    """Write the snapshot to ``dest``; return row counts per table."""
    excluded = excluded_tables(metadata, include_history)
    if engine.dialect.name == "sqlite":
        if _rows(engine.url.database, excluded) > FILTER_THRESHOLD:
            _copy_sqlite(engine.url.database, dest, set(excluded))  # leave the bulk behind
            dst = sqlite3.connect(dest)
        else:  # a page copy, then wipe the few excluded rows (secure_delete zeroes their pages)
            src, dst = sqlite3.connect(engine.url.database), sqlite3.connect(dest)
            try:
                src.backup(dst, pages=4096)
            finally:
                src.close()
            names = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            dst.execute("PRAGMA secure_delete=ON")
            for name in excluded:
                if name in names:
                    dst.execute(f'DELETE FROM "{name}"')
            dst.commit()
    else:
        _copy_logical(engine, dest)
        dst = sqlite3.connect(dest)
        names = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        dst.execute("PRAGMA secure_delete=ON")
        for name in excluded:
            if name in names:
                dst.execute(f'DELETE FROM "{name}"')
        dst.commit()
        dst.execute("VACUUM")
    try:
        dst.execute("PRAGMA journal_mode=DELETE")
        names = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        counts = {n: dst.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in sorted(names)}
    finally:
        dst.close()
    return counts
