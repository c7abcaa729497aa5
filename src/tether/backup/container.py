"""The outer tar of an .nsb file, written and read by hand so the payload can
be streamed in without knowing its size first (the header is written after
the payload, into the 512 bytes reserved for it). Only regular-file ustar
members with short names are written, and the reader (``read_layout``)
accepts exactly that layout: a header block, padding or end block that differs
from what the writer makes is an altered file, a file that ends early a
truncated one. Member names and order are the reader's (docs/formats/nsb.md)."""

from __future__ import annotations

import io
import os
import tarfile
import time
from dataclasses import dataclass
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


class Truncated(Exception):
    """The file ends before its archive does."""


class NotTar(Exception):
    """The file does not begin with the archive's header member."""


class Altered(Exception):
    """The outer tar is not laid out exactly as the writer lays it out."""


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # of its data
    size: int


ZERO = b"\0" * BLOCK


def read_layout(f: BinaryIO, first_name: str, max_members: int = 3) -> list[Member]:
    """The members of the outer tar, checked strictly against what ``OuterWriter`` writes
    (docs/formats/nsb.md): each header block exactly the ustar header of a regular file
    (mode 0600, the archive's one mtime), zero padding after each member's data, two zero
    blocks at the end and nothing after them. Raises Truncated, NotTar or Altered."""
    f.seek(0, 2)
    total = f.tell()
    pos, mtime, members = 0, None, []
    while True:
        f.seek(pos)
        block = f.read(BLOCK)
        if len(block) < BLOCK:
            if pos == 0 and not _starts_as(block, first_name):
                raise NotTar()
            raise Truncated()
        if block == ZERO:
            end = f.read(BLOCK)
            if len(end) < BLOCK:
                raise Truncated()
            if end != ZERO:
                raise Altered("the end-of-archive blocks are altered")
            if total != pos + 2 * BLOCK:
                raise Altered("the file goes on after its archive ends")
            return members
        try:
            ti = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            if pos == 0 and not _starts_as(block, first_name):
                raise NotTar() from None
            raise Altered(f"the tar header at byte {pos} is damaged") from None
        if not ti.isreg():
            raise Altered(f"member {ti.name!r} is not a regular file")
        if mtime is None:
            mtime = ti.mtime
        if block != _header(ti.name, ti.size, mtime):
            raise Altered(f"the tar header of {ti.name!r} is not as written")
        if len(members) == max_members:
            raise Altered("more members than the format has")
        data_end = pos + BLOCK + ti.size
        padded = pos + BLOCK + -(-ti.size // BLOCK) * BLOCK
        if total < padded:
            raise Truncated()
        f.seek(data_end)
        if f.read(padded - data_end).strip(b"\0"):
            raise Altered(f"the tar padding after {ti.name!r} is altered")
        members.append(Member(ti.name, pos + BLOCK, ti.size))
        pos = padded


def _starts_as(block: bytes, name: str) -> bool:
    """Whether ``block`` could be the start of a header block naming ``name``."""
    want = name.encode() + b"\0"
    n = min(len(block), len(want))
    return n > 0 and block[:n] == want[:n]


def read_bytes(f: BinaryIO, member: Member) -> bytes:
    f.seek(member.offset)
    return f.read(member.size)


class _Slice(io.RawIOBase):
    """One member's data as a readable stream (the file is positioned before each read)."""

    def __init__(self, f: BinaryIO, member: Member):
        self.f, self.pos, self.end = f, member.offset, member.offset + member.size

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.end - self.pos)
        if n <= 0:
            return 0
        self.f.seek(self.pos)
        data = self.f.read(n)
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)


def member_stream(f: BinaryIO, member: Member) -> io.BufferedReader:
    return io.BufferedReader(_Slice(f, member), 1 << 20)
