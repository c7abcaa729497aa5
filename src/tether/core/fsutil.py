"""Durable file writes, in one place (STYLE 6: write aside, fsync, rename):
``write_atomic`` replaces a file so that a crash leaves the old or the new
content, never a torn one; ``fsync_dir`` makes a rename in a directory
durable. Each step of ``write_atomic`` is a crash point (core/crashpoints.py,
ROB-01) named after the file (or ``label``), so every caller's writes are
killed at each step in the crash tests. ``open_private`` creates a file only
its owner can read (0600 whatever the umask): every backup, snapshot and
download of one is written through it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from tether.core.crashpoints import checkpoint


def fsync_path(path: Path) -> None:
    """Make a file's content (or a directory's entries: a rename in it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = fsync_file = fsync_path


def open_private(path: Path) -> BinaryIO:
    """Open ``path`` for writing (created or truncated), mode 0600 whatever the umask or the
    mode an older file of that name had."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_atomic(path: Path, data: bytes, mode: int = 0o600, *, label: str | None = None) -> None:
    """Write ``data`` to ``path.tmp``, fsync it, rename it over ``path`` and fsync the directory.
    ``label`` names the crash points (default: the file's name; give one when the name varies)."""
    name = label or path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    checkpoint(f"write {name}: begin")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        checkpoint(f"write {name}: tmp written")
        os.fsync(fd)
    finally:
        os.close(fd)
    checkpoint(f"write {name}: tmp synced")
    os.replace(tmp, path)
    checkpoint(f"write {name}: renamed")
    fsync_dir(path.parent)
    checkpoint(f"write {name}: dir synced")
