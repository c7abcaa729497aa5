"""Blob sync: the file store and recordings, all of them and of any size
(FO-03), fetched by the backup from the primary by content hash.

A transfer is written to ``<store>/.tmp/sync-<sha256>.part``; a broken one
resumes from the part's length with an HTTP Range request (the part's bytes
are hashed again first, so a resumed blob is checked whole). The finished
part is fsynced, its SHA-256 compared with its name, and only then renamed
into the content-addressed store: a blob is visible only once verified.
A part that does not verify is removed and the blob fetched again.

Disk space (ROB-04): a transfer starts only when the store's file system
has room for the rest of the blob and ``FREE_RESERVE`` more, so that a blob
too big for the disk never fills it (the database, on the same disk, keeps
syncing); a disk that fills up or turns read-only during a transfer stops
it with a ``StorageError`` that says so. Either way the blob is not
visible, the bytes received stay in the part, and the transfer resumes
from there once there is room.

Crash points (ROB-01, tether.core.crashpoints): ``sync: blob chunk`` after
each chunk written to the part, ``sync: blob part synced``, ``sync: blob
verified`` (before the rename), ``sync: blob stored``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tether.core.crashpoints import checkpoint
from tether.core.errors import IntegrityError, Invalid
from tether.site.blobs import BlobStore

from .errors import StorageError

CHUNK = 1 << 16
KINDS = ("files", "recordings")
FREE_RESERVE = 16 << 20  # bytes a transfer leaves free on the store's file system


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise Invalid(f"unknown blob kind {kind!r}; known: {', '.join(KINDS)}", field="kind")


@dataclass
class Fetched:
    sha256: str
    size: int
    resumed_from: int


def part_path(store: BlobStore, sha: str) -> Path:
    """Where a blob being received is kept: the local store's ``.tmp``, or a bucket store's spool."""
    store.key(sha) if hasattr(store, "key") else store.path(sha)  # validates the digest
    return store.root / ".tmp" / f"sync-{sha}.part"


def kind_of(store) -> str:
    return getattr(store, "kind", "file")


def pending_bytes(store: BlobStore, sha: str, size: int) -> int:
    part = part_path(store, sha)
    return max(0, size - (part.stat().st_size if part.exists() else 0))


def fetch(store: BlobStore, sha: str, size: int, open_range: Callable[[int], object],
          throttle: Callable[[int], None] = lambda n: None) -> Fetched:
    """Fetch blob ``sha`` into ``store``. ``open_range(offset)`` returns a context manager yielding
    an object with ``status_code`` and ``iter_bytes()`` (the peer's answer from ``offset``)."""
    if store.exists(sha):  # a pair sharing one bucket: already there
        return Fetched(sha, store.size(sha) or 0, 0)
    part = part_path(store, sha)
    with _storing(sha, part):
        part.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        offset = 0
        if part.exists():
            with open(part, "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    offset += len(chunk)
        resumed_from = offset
        if offset < size:
            check_space(part.parent, sha, size - offset, offset)
            offset, h, resumed_from = _receive(part, h, offset, open_range, throttle)
        if h.hexdigest() != sha:
            part.unlink(missing_ok=True)
            raise IntegrityError(f"blob {sha} arrived with another SHA-256 ({h.hexdigest()}); it will be fetched "
                                 f"again")
        checkpoint("sync: blob verified")
        dest = store.local_path(sha)
        if dest is None:  # a bucket (OPS-06): the verified part goes up, then the part goes
            with open(part, "rb") as f:
                store.put_stream(iter(lambda: f.read(CHUNK), b""), None, kind_of(store))
            part.unlink()
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, dest)
    checkpoint("sync: blob stored")
    return Fetched(sha, offset, resumed_from)


def check_space(where: Path, sha: str, need: int, have: int) -> None:
    """StorageError unless ``where``'s file system has room for ``need`` more bytes and FREE_RESERVE."""
    free = shutil.disk_usage(where).free
    if free < need + FREE_RESERVE:
        raise StorageError(f"not enough free space for blob {sha}: {need} more bytes are needed (and {FREE_RESERVE} "
                           f"kept free), {free} are free on {where.parent}; nothing more of it was written"
                           + (f" ({have} bytes received are kept)" if have else ""),
                           hint=f"free space on the file system of {where.parent}; the blob is fetched by itself "
                                f"once there is room")


@contextmanager
def _storing(sha: str, part: Path):
    """OSError while storing blob ``sha`` (disk full, read-only) as a StorageError that says so."""
    try:
        yield
    except OSError as exc:
        kept = part.stat().st_size if part.exists() else 0
        what = (f"blob {sha} could not be stored in {part.parent.parent} ({exc.strerror or exc}); it is not "
                f"visible" + (f", {kept} bytes received are kept and the transfer resumes from there" if kept else ""))
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageError(f"this appliance's disk is full: {what}",
                               hint=f"free space on the file system of {part.parent.parent}") from None
        if exc.errno == errno.EROFS:
            raise StorageError(f"this appliance's file store is read-only: {what}",
                               hint=f"make {part.parent.parent} writable again") from None
        raise StorageError(what) from None


def _receive(part: Path, h, offset: int, open_range, throttle):
    """Append the peer's answer from ``offset`` to the part: (new length, hash, the offset it resumed from)."""
    with open_range(offset) as answer:
        mode = "ab"
        if offset and answer.status_code == 200:  # the peer ignored the range: start over
            h, offset, mode = hashlib.sha256(), 0, "wb"
        start = offset
        with open(part, mode) as f:
            for chunk in answer.iter_bytes(CHUNK):
                throttle(len(chunk))
                h.update(chunk)
                f.write(chunk)
                offset += len(chunk)
                checkpoint("sync: blob chunk")
            f.flush()
            os.fsync(f.fileno())
    checkpoint("sync: blob part synced")
    return offset, h, start


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``bytes=N-`` or ``bytes=N-M`` -> (start, end inclusive); None for no range. Invalid: ValueError."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise ValueError("only one range of bytes is supported")
    first, _, last = spec.strip().partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise ValueError("write Range: bytes=START- or bytes=START-END")
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise ValueError(f"range starts at {start}, the blob has {size} bytes")
    return start, end

