"""A consistent, self-contained SQLite snapshot of the site database for a
backup: the SQLite online-backup API for SQLite sites (a logical copy for
other backends), then the rows a backup must not hold are securely wiped."""

from __future__ import annotations

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


def take(engine: sa.Engine, dest: Path, include_history: bool) -> dict[str, int]:
    """Write the snapshot to ``dest``; return row counts per table."""
    if engine.dialect.name == "sqlite":
        src = sqlite3.connect(engine.url.database)
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst, pages=4096)
        finally:
            src.close()
    else:
        _copy_logical(engine, dest)
        dst = sqlite3.connect(dest)
    try:
        excluded = excluded_tables(metadata, include_history)
        names = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        wiped = False
        dst.execute("PRAGMA secure_delete=ON")
        for name in excluded:
            if name in names and dst.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone():
                dst.execute(f'DELETE FROM "{name}"')
                wiped = True
        dst.commit()
        if wiped:
            dst.execute("VACUUM")
        dst.execute("PRAGMA journal_mode=DELETE")
        counts = {n: dst.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in sorted(names)}
    finally:
        dst.close()
    return counts
