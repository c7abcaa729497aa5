"""Content-addressed blob directories (``<data>/site/files`` for the file
store, ``<data>/site/recordings`` for recordings): a blob lives at
``<root>/<sha[:2]>/<sha[2:4]>/<sha256>`` and is written once.

Writes are streamed: chunks are hashed and written to ``<root>/.tmp/``,
fsynced, then renamed into place (write aside, fsync, rename), so a blob is
never held whole in memory and a reader never sees a partial one. A size
limit is enforced while streaming (``TooLarge``, HTTP 413). This is the
local backend of ``site.storage.ObjectStore`` (the S3 one: storage/s3.py).
A ``Download`` is an object as a face sends it: its store and hash (and its
path when it is on local disk), its size, the name to save it under and its
media type."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterable, Iterable, Iterator

from tether.core.errors import Invalid, NotFound, TooLarge

CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Download:
    path: Path | None  # on local disk; None when the object is in a bucket (read it through ``chunks``)
    filename: str
    media_type: str
    store: object = None  # the ObjectStore holding it
    sha256: str | None = None
    size: int | None = None

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes (``start`` to ``end`` inclusive when given), streamed from wherever they are."""
        if start == 0 and end is None:
            return self.store.read(self.sha256)
        return self.store.read_range(self.sha256, start, self.size - 1 if end is None else end)


def download_of(store, sha: str, filename: str, media_type: str, gone: str, hint: str) -> Download:
    """The ``Download`` of object ``sha``, or ``Gone`` (410) with ``gone`` when the store lacks it."""
    from tether.core.errors import Gone

    size = store.size(sha)
    if size is None:
        raise Gone(gone, hint=hint)
    return Download(store.local_path(sha), filename, media_type, store, sha, size)


class _Writer:
    def __init__(self, store: "BlobStore", max_bytes: int | None, field: str):
        self.store, self.max_bytes, self.field = store, max_bytes, field
        tmpdir = store.root / ".tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        self.tmp = tmpdir / secrets.token_hex(8)
        self.f = open(self.tmp, "wb")
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise TooLarge(f"{self.field}: larger than the limit of {self.max_bytes} bytes", field=self.field,
                           hint="raise file-store max_upload_bytes or upload a smaller file")
        self.h.update(chunk)
        self.f.write(chunk)

    def finish(self) -> tuple[str, int]:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        sha = self.h.hexdigest()
        dest = self.store.path(sha)
        if dest.exists():
            self.tmp.unlink()
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp, dest)
        return sha, self.size

    def abort(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)


def write_all(w, chunks: Iterable[bytes]) -> tuple[str, int]:
    """Every chunk through the store writer ``w``, then ``finish`` (-> sha256, size); on any failure
    ``abort``, so that nothing is left (both backends' ``put_stream``)."""
    try:
        for chunk in chunks:
            w.write(chunk)
        return w.finish()
    except BaseException:
        w.abort()
        raise


class BlobStore:
    blocking = False

    def __init__(self, root: Path, kind: str = "files"):
        self.root = root
        self.kind = kind

    def describe(self) -> str:
        return f"local disk ({self.root})"

    def local_path(self, sha: str) -> Path:
        return self.path(sha)

    def size(self, sha: str) -> int | None:
        try:
            return self.path(sha).stat().st_size
        except FileNotFoundError:
            return None

    def read_range(self, sha: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive."""
        p = self.path(sha)
        if not p.exists():
            raise NotFound(f"blob {sha} is missing from {self.root}")
        with open(p, "rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0 and (chunk := f.read(min(CHUNK, left))):
                left -= len(chunk)
                yield chunk

    def open(self, sha: str):
        return open(self.path(sha), "rb")

    def shas(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for p in self.root.glob("??/??/*"):  # lazily: a switch check stops at the first few
            if _SHA.match(p.name) and p.is_file():
                yield p.name

    def path(self, sha: str) -> Path:
        if not _SHA.match(sha):
            raise Invalid(f"{sha!r} is not a SHA-256 hex digest", field="sha256")
        return self.root / sha[:2] / sha[2:4] / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).exists()

    def writer(self, max_bytes: int | None = None, field: str = "file") -> _Writer:
        """A streaming writer: ``write`` chunks, then ``finish`` (-> sha256, size) or ``abort``."""
        return _Writer(self, max_bytes, field)

    def put_stream(self, chunks: Iterable[bytes], max_bytes: int | None = None, field: str = "file") -> tuple[str, int]:
        return write_all(self.writer(max_bytes, field), chunks)

    async def put_async(self, chunks: AsyncIterable[bytes], max_bytes: int | None = None,
                        field: str = "file") -> tuple[str, int]:
        w = _Writer(self, max_bytes, field)
        try:
            async for chunk in chunks:
                w.write(chunk)
            return w.finish()
        except BaseException:
            w.abort()
            raise

    def read(self, sha: str) -> Iterator[bytes]:
        p = self.path(sha)
        if not p.exists():
            raise NotFound(f"blob {sha} is missing from {self.root}")
        with open(p, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def remove(self, sha: str) -> None:
        self.path(sha).unlink(missing_ok=True)
