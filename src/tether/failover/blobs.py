"""Blob sync: the file store and recordings, all of them and of any size
(FO-03), fetched by the backup from the primary by content hash.

A transfer is written to ``<store>/.tmp/sync-<sha256>.part``; a broken one
resumes from the part's length with an HTTP Range request (the part's bytes
are hashed again first, so a resumed blob is checked whole). The finished
part is fsynced, its SHA-256 compared with its name, and only then renamed
into the content-addressed store: a blob is visible only once verified.
A part that does not verify is removed and the blob fetched again.

Crash points (ROB-01, tether.core.crashpoints): ``sync: blob chunk`` after
each chunk written to the part, ``sync: blob part synced``, ``sync: blob
verified`` (before the rename), ``sync: blob stored``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tether.core.crashpoints import checkpoint
from tether.core.errors import IntegrityError, Invalid
from tether.site.blobs import BlobStore

CHUNK = 1 << 16
KINDS = ("files", "recordings")


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise Invalid(f"unknown blob kind {kind!r}; known: {', '.join(KINDS)}", field="kind")


@dataclass
class Fetched:
    sha256: str
    size: int
    resumed_from: int


def part_path(store: BlobStore, sha: str) -> Path:
    store.path(sha)  # validates the digest
    return store.root / ".tmp" / f"sync-{sha}.part"


def pending_bytes(store: BlobStore, sha: str, size: int) -> int:
    part = part_path(store, sha)
    return max(0, size - (part.stat().st_size if part.exists() else 0))


def fetch(store: BlobStore, sha: str, size: int, open_range: Callable[[int], object],
          throttle: Callable[[int], None] = lambda n: None) -> Fetched:
    """Fetch blob ``sha`` into ``store``. ``open_range(offset)`` returns a context manager yielding
    an object with ``status_code`` and ``iter_bytes()`` (the peer's answer from ``offset``)."""
    if store.exists(sha):
        return Fetched(sha, store.path(sha).stat().st_size, 0)
    part = part_path(store, sha)
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
        offset, h = _receive(part, h, offset, open_range, throttle)
    if h.hexdigest() != sha:
        part.unlink(missing_ok=True)
        raise IntegrityError(f"blob {sha} arrived with another SHA-256 ({h.hexdigest()}); it will be fetched again")
    checkpoint("sync: blob verified")
    dest = store.path(sha)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, dest)
    checkpoint("sync: blob stored")
    return Fetched(sha, offset, resumed_from)


def _receive(part: Path, h, offset: int, open_range, throttle):
    with open_range(offset) as answer:
        mode = "ab"
        if offset and answer.status_code == 200:  # the peer ignored the range: start over
            h, offset, mode = hashlib.sha256(), 0, "wb"
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
    return offset, h


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


def read_range(path: Path, start: int, end: int):
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
