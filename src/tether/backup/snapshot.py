"""A consistent, self-contained SQLite snapshot of the site database for a
backup, without the rows of the tables a backup leaves out (policy.py).

SQLite sites, one of two copies, whichever is cheaper for this database:
- **rows** (most of the file is left out, e.g. a long change log): a new
  file, schema from the live ``sqlite_master``, every table a backup holds
  filled by ``INSERT INTO ... SELECT *`` in one read transaction of the live
  database (WAL: one consistent view while the appliance keeps writing),
  which SQLite runs as its transfer optimization (records and index entries
  copied as they are: the path VACUUM takes). The left-out tables are created
  empty and their rows never read, and the file is as small as what it holds.
- **pages** (little is left out, e.g. a site restored from a backup, whose
  change log starts empty): the online-backup API in one step (one read
  transaction too), then the left-out rows deleted with ``secure_delete``, so
  their pages are zeroed (the live database runs with secure_delete as well,
  so its free pages carry no deleted data).
Measured (bench/backup_restore.py, a 1.4 GB site of which the change log is
0.97 GB): rows 3.9 s for a 445 MB file; pages 2.3 s plus 2.8 s of wiping.
The row copy costs about 8.8 s per GB kept, the page copy 1.6 s per GB of
file plus 2.9 s per GB wiped (and the hashing and compression of the whole
file), so rows win once about half the file is left out (``ROWS_FROM``).

PostgreSQL sites: a logical copy (backup/pgcopy.py: one REPEATABLE READ
read-only transaction, streamed) that leaves the excluded tables empty.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from tether.site.tables import metadata

from . import pgcopy
from .policy import excluded_tables


ROWS_FROM = 0.5  # share of the file left out from which the row copy is the faster one (module docstring)
SAMPLE = 200  # rows read to estimate a left-out table's row size


def take(engine: sa.Engine, dest: Path, include_history: bool) -> dict[str, int]:
    """Write the snapshot to ``dest``; return row counts per table."""
    excluded = excluded_tables(metadata, include_history)
    if engine.dialect.name == "sqlite":
        live = engine.url.database
        copy = _copy_rows if left_out_share(live, excluded) >= ROWS_FROM else _copy_pages
        return copy(live, dest, excluded)
    pgcopy.dump(engine, dest, skip=excluded)  # one REPEATABLE READ snapshot, streamed
    dst = sqlite3.connect(dest)
    try:
        return _counts(dst)
    finally:
        dst.close()


def left_out_share(live: str, excluded) -> float:
    """An estimate of the share of the live database file that the left-out tables take: for each,
    its rowid span times the mean size of its last ``SAMPLE`` rows (a few index reads, not a scan)."""
    con = sqlite3.connect(live)
    try:
        size = con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        left_out = 0.0
        for name in sorted(set(excluded) & present):
            # two queries: SQLite reads one end of the b-tree for a lone min() or max(), but scans for both
            lo = con.execute(f'SELECT min(rowid) FROM "{name}"').fetchone()[0]
            hi = con.execute(f'SELECT max(rowid) FROM "{name}"').fetchone()[0]
            if lo is None:
                continue
            rows = con.execute(f'SELECT * FROM "{name}" ORDER BY rowid DESC LIMIT {SAMPLE}').fetchall()
            if not rows:  # emptied meanwhile (the site keeps writing)
                continue
            mean = sum(sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in r) for r in rows) / len(rows)
            left_out += (hi - lo + 1) * mean
    finally:
        con.close()
    return left_out / size if size else 0.0


def _copy_pages(live: str, dest: Path, excluded) -> dict[str, int]:
    """The page copy (module docstring)."""
    src, dst = sqlite3.connect(live), _work_file(dest)
    try:
        src.backup(dst, pages=-1)  # one step: one read transaction, never restarted by the site's writes
        names = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        dst.execute("PRAGMA secure_delete=ON")  # the excluded rows' pages are zeroed, not just unlinked
        for name in excluded:
            if name in names:
                dst.execute(f'DELETE FROM "{name}"')  # no journal: 7x faster on a long change log
        dst.commit()
        return _counts(dst)
    finally:
        src.close()
        dst.close()


def _work_file(dest: Path, **connect) -> sqlite3.Connection:
    """The snapshot file, opened as a private work file: no rollback journal, no syncs (a copy
    interrupted by a crash is redone anyway)."""
    dst = sqlite3.connect(dest, **connect)
    dst.execute("PRAGMA journal_mode=OFF")
    dst.execute("PRAGMA synchronous=OFF")
    return dst


def _counts(dst: sqlite3.Connection) -> dict[str, int]:
    """Row counts per table of a finished snapshot, which is left with a plain rollback journal."""
    dst.execute("PRAGMA journal_mode=DELETE")
    names = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {n: dst.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in sorted(names)}


def _copy_rows(live: str, dest: Path, excluded) -> dict[str, int]:
    """The row copy (module docstring); returns row counts per table, as written."""
    dst = _work_file(dest, isolation_level=None)  # transactions as written below
    try:
        dst.execute("PRAGMA cache_size=-8192")  # 8 MiB: 32 were no faster, and RSS counts (PERF-05: 256 MB)
        dst.execute("ATTACH DATABASE ? AS live", (live,))
        for pragma in ("page_size", "auto_vacuum", "user_version", "application_id"):  # before the first table
            dst.execute(f"PRAGMA main.{pragma}={int(dst.execute(f'PRAGMA live.{pragma}').fetchone()[0])}")
        dst.execute("BEGIN")  # the first read of ``live`` fixes the view every table is copied from
        objects = dst.execute("SELECT type, name, sql FROM live.sqlite_master WHERE sql IS NOT NULL "
                              "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid").fetchall()
        for kind, _name, sql in objects:  # tables and their indexes first: the transfer needs the indexes
            if kind in ("table", "index"):
                dst.execute(sql)
        counts = {}
        for kind, name, _sql in objects:
            if kind == "table":
                counts[name] = 0 if name in excluded else \
                    dst.execute(f'INSERT INTO main."{name}" SELECT * FROM live."{name}"').rowcount
        if dst.execute("SELECT 1 FROM live.sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
            # AUTOINCREMENT high-water marks (created with the first such table)
            counts["sqlite_sequence"] = dst.execute(
                "INSERT INTO main.sqlite_sequence SELECT * FROM live.sqlite_sequence").rowcount
        for kind, _name, sql in objects:  # views and triggers last (a trigger would stop the transfer)
            if kind not in ("table", "index"):
                dst.execute(sql)
        dst.execute("COMMIT")
        dst.execute("DETACH DATABASE live")
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
    return dict(sorted(counts.items()))
