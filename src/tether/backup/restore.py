"""Restoring a site backup: stage aside, then swap atomically (BK-06..09,
ROB-01, ROB-04).

Layout: ``<data>/site`` is a symlink to ``<data>/site-<id>/``. A restore
streams and verifies the backup into ``<data>/site.restore/``, applies the
version rules and migrations there, carries over what a backup never holds
(recordings, file-store blobs left out), fsyncs, renames the staging
directory to ``site-<new id>`` and points a new symlink at it, which is then
renamed over ``<data>/site`` — one atomic rename. A crash before that rename
leaves the old site; after it, the new one. ``recover()`` (run at every
start) removes what a crash left behind. Any error before the swap removes
the staging directory and leaves the site exactly as it was.

A site hosted on PostgreSQL (site/location.py) is staged the same way, then
loaded into a new schema on the server (backup/pgcopy.py) that the staged
directory names in its ``database.json``: the same rename switches the
database, the file store and the recordings at once. The old schema is
dropped after the swap; ``recover()`` drops every schema of ours that the
current site does not name (docs/formats/site-database.md).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from tether.core.crashpoints import checkpoint
from tether.core.db import make_engine, sqlite_url
from tether.core.errors import Conflict, TetherError
from tether.core.paths import DataDir
from tether.site import schema
from tether.site import location
from tether.site.install import read_info

from . import pgcopy
from .reader import SinkError, read_backup
from .rules import judge
from tether.core.fsutil import fsync_dir
from tether.site.locality import KEPT_BY_RESTORE

STAGING = "site.restore"
NEW_LINK = "site.new"
LEGACY = "site-legacy"
_SAME = object()
log = logging.getLogger("tether.backup")


@dataclass
class RestoreResult:
    site_name: str
    edition: str
    version: str
    backup_version: str
    action: str
    warnings: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    def public(self) -> dict:
        return {"site_name": self.site_name, "edition": self.edition, "version": self.version,
                "backup_version": self.backup_version, "action": self.action, "warnings": self.warnings,
                "left_out": self.manifest.get("left_out", []), "tables": self.manifest.get("tables", {})}


def recover(data: DataDir, db_url: str | None = None) -> None:
    """Finish or undo whatever a crash interrupted; leaves exactly one site (or none). ``db_url``: the
    appliance's site database URL, whose schemas the current site does not name are dropped."""
    root = data.root
    shutil.rmtree(root / STAGING, ignore_errors=True)
    new_link = root / NEW_LINK
    if new_link.is_symlink() or new_link.exists():
        new_link.unlink()
    link = root / "site"
    if not link.exists() and not link.is_symlink() and (root / LEGACY).is_dir():
        os.symlink(LEGACY, link)
    target = os.readlink(link) if link.is_symlink() else None
    for d in root.glob("site-*"):
        if d.is_dir() and d.name != target:
            shutil.rmtree(d, ignore_errors=True)
    if db_url:
        _recover_database(link, db_url)


def _recover_database(link: Path, db_url: str) -> None:
    current = location.of(link, db_url) if link.exists() else None
    try:
        keep = current.schema if current is not None and current.external else None
        dropped = location.drop_orphans(db_url, keep)
        if current is not None and location.read_pointer(link) is not None:  # the site is not on the default path:
            dropped += location.drop(location.SiteDatabase(location.POSTGRESQL, db_url, None))  # an older site's
        if dropped:
            log.warning("dropped what an interrupted restore left on the site database server: %s",
                        ", ".join(dropped))
    except sa.exc.OperationalError as exc:  # the server is down: its leftovers go at the next start
        log.warning("could not clean the site database server up after a restore: %s", exc.orig)


class _StagingSink:
    """Writes verified members into the staging directory, fsyncing each."""

    def __init__(self, staging: Path):
        self.staging = staging
        (staging / "files").mkdir(parents=True, exist_ok=True)
        (staging / "recordings").mkdir(exist_ok=True)

    def __call__(self, name: str, size: int):
        if name.startswith("files/"):  # the file store's own (sharded) layout
            from tether.site.blobs import BlobStore

            path = BlobStore(self.staging / "files").path(name[len("files/"):])
            path.parent.mkdir(parents=True, exist_ok=True)
            return _StagedFile(path)
        return _StagedFile(self.staging / name)


class _StagedFile:
    def __init__(self, path: Path):
        self.path = path
        self.f = open(path, "wb")

    def write(self, chunk: bytes) -> None:
        self.f.write(chunk)

    def close(self, ok: bool) -> None:
        try:
            if ok:
                self.f.flush()
                os.fsync(self.f.fileno())
        finally:
            self.f.close()
        if not ok:
            self.path.unlink(missing_ok=True)


def _publish(files: Path, store) -> None:
    """Put the staged file-store blobs into ``store`` (a bucket) and drop the staged copies."""
    for p in sorted(files.rglob("*")):
        if p.is_file() and len(p.name) == 64:
            with open(p, "rb") as f:
                sha, _ = store.put_stream(iter(lambda: f.read(1 << 20), b""), None, "file")
            if sha != p.name:
                raise TetherError(f"the restored file {p.name} read back with SHA-256 {sha}; the site was left as it was")
            p.unlink()
            checkpoint("published")


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link blobs a backup never holds (recordings, oversize files) into the new site."""
    for sub in ("recordings", "files"):
        src = old / sub
        if not src.is_dir():
            continue
        for p in src.rglob("*"):
            if p.is_file():
                dest = new / sub / p.relative_to(src)
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(p, dest)
                    except OSError:
                        shutil.copy2(p, dest)
                checkpoint("carry over")


# site_settings keys a restore never replaces (site/locality.py): the cluster (Atlas) configuration
# belongs to the appliance's place in its cluster, not to the backup (BK-08, AT-04)
KEPT_SETTINGS = KEPT_BY_RESTORE
FAILOVER_WARNING = ("this appliance is in a failover relationship: the restore replaced the failover settings "
                    "and the pre-shared key with the backup's. The supported path is: break failover, restore, "
                    "reset the pre-shared key, re-establish failover, sync (FO-09)")


def _in_failover(engine) -> bool:
    from tether.site.tables import site_settings

    with engine.connect() as c:
        row = c.execute(sa.select(site_settings.c.value).where(site_settings.c.key == "failover")).first()
    return bool(row and isinstance(row[0], dict) and row[0].get("enabled"))


def _keep_settings(old_engine, new_engine) -> None:
    """Put the current appliance's kept settings into the staged site, whatever the backup held."""
    from tether.site.tables import site_settings as t

    with old_engine.connect() as c:
        kept = [dict(r) for r in c.execute(sa.select(t).where(t.c.key.in_(KEPT_SETTINGS))).mappings()]
    with new_engine.begin() as c:
        c.execute(t.delete().where(t.c.key.in_(KEPT_SETTINGS)))
        if kept:
            c.execute(t.insert(), kept)


def restore(data: DataDir, path: Path, password: str | None, *, force: bool = False,
            running_version: str | None = None, stores=None, db_url: str | None = None,
            target_url: str | None | object = _SAME) -> RestoreResult:
    """``stores``: where the appliance keeps the site's objects (site.storage); when that is a bucket,
    the backup's files are put there (content-addressed, so harmless if the restore then fails) before
    the swap, and the new site's local file directory stays empty. ``db_url``: the appliance's site
    database URL (where the current site may live); ``target_url``: where the restored site goes (a new
    schema there; None: SQLite), by default the same server."""
    from tether import __version__

    running = running_version or __version__
    target_url = db_url if target_url is _SAME else target_url
    root = data.root
    recover(data, db_url)
    link = data.site_dir
    current = None
    old_db = location.of(link, db_url) if link.exists() else None
    old_engine = old_db.engine() if old_db is not None else None
    new_db = None
    in_failover = False
    if old_engine is not None:
        current = read_info(old_engine)
        in_failover = _in_failover(old_engine)
    staging = root / STAGING
    verdict_box: dict = {}

    def on_manifest(m: dict) -> None:
        if current is not None and (m["site_name"], m["edition"]) != (current.name, current.edition):
            raise Conflict(f"this appliance hosts site {current.name!r} ({current.edition}); the backup is of "
                           f"{m['site_name']!r} ({m['edition']})",
                           hint="restore onto an appliance with the same site package, or a fresh one")
        verdict_box["v"] = judge(m["product_version"], running, force=force)
        checkpoint("manifest checked")

    try:
        try:
            staging.mkdir(mode=0o700)
            result = read_backup(path, password, sink=_StagingSink(staging), on_manifest=on_manifest)
        except SinkError as exc:
            raise _disk_error(exc.error) from None
        verdict = verdict_box["v"]
        engine = make_engine(sqlite_url(staging / "site.db"))
        try:
            if schema.current_revision(engine) != schema.head_revision():
                schema.upgrade(engine, "head")
                checkpoint("migrated")
            from tether.site.tables import site_info

            with engine.begin() as c:  # the restored site now runs this software's version
                c.execute(site_info.update().values(version=running))
            if old_engine is not None:
                _keep_settings(old_engine, engine)
            checkpoint("kept settings")
        finally:
            engine.dispose()
        warnings = [verdict.message] if verdict.action == "forced" else []
        if in_failover:
            warnings.append(FAILOVER_WARNING)
        if current is not None and link.exists():
            _carry_over(link.resolve(), staging)
        if stores is not None and stores.backend != "local":
            _publish(staging / "files", stores.files)
        new_db = location.target(target_url, staging)
        _stage_database(staging, new_db)
    except OSError as exc:
        _abandon(staging, new_db)
        raise _disk_error(exc) from None
    except sa.exc.OperationalError as exc:  # SQLite: "database or disk is full", "readonly database"
        _abandon(staging, new_db)
        text = str(exc.orig)
        code = (errno.ENOSPC if "full" in text or "No space left" in text else
                errno.EROFS if "readonly" in text else errno.EIO)
        if new_db is not None and new_db.external and code == errno.EIO:
            raise TetherError(f"the site database server failed during the restore: {text.strip()}; the site was "
                              "left as it was", hint="check the PostgreSQL server, then restore again") from None
        raise _disk_error(OSError(code, text)) from None
    except BaseException:
        _abandon(staging, new_db)
        raise
    finally:
        if old_engine is not None:
            old_engine.dispose()
    _swap(root, staging)
    if old_db is not None and old_db.external and old_db.schema != new_db.schema:
        location.drop(old_db)
        checkpoint("old database dropped")
    m = result.manifest
    return RestoreResult(m["site_name"], m["edition"], running, m["product_version"], verdict.action, warnings, m)


def _stage_database(staging: Path, new_db) -> dict:
    """The last step of staging a site: on an external database, the staged copy loaded into the new schema
    (last, so that the schema exists only while everything else is staged; -> rows per table); the pointer
    to it; everything synced."""
    counts = {}
    if new_db.external:
        counts = pgcopy.load(staging / "site.db", new_db)
        (staging / "site.db").unlink()
    location.write_pointer(staging, new_db)
    fsync_dir(staging / "files")
    fsync_dir(staging)
    checkpoint("staged")
    return counts


def move(data: DataDir, db_url: str | None, target_url: str | None) -> dict:
    """Move the site, whole (sessions, audit, logs and every blob included), from its database to
    ``target_url`` (a new schema there; None: SQLite in the site directory), staged and swapped as a
    restore is: the old or the moved site after a crash at any moment."""
    root = data.root
    recover(data, db_url)
    link = data.site_dir
    if not link.exists():
        raise Conflict("no site is installed on this appliance", hint="install a site package first")
    old_db = location.of(link, db_url)
    staging = root / STAGING
    new_db = None
    try:
        staging.mkdir(mode=0o700)
        (staging / "files").mkdir()
        (staging / "recordings").mkdir()
        old_engine = old_db.engine()
        try:
            if old_db.external:
                pgcopy.dump(old_engine, staging / "site.db")
            else:
                s_, d_ = sqlite3.connect(old_engine.url.database), sqlite3.connect(staging / "site.db")
                try:
                    s_.backup(d_)
                    d_.execute("PRAGMA journal_mode=DELETE")
                finally:
                    s_.close()
                    d_.close()
            checkpoint("move: copied")
            if schema.current_revision(old_engine) != schema.head_revision():
                raise Conflict("the site's database is not at this software's schema revision",
                               hint="update the site package first, then move it")
        finally:
            old_engine.dispose()
        _carry_over(link.resolve(), staging)
        new_db = location.target(target_url, staging)
        counts = _stage_database(staging, new_db)
    except OSError as exc:
        _abandon(staging, new_db)
        raise _disk_error(exc) from None
    except BaseException:
        _abandon(staging, new_db)
        raise
    _swap(root, staging)
    if old_db.external:
        location.drop(old_db)
        checkpoint("old database dropped")
    return {"from": old_db.describe(), "to": new_db.describe(), "rows": counts}


def _abandon(staging: Path, new_db: location.SiteDatabase | None) -> None:
    """A restore that failed before the swap: remove what it staged (the site is as it was)."""
    shutil.rmtree(staging, ignore_errors=True)
    if new_db is not None and new_db.external:
        try:
            location.drop(new_db)
        except sa.exc.SQLAlchemyError:  # the server is gone: recover() drops it at the next start
            pass


def _swap(root: Path, staging: Path) -> None:
    link = root / "site"
    if link.exists() and not link.is_symlink():  # a site installed before the symlink layout
        os.rename(link, root / LEGACY)
        checkpoint("legacy moved")
        os.symlink(LEGACY, link)
        checkpoint("legacy linked")
    old_target = os.readlink(link) if link.is_symlink() else None
    new_dir = root / f"site-{secrets.token_hex(6)}"
    os.rename(staging, new_dir)
    checkpoint("staging renamed")
    tmp = root / NEW_LINK
    os.symlink(new_dir.name, tmp)
    checkpoint("new link made")
    os.rename(tmp, link)  # the atomic switch
    fsync_dir(root)
    checkpoint("swapped")
    if old_target:
        shutil.rmtree(root / old_target, ignore_errors=True)
        checkpoint("old removed")


def _disk_error(exc: OSError) -> TetherError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TetherError("the disk is full; the restore stopped and the site was left as it was",
                           hint="free space in the data directory's file system and restore again")
    if exc.errno == errno.EROFS:
        return TetherError("the data directory is read-only; the restore stopped and the site was left as it was")
    return TetherError(f"the restore failed: {exc.strerror or exc}; the site was left as it was")
