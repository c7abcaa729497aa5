"""Where a site's database lives (OPS-03; docs/formats/site-database.md).

The site directory (``<data>/site -> site-<id>/``) says it, in ``database.json``:

    {"backend": "sqlite"}                                      site.db beside the file
    {"backend": "postgresql", "schema": "tether_site_<hex>"}   that schema of the database at the
                                                               appliance's site database URL

Without the file (sites installed before it existed): SQLite, unless the
appliance has a site database URL, then PostgreSQL's default search path.

Because the file is inside the site directory, the one atomic rename that
swaps site directories (a restore, a move between databases) switches the
database with the file store: old or new, never a mixture. Every schema of
ours that the current site directory does not name is a leftover of an
interrupted restore and is dropped at the next start (``orphan_schemas``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

from tether.core.db import make_engine, sqlite_url
from tether.core.errors import Conflict
from tether.core.fsutil import write_atomic

POINTER = "database.json"
SCHEMA_PREFIX = "tether_site_"
SQLITE, POSTGRESQL = "sqlite", "postgresql"


@dataclass(frozen=True)
class SiteDatabase:
    backend: str  # sqlite | postgresql
    url: str  # the SQLAlchemy URL: sqlite:///<site dir>/site.db, or the PostgreSQL server's
    schema: str | None  # PostgreSQL: our schema; None is the server's default search path (older sites)

    @property
    def external(self) -> bool:
        return self.backend == POSTGRESQL

    def engine(self) -> sa.Engine:
        return make_engine(self.url, self.schema)

    def describe(self) -> dict:
        """Where it is, without the password: what an administrator is told."""
        if not self.external:
            return {"backend": SQLITE}
        u = sa.engine.make_url(self.url)
        return {"backend": POSTGRESQL, "host": u.host, "port": u.port or 5432, "database": u.database,
                "user": u.username, "schema": self.schema or "public"}


def read_pointer(site_dir: Path) -> dict | None:
    p = Path(site_dir) / POINTER
    if not p.exists():
        return None
    doc = json.loads(p.read_text())
    if doc.get("backend") not in (SQLITE, POSTGRESQL):
        raise ValueError(f"{p}: unknown backend {doc.get('backend')!r}")
    return doc


def of(site_dir: Path, server_url: str | None) -> SiteDatabase:
    """The database of the site in ``site_dir``; ``server_url`` is the appliance's site database URL."""
    doc = read_pointer(site_dir)
    backend = doc["backend"] if doc else (POSTGRESQL if server_url else SQLITE)
    if backend == SQLITE:
        return SiteDatabase(SQLITE, sqlite_url(Path(site_dir) / "site.db"), None)
    if not server_url:
        raise Conflict("the site's database is on PostgreSQL but this appliance has no site database URL",
                       hint="restore the appliance configuration that holds it, or restore a site backup")
    return SiteDatabase(POSTGRESQL, server_url, doc.get("schema") if doc else None)


def target(server_url: str | None, site_dir: Path) -> SiteDatabase:
    """Where a new copy of the site (install, restore, move) goes: a new schema on PostgreSQL, or
    site.db in ``site_dir`` (the staging directory)."""
    if server_url:
        return SiteDatabase(POSTGRESQL, server_url, SCHEMA_PREFIX + secrets.token_hex(6))
    return SiteDatabase(SQLITE, sqlite_url(Path(site_dir) / "site.db"), None)


def write_pointer(site_dir: Path, db: SiteDatabase) -> None:
    doc = {"backend": db.backend} if not db.external else {"backend": POSTGRESQL, "schema": db.schema}
    write_atomic(Path(site_dir) / POINTER, json.dumps(doc).encode() + b"\n", 0o600)


# --- schemas on the PostgreSQL server -------------------------------------------------------------
@contextlib.contextmanager
def _connected(server_url: str, begin: bool = True) -> Iterator[sa.Connection]:
    """A connection to the server (in a transaction committed at the end when ``begin``), then disposed of."""
    eng = make_engine(server_url)
    try:
        with (eng.begin() if begin else eng.connect()) as c:
            yield c
    finally:
        eng.dispose()


def create_schema(db: SiteDatabase) -> None:
    with _connected(db.url) as c:
        c.execute(sa.text(f'CREATE SCHEMA "{db.schema}"'))


def our_schemas(server_url: str) -> list[str]:
    with _connected(server_url, begin=False) as c:
        rows = c.execute(sa.text("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :p) "
                                 "ORDER BY nspname"), {"p": SCHEMA_PREFIX}).all()
    return [r[0] for r in rows]


def drop(db: SiteDatabase) -> list[str]:
    """Drop this copy of the site from the server: its schema, or (a site on the default search path)
    the site's own tables there. Returns what was dropped."""
    if not db.external:
        return []
    if db.schema:
        with _connected(db.url) as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))
        return [f"schema {db.schema}"]
    from .tables import metadata

    eng = db.engine()
    try:
        with eng.begin() as c:
            names = set(sa.inspect(c).get_table_names())
            gone = [t.name for t in reversed(metadata.sorted_tables) if t.name in names]
            for t in gone:
                c.execute(sa.text(f'DROP TABLE IF EXISTS "{t}" CASCADE'))
            if "alembic_version" in names:
                c.execute(sa.text('DROP TABLE IF EXISTS "alembic_version"'))
                gone.append("alembic_version")
    finally:
        eng.dispose()
    return [f"table {t}" for t in gone]


def drop_orphans(server_url: str, keep: str | None) -> list[str]:
    """Drop every schema of ours but ``keep`` (what an interrupted restore or move left)."""
    dropped = []
    for name in our_schemas(server_url):
        if name != keep:
            dropped += drop(SiteDatabase(POSTGRESQL, server_url, name))
    return dropped
