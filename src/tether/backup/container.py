"""The outer tar of an .nsb file, written and read by hand so the payload can
be streamed in without knowing its size first (the header is written after
the payload, into the 512 bytes reserved for it). Only regular-file ustar
members with short names are written; the reader accepts exactly the member
names and order of docs/formats/nsb.md."""

from __future__ import annotations

import io
import os
import tarfile
import time
from typing import BinaryIO

BLOCK = 512


def _header(name: str, size: int, mtime: float) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = int(mtime)
    ti.mode = 0o600
    return ti.tobuf(format=tarfile.USTAR_FORMAT)


class CountingWriter:
    """A file-like sink that counts bytes (pyrage and zstandard write into it)."""

    def __init__(self, f: BinaryIO):
        self.f = f
        self.n = 0

    def write(self, b) -> int:
        self.f.write(b)
        self.n += len(b)
        return len(b)

    def flush(self) -> None:
        self.f.flush()


class OuterWriter:
    def __init__(self, f: BinaryIO):
        self.f = f
        self.mtime = time.time()

    def add_bytes(self, name: str, data: bytes) -> None:
        self.f.write(_header(name, len(data), self.mtime))
        self.f.write(data)
        self._pad(len(data))

    def begin_stream(self, name: str) -> CountingWriter:
        self._stream_name = name
        self._stream_at = self.f.tell()
        self.f.write(b"\0" * BLOCK)
        self._stream = CountingWriter(self.f)
        return self._stream

    def end_stream(self) -> None:
        end = self.f.tell()
        self.f.seek(self._stream_at)
        self.f.write(_header(self._stream_name, self._stream.n, self.mtime))
        self.f.seek(end)
        self._pad(self._stream.n)

    def close(self) -> None:
        self.f.write(b"\0" * (2 * BLOCK))
        self.f.flush()
        os.fsync(self.f.fileno())

    def _pad(self, n: int) -> None:
        if n % BLOCK:
            self.f.write(b"\0" * (BLOCK - n % BLOCK))


def open_outer(f: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(fileobj=f, mode="r:")


def read_member(tf: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if not member.isreg() or member.size > limit:
        raise ValueError(f"member {member.name} is not a small regular file")
    fo = tf.extractfile(member)
    assert fo is not None
    return fo.read()


def member_stream(tf: tarfile.TarFile, member: tarfile.TarInfo) -> io.BufferedReader:
    fo = tf.extractfile(member)
    if fo is None:
        raise ValueError(f"member {member.name} is not a regular file")
    return fo
