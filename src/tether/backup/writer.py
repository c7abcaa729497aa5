"""Writing a site backup (.nsb), streamed end to end (BK-01..05, SEC-02).

Order (docs/formats/nsb.md): snapshot the site database into a private
working directory, choose the file-store members, compress them (the inner
tar after its manifest) into a spool file in that directory while computing
the SHA-256 the manifest still lacks (site.db's: each member is read once),
then write the manifest as a Zstandard frame of its own followed by the
spooled frame, through age when protected, into the outer tar in
``<name>.partial``, fsync, and rename to the final name. Memory stays flat
whatever the site's size; a failure leaves no partial file. Kits and
appliance snapshots are written by the same ``write_archive``.
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
    sealing = crypto.Sealing(password) if password is not None else None  # scrypt beside the snapshot
    try:
        db_path = work / "site.db"
        try:
            counts = snapshot.take(site.engine, db_path, include_history)
        except (sqlite3.OperationalError, OSError) as exc:
            raise TetherError(f"the backup could not be written: {exc}",
                              hint="check free space where the appliance keeps its work files") from None
        entries, left_out = choose_files(files or [], info.edition)
        members = [{"name": "site.db", "size": db_path.stat().st_size, "sha256": None}]  # hashed as it is written
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
        write_archive(NSB, final, header, manifest, sources, password, spool_dir=work, sealing=sealing)
        return BackupResult(final, manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_archive(kind: ArchiveKind, final: Path, header: dict, manifest: dict,
                  sources: list[tuple[str, Path | Callable[[], BinaryIO]]], password: str | None,
                  spool_dir: Path | None = None, sealing: crypto.Sealing | None = None) -> None:
    """Write header, (identity,) and the streamed payload to ``<final>.partial``, fsync, rename.
    Members whose ``sha256`` is None in the manifest get it computed on the way (``_write_payload``);
    the compressed members wait in a spool file in ``spool_dir`` (default: beside ``final``).
    ``sealing``: the identity, already being sealed with ``password`` beside the caller's earlier work
    (write_backup's snapshot); default: sealed here."""
    partial = final.with_name(final.name + ".partial")
    spool = (spool_dir or final.parent) / (final.name + ".spool")
    if password is not None and sealing is None:
        sealing = crypto.Sealing(password)
    try:
        with open_private(partial) as f:  # 0600: an unprotected backup holds hashes and secrets in clear
            outer = OuterWriter(f)
            outer.add_bytes(kind.header_name, json.dumps(header, indent=2).encode())
            if sealing is not None:  # before compressing: scrypt's 128 MiB and zstd's buffers never add up
                outer.add_bytes("identity.age", sealing.sealed())
            body = _compress_members(spool, manifest, sources)
            raw = outer.begin_stream(header["payload"])
            if sealing is not None:
                with crypto.encrypting(raw, sealing.identity.to_public()) as sink:
                    _write_payload(sink, manifest, body)
            else:
                _write_payload(raw, manifest, body)
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
    finally:
        spool.unlink(missing_ok=True)


def site_tables():
    from tether.site.tables import metadata

    return metadata


def _compress_members(spool: Path, manifest: dict, sources: list[tuple[str, Path | Callable[[], BinaryIO]]]) -> Path:
    """The inner tar after its manifest (every source member, then the end of the archive), as one
    Zstandard frame in ``spool``, each member read once: the SHA-256 the manifest lacks for a member
    is computed as it is compressed, so no member is read twice."""
    listed = {m["name"]: m for m in manifest["members"]}
    # one worker more than CPUs: this thread hashes and feeds them meanwhile (1.1 GB: 2.38 s -> 2.19 s)
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=(os.cpu_count() or 1) + 1, write_checksum=True)
    with open_private(spool) as out, cctx.stream_writer(out, closefd=False) as zw:
        with tarfile.open(fileobj=zw, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK, copybufsize=CHUNK) as tar:
            for name, source in sources:  # a path, or an opener (a file-store object, maybe in a bucket)
                m = listed[name]
                with contextlib.closing(open(source, "rb") if isinstance(source, Path) else source()) as f:
                    if m["sha256"] is None:
                        h = hashlib.sha256()
                        _add(tar, name, m["size"], _Hashing(f, h))
                        m["sha256"] = h.hexdigest()
                    else:
                        _add(tar, name, m["size"], f)
    return spool


def _write_payload(out, manifest: dict, body: Path) -> None:
    """The payload: the manifest member as a Zstandard frame of its own, then the spooled frame of
    the other members (docs/formats/nsb.md: the inner tar is one stream of frames)."""
    data = json.dumps(manifest, indent=1).encode()
    out.write(zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compress(_member("manifest.json", data)))
    with open(body, "rb") as f:
        shutil.copyfileobj(f, out, CHUNK)


def _member(name: str, data: bytes) -> bytes:
    """A tar member as ``tarfile`` writes it (PAX header, content, padding to the block)."""
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o600, int(time.time())
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


class _Hashing:
    """A reader that feeds what it reads into a hash."""

    def __init__(self, f: BinaryIO, h):
        self._f, self._h = f, h

    def read(self, n: int = -1) -> bytes:
        chunk = self._f.read(n)
        self._h.update(chunk)
        return chunk


def _add(tar: tarfile.TarFile, name: str, size: int, fileobj) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o600
    ti.mtime = int(time.time())
    tar.addfile(ti, fileobj)


