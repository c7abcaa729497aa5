"""Helpers for the backup tests: a logical dump of a site (database content
and file blobs) to compare sites by content hash, backups made as an
older release would have made them, and the `age` tool typing a passphrase."""

from __future__ import annotations

import hashlib
import os
import pty
import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa

from tether.core.db import make_engine, sqlite_url
from tether.core.passwords import hash_password
from tether.core.releases import CATALOG
from tether.site import schema
from tether.site.install import SiteInfo


def site_url(data: Path) -> str | None:
    """The appliance's site database URL (sealed in its appliance.db), read as the appliance reads it."""
    from tether.appliance.store import get_setting
    from tether.core.secretbox import SecretBox

    eng = make_engine(sqlite_url(Path(data) / "appliance.db"))
    try:
        sealed = get_setting(eng, "site_db_url")
    finally:
        eng.dispose()
    return SecretBox.load(Path(data) / "secret.key").unseal(sealed, "site_db_url").decode() if sealed else None


def site_database(data: Path, url: str | None = None):
    """Where the appliance at ``data`` keeps its site's database (site/location.py)."""
    from tether.site import location

    return location.of(Path(data) / "site", url or site_url(data))


def site_engine(data: Path, url: str | None = None) -> sa.Engine:
    """An engine on the site database of the appliance at ``data``, SQLite or PostgreSQL."""
    return site_database(data, url).engine()


def logical_dump(site_dir: Path, exclude: frozenset[str] = frozenset(), url: str | None = None) -> str:
    """SHA-256 over every table's rows (sorted) and every blob under files/ and recordings/; the
    database is the site's, SQLite or PostgreSQL (``url``: the server, if not the appliance's own)."""
    h = hashlib.sha256()
    db = site_database(Path(site_dir).parent, url) if (Path(site_dir) / "database.json").exists() else None
    if db is not None and db.external:
        eng = db.engine()
        try:
            with eng.connect() as c:
                for t in sorted(set(sa.inspect(c).get_table_names()) - exclude):
                    h.update(f"\x00table {t}\x00".encode())
                    for row in sorted((tuple(r) for r in c.execute(sa.text(f'SELECT * FROM "{t}"'))), key=repr):
                        h.update(repr(row).encode())
        finally:
            eng.dispose()
    else:
        con = sqlite3.connect(f"file:{site_dir / 'site.db'}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                                "AND name NOT IN ('sqlite_sequence') ORDER BY name")]
            for t in (t for t in tables if t not in exclude):
                h.update(f"\x00table {t}\x00".encode())
                for row in sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr):
                    h.update(repr(row).encode())
        finally:
            con.close()
    for sub in ("files", "recordings"):
        for p in sorted((site_dir / sub).rglob("*")):
            if p.is_file():
                h.update(f"\x00{sub}/{p.relative_to(site_dir / sub)}\x00".encode())
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


class FakeSite:
    """Enough of tether.site.site.Site for write_backup: an engine and info()."""

    def __init__(self, engine, info: SiteInfo):
        self.engine = engine
        self._info = info

    def info(self) -> SiteInfo:
        return self._info


def backup_as_release(tmp: Path, version: str, *, site_name="demo", edition="remote-support",
                      users=("alice",), password: str | None = None, files=None) -> Path:
    """A backup made by software at ``version`` (its schema revision, its version in the manifest)."""
    from tether.backup.writer import write_backup

    rel = CATALOG.get(version)
    work = tmp / f"old-{version}-{time.monotonic_ns()}"
    work.mkdir(parents=True)
    engine = make_engine(sqlite_url(work / "site.db"))
    schema.upgrade(engine, rel.schema_revision)
    md = sa.MetaData()
    md.reflect(engine)
    with engine.begin() as c:
        c.execute(md.tables["site_info"].insert().values(id=1, name=site_name, edition=edition, version=version,
                                                        installed_at=0, updated_at=0))
        for u in ("admin", *users):
            c.execute(md.tables["users"].insert().values(
                username=u, display_name=u.title(), password_hash=hash_password(f"{u}-Password-1"),
                must_change_password=False, is_admin=u == "admin", permissions=[], enabled=True, created_at=0))
    info = SiteInfo(site_name, edition, version, 0, 0)
    result = write_backup(FakeSite(engine, info), work / "out", password=password, include_history=True,
                          work_dir=work / "tmp", files=files)
    engine.dispose()
    return result.path


def age_decrypt_with_passphrase(src, dest, password):
    """Run the `age` tool on a pseudo-terminal and type the passphrase, as a person would."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("age", ["age", "-d", "-o", str(dest), str(src)])
    out = b""
    typed = False
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not typed and b"passphrase" in out.lower():
            os.write(fd, password.encode() + b"\n")
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out
