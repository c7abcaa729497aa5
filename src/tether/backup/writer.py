"""Writing a site backup (.nsb), streamed end to end (BK-01..05, SEC-02).

Order (docs/formats/nsb.md): snapshot the site database into a private
working directory, choose the file-store members, write the manifest, then
stream the inner tar through Zstandard (and age, when protected) into the
outer tar in ``<name>.partial``, fsync, and rename to the final name. Memory
stays flat whatever the site's size; a failure leaves no partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import zstandard

from tether.core.errors import Invalid, TetherError
from tether.core.fsutil import fsync_dir, open_private
from tether.core.releases import CATALOG
from tether.site.install import SiteInfo

from . import crypto, snapshot
from .container import OuterWriter
from .filestore import FileEntry, choose_files
from .kinds import NSB, ArchiveKind
from .policy import excluded_tables

FORMAT = NSB.format
MANIFEST_FORMAT = NSB.manifest_format
CHUNK = 1 << 20
ZSTD_LEVEL = 1  # fast: within 3-4% of level 3 on site data, at half the time (bench/backup_restore.py)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def default_name(info: SiteInfo, backup_id: str, when: float) -> str:
    """BK-05: tether-<version>-<site>-<YYYYMMDD>-<id>.nsb"""
    return f"tether-{info.version}-{info.name}-{time.strftime('%Y%m%d', time.gmtime(when))}-{backup_id}.nsb"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def write_backup(site, out_dir: Path, *, password: str | None, include_history: bool,
                 work_dir: Path, files: list[FileEntry] | None = None, name: str | None = None) -> BackupResult:
    """Back up ``site`` (a tether.site.site.Site) into ``out_dir``."""
    crypto.check_password(password)
    info: SiteInfo = site.info()
    release = CATALOG.get(info.version)
    if release is None:
        raise Invalid(f"the site's version {info.version} is not in the release catalog")
    now = time.time()
    backup_id = secrets.token_hex(4)
    final = out_dir / (name or default_name(info, backup_id, now))
    work = work_dir / f"backup-{backup_id}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise TetherError(f"the backup could not be written: {exc.strerror or exc} ({exc.filename})",
                          hint="check the appliance's backups folder and free space") from None
    try:
        db_path = work / "site.db"
        try:
            counts = snapshot.take(site.engine, db_path, include_history)
        except (sqlite3.OperationalError, OSError) as exc:
            raise TetherError(f"the backup could not be written: {exc}",
                              hint="check free space where the appliance keeps its work files") from None
        entries, left_out = choose_files(files or [], info.edition)
        members = [{"name": "site.db", "size": db_path.stat().st_size, "sha256": sha256_file(db_path)}]
        members += [{"name": f"files/{e.sha256}", "size": e.size, "sha256": e.sha256} for e in entries]
        left_out += [{"what": "table", "name": t, "reason": why}
                     for t, why in excluded_tables(site_tables(), include_history).items()]
        left_out.append({"what": "recordings", "reason": "recordings are never backed up"})
        manifest = {
            "format": MANIFEST_FORMAT, "backup_id": backup_id, "product_version": info.version,
            "schema_revision": release.schema_revision, "site_name": info.name, "edition": info.edition,
            "created_at": _iso(now), "include_history": include_history, "members": members,
            "tables": counts, "left_out": left_out,
        }
        header = {"format": FORMAT, "protected": password is not None, "product_version": info.version,
                  "site_name": info.name, "edition": info.edition, "created_at": _iso(now),
                  "backup_id": backup_id, "payload": "payload.tar.zst" + (".age" if password else "")}
        sources = [("site.db", db_path)] + [(f"files/{e.sha256}", e.open) for e in entries]
        write_archive(NSB, final, header, manifest, sources, password)
        return BackupResult(final, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_archive(kind: ArchiveKind, final: Path, header: dict, manifest: dict,
                  sources: list[tuple[str, Path | Callable[[], BinaryIO]]], password: str | None) -> None:
    """Write header, (identity,) and the streamed payload to ``<final>.partial``, fsync, rename."""
    partial = final.with_name(final.name + ".partial")
    try:
        with open_private(partial) as f:  # 0600: an unprotected backup holds hashes and secrets in clear
            outer = OuterWriter(f)
            outer.add_bytes(kind.header_name, json.dumps(header, indent=2).encode())
            if password is not None:
                identity = crypto.new_identity()
                outer.add_bytes("identity.age", crypto.seal_identity(identity, password))
            raw = outer.begin_stream(header["payload"])
            if password is not None:
                with crypto.encrypting(raw, identity.to_public()) as sink:
                    _write_payload(sink, manifest, sources)
            else:
                _write_payload(raw, manifest, sources)
            outer.end_stream()
            outer.close()
        os.rename(partial, final)
        fsync_dir(final.parent)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise TetherError(f"the {kind.noun} could not be written: {exc.strerror or exc}",
                          hint=f"check free space and permissions where the {kind.noun} is written") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def site_tables():
    from tether.site.tables import metadata

    return metadata


def _write_payload(out, manifest: dict, sources: list[tuple[str, Path | Callable[[], BinaryIO]]]) -> None:
    sizes = {m["name"]: m["size"] for m in manifest["members"]}
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1, write_checksum=True)
    with cctx.stream_writer(out, closefd=False) as zw:
        with tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK, copybufsize=CHUNK) as tar:
            data = json.dumps(manifest, indent=1).encode()
            _add(tar, "manifest.json", len(data), _BytesReader(data))
            for name, source in sources:  # a path, or an opener (a file-store object, maybe in a bucket)
                with contextlib.closing(open(source, "rb") if isinstance(source, Path) else source()) as f:
                    _add(tar, name, sizes[name], f)


class _BytesReader:
    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        n = len(self._data) - self._pos if n < 0 else n
        chunk = self._data[self._pos:self._pos + n]
        self._pos += len(chunk)
        return chunk


def _add(tar: tarfile.TarFile, name: str, size: int, fileobj) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o600
    ti.mtime = int(time.time())
    tar.addfile(ti, fileobj)


