"""Whole-appliance snapshots (APPL-07): all state of a running appliance —
/appliance (settings, identity, certificates and their sealed keys, the
secret key) and /login (the site database, file store, recordings) — taken
consistently and restored as a whole, the equivalent of a VM snapshot.
Format: docs/formats/snapshot.md (the .nsb container, kind ``tether-snapshot/1``,
always password-protected because it holds the appliance's secret key).

A site hosted on PostgreSQL is in the snapshot too: a logical copy taken in
one REPEATABLE READ transaction (backup/pgcopy.py) while the appliance's lock
holds every swap off, as ``site/site.db``; the manifest's ``site_database``
says where it came from. Restoring loads it into a new schema of the server
the snapshot's configuration names (the schema the appliance used before is
dropped at its next start, as any schema its site no longer names)."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

from tether.core.errors import Conflict, Invalid, TetherError
from tether.core.paths import DataDir

from tether.site import location

from . import crypto, pgcopy
from .kinds import SNAPSHOT
from .reader import SinkError, read_archive
from .writer import write_archive

def _sqlite_copy(src: Path, dest: Path) -> None:
    s, d = sqlite3.connect(src), sqlite3.connect(dest)
    try:
        s.backup(d)
        d.execute("PRAGMA journal_mode=DELETE")
    finally:
        s.close()
        d.close()


def file_name(basics: dict, now: float) -> str:
    return f"tether-snapshot-{basics['appliance_version']}-{basics['serial_number']}-" \
           f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}.tsnap"


class SnapshotHost(Protocol):
    """What a snapshot needs of the running appliance."""

    data: DataDir

    @property
    def site(self) -> Any: ...
    @property
    def site_lock(self) -> Any: ...  # held while both databases are copied: one consistent moment
    def site_db_url(self) -> str | None: ...
    def site_database(self) -> location.SiteDatabase | None: ...
    def status_basics(self) -> dict: ...


def create(appliance: SnapshotHost, out_dir: Path, password: str) -> Path:
    if not password:
        raise Invalid("a snapshot holds the appliance's secret key: give a password", field="password")
    crypto.check_password(password)
    data: DataDir = appliance.data
    now = time.time()
    basics = appliance.status_basics()
    snap_id = secrets.token_hex(4)
    work = data.backups_dir / ".work" / f"snapshot-{snap_id}"
    work.mkdir(parents=True, mode=0o700)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        site_db = appliance.site_database() if appliance.site is not None else None
        with appliance.site_lock:  # one consistent moment for both databases
            _sqlite_copy(data.appliance_db, work / "appliance.db")
            if site_db is not None and site_db.external:
                pgcopy.dump(appliance.site.engine, work / "site.db")  # the whole site, one snapshot
            elif site_db is not None:
                _sqlite_copy(data.site_db, work / "site.db")
        sources = [("appliance.db", work / "appliance.db"), ("secret.key", data.secret_key)]
        if data.site_package.exists():  # the package a recovery kit carries (DR-05)
            sources.append(("site-package.tsp", data.site_package))
        if appliance.site is not None:
            sources.append(("site/site.db", work / "site.db"))
            for sub in ("files", "recordings"):
                base = data.site_dir / sub
                for p in sorted(base.rglob("*")) if base.is_dir() else []:
                    if p.is_file():
                        sources.append((f"site/{sub}/{p.relative_to(base)}", p))
        members = [{"name": n, "size": p.stat().st_size, "sha256": None} for n, p in sources]  # hashed as written
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        manifest = {"format": SNAPSHOT.manifest_format, "snapshot_id": snap_id,
                    "appliance_version": basics["appliance_version"], "serial_number": basics["serial_number"],
                    "model": basics["model"], "created_at": iso, "has_site": appliance.site is not None,
                    "members": members}
        if site_db is not None:
            manifest["site_database"] = site_db.describe()
        header = {"format": SNAPSHOT.format, "protected": True, "appliance_version": basics["appliance_version"],
                  "serial_number": basics["serial_number"], "snapshot_id": snap_id, "created_at": iso,
                  "payload": "payload.tar.zst.age"}
        final = out_dir / file_name(basics, now)
        write_archive(SNAPSHOT, final, header, manifest, sources, password, spool_dir=work)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def recover(root: Path) -> None:
    """Finish or undo a snapshot restore that a crash interrupted."""
    ready, old, staging = (root.with_name(root.name + s) for s in (".snapshot-ready", ".snapshot-old",
                                                                    ".snapshot-restore"))
    shutil.rmtree(staging, ignore_errors=True)
    if not root.exists() and ready.exists():
        os.rename(ready, root)  # the swap had begun: finish it
    shutil.rmtree(ready, ignore_errors=True)  # the swap had not begun: the old state stays
    shutil.rmtree(old, ignore_errors=True)


class _Sink:
    def __init__(self, staging: Path, site_dir_name: str):
        self.staging = staging
        self.site_dir_name = site_dir_name

    def __call__(self, name: str, size: int):
        from .restore import _StagedFile

        rel = name.replace("site/", f"{self.site_dir_name}/", 1) if name.startswith("site/") else name
        path = self.staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return _StagedFile(path)


def _sealed_site_url(staging: Path) -> str | None:
    """The site database URL in the staged appliance.db, unsealed with the staged secret key."""
    from tether.appliance.store import get_setting
    from tether.core.db import make_engine, sqlite_url
    from tether.core.secretbox import SecretBox

    eng = make_engine(sqlite_url(staging / "appliance.db"))
    try:
        sealed = get_setting(eng, "site_db_url")
    finally:
        eng.dispose()
    return SecretBox.load(staging / "secret.key").unseal(sealed, "site_db_url").decode() if sealed else None


def _load_site(staging: Path, site_dir: Path, m: dict) -> location.SiteDatabase | None:
    """Put the snapshot's site database where its configuration says: a new schema on PostgreSQL
    (returned, so a failure can drop it), or site.db as it is."""
    import sqlalchemy as sa

    where = m.get("site_database") or {"backend": location.SQLITE}
    url = _sealed_site_url(staging) if where["backend"] == location.POSTGRESQL else None
    if url is None:
        location.write_pointer(site_dir, location.SiteDatabase(location.SQLITE, "", None))
        return None
    db = location.target(url, site_dir)
    try:
        pgcopy.load(site_dir / "site.db", db)
    except sa.exc.OperationalError as exc:
        try:
            location.drop(db)
        except sa.exc.SQLAlchemyError:  # the server is down: a schema left there goes at the next start
            pass
        raise TetherError(f"the snapshot's site database server cannot take the site: {str(exc.orig).strip()}; "
                          "nothing was changed", hint=f"start the PostgreSQL server at {where.get('host')}:"
                          f"{where.get('port')} (database {where.get('database')}), then restore again") from None
    (site_dir / "site.db").unlink()
    location.write_pointer(site_dir, db)
    return db


def restore(data: DataDir, path: Path, password: str | None) -> dict:
    """Replace the whole (stopped) appliance's state with the snapshot's."""
    from tether import __version__

    root = data.root
    recover(root)
    staging = root.with_name(root.name + ".snapshot-restore")
    site_dir_name = f"site-{secrets.token_hex(6)}"
    loaded: location.SiteDatabase | None = None

    def check(m: dict) -> None:
        if m["appliance_version"] != __version__:
            raise Conflict(f"the snapshot is of appliance version {m['appliance_version']}; this software is "
                           f"{__version__}", hint="restore a snapshot on the software version that took it")

    try:
        staging.mkdir(mode=0o700)
        res = read_archive(SNAPSHOT, path, password, sink=_Sink(staging, site_dir_name), on_manifest=check)
        m = res.manifest
        for d in ("backups", "run"):
            (staging / d).mkdir(exist_ok=True)
        if m["has_site"]:
            for sub in ("files", "recordings"):
                (staging / site_dir_name / sub).mkdir(parents=True, exist_ok=True)
            os.symlink(site_dir_name, staging / "site")
        os.chmod(staging / "secret.key", 0o600)
        if m["has_site"]:
            loaded = _load_site(staging, staging / site_dir_name, m)
    except SinkError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise TetherError(f"the snapshot could not be staged: {exc.error.strerror or exc.error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if loaded is not None:
            location.drop(loaded)
        raise
    ready = root.with_name(root.name + ".snapshot-ready")
    old = root.with_name(root.name + ".snapshot-old")
    os.rename(staging, ready)
    os.rename(root, old)
    os.rename(ready, root)
    shutil.rmtree(old, ignore_errors=True)
    return {"serial_number": m["serial_number"], "appliance_version": m["appliance_version"],
            "created_at": m["created_at"], "has_site": m["has_site"], "members": len(m["members"]),
            "site_database": loaded.describe() if loaded else m.get("site_database")}
