"""Reading a site backup (.nsb) as a stream: check the outer header, open the
identity with the password, then decrypt, decompress and walk the inner tar,
verifying every member against the manifest (size and SHA-256) and refusing
anything missing, extra, out of order or altered. What is read goes to a
sink: nowhere (``tether verify``) or a staging directory (restore).

Every failure is an IntegrityError (or Invalid for a missing password) with
a message an administrator can act on; nothing here touches the live site.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import zstandard

from tether.core import jsonread
from tether.core.crashpoints import checkpoint
from tether.core.errors import IntegrityError, Invalid, TetherError

from . import container, crypto
from .kinds import NSB, ArchiveKind

CHUNK = 1 << 20
MAX_SMALL = 1 << 20
MANIFEST_DEPTH = 4  # {"members": [{...}]}, {"left_out": [{...}]}: 3 levels are used


class SinkError(Exception):
    """Writing a verified member to its destination failed (disk full, read-only ...)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


@dataclass
class ReadResult:
    header: dict
    manifest: dict


# A sink receives (member name, expected size) and returns a writer with
# write(bytes) and close(ok: bool); None means "discard".
Sink = Callable[[str, int], object]


def _damaged(detail: str) -> IntegrityError:
    return IntegrityError(f"this backup is damaged or was altered: {detail}",
                          hint="use another copy of the backup")


def read_backup(path: Path, password: str | None, *, sink: Sink | None = None,
                on_manifest: Callable[[dict], None] | None = None) -> ReadResult:
    return read_archive(NSB, path, password, sink=sink, on_manifest=on_manifest)


def read_archive(kind: ArchiveKind, path: Path, password: str | None, *, sink: Sink | None = None,
                 on_manifest: Callable[[dict], None] | None = None) -> ReadResult:
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise Invalid(f"cannot open {path}: {exc.strerror}", field="file") from None
    with f:
        try:
            members = container.read_layout(f, kind.header_name)
        except container.NotTar:
            if f.seek(0, 2) == 0:
                raise IntegrityError(f"this file is empty, not a {kind.label}") from None
            raise IntegrityError(f"this file is not a {kind.label}: not a tar archive") from None
        except container.Truncated:
            raise _damaged("the file is truncated") from None
        except container.Altered as exc:
            raise _damaged(str(exc)) from None
        except OSError as exc:
            raise IntegrityError(f"cannot read {path}: {exc.strerror or exc}") from None
        names = [m.name for m in members]
        if not names or names[0] != kind.header_name:
            raise IntegrityError(f"this file is not a {kind.label}: no {kind.header_name} header")
        header = _read_header(kind, f, members[0])
        protected = header["protected"]
        expected = [kind.header_name, "identity.age", "payload.tar.zst.age"] if protected else \
            [kind.header_name, "payload.tar.zst"]
        if names != expected:
            raise _damaged(f"unexpected members {names}")
        if header["payload"] != expected[-1]:
            raise _damaged(f"the {kind.header_name} header names the payload {header['payload']!r}, "
                           f"not {expected[-1]!r}")
        if protected:
            if not password:
                raise Invalid(f"this {kind.noun} is password-protected; give its password", field="password")
            if members[1].size > MAX_SMALL:
                raise _damaged(f"identity.age is {members[1].size} bytes; an identity takes a few hundred")
            identity = crypto.open_identity(container.read_bytes(f, members[1]), password)
            raw = container.member_stream(f, members[2])
            dec = crypto.Decrypting(raw, identity)
            source = dec.r
        else:
            dec = None
            source = container.member_stream(f, members[1])
        try:
            manifest = _walk(kind, source, header, sink, on_manifest)
        except (TetherError, SinkError):
            if dec:
                dec.finish(early=True)
            raise
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError, ValueError) as exc:
            if dec:
                dec.finish(early=True)
            raise _damaged(f"the payload is unreadable ({exc.__class__.__name__})") from None
        if dec:
            dec.finish()
        return ReadResult(header, manifest)


def _read_header(kind: ArchiveKind, f, member: container.Member) -> dict:
    """The outer header: a known format, exactly the documented fields, in the writer's own
    serialisation (so that no byte of it can change unnoticed: every field is then bound to the
    manifest or to the layout)."""
    if member.size > MAX_SMALL:
        raise _damaged(f"the {kind.header_name} header is {member.size} bytes")
    raw = container.read_bytes(f, member)
    try:
        header = jsonread.loads(raw, 1)  # one flat object
        assert isinstance(header, dict)
    except (ValueError, AssertionError):
        raise _damaged(f"the {kind.header_name} header is unreadable") from None
    if header.get("format") != kind.format:
        raise IntegrityError(f"unknown format {header.get('format')!r} (this software reads {kind.format})",
                             hint="open it with the Tether version that made it, or newer")
    if set(header) != set(kind.header_fields):
        extra, missing = sorted(set(header) - set(kind.header_fields)), sorted(set(kind.header_fields) - set(header))
        raise _damaged(f"the {kind.header_name} header has unknown fields {extra} or lacks {missing}")
    if not isinstance(header["protected"], bool):
        raise _damaged(f"'protected' in the {kind.header_name} header is not true or false")
    if kind.password_required and not header["protected"]:
        raise _damaged(f"a {kind.label} is always password-protected")
    if json.dumps(header, indent=2).encode() != raw:
        raise _damaged(f"the {kind.header_name} header is not as written (its bytes were changed)")
    return header


def _walk(kind: ArchiveKind, source, header: dict, sink: Sink | None, on_manifest) -> dict:
    dctx = zstandard.ZstdDecompressor()
    with dctx.stream_reader(source, read_across_frames=True) as zr:
        tar = tarfile.open(fileobj=zr, mode="r|", bufsize=CHUNK)
        manifest = None
        expected: list[dict] = []
        for i, member in enumerate(tar):
            if not member.isreg():
                raise _damaged(f"member {member.name!r} is not a regular file")
            if i == 0:
                if member.name != "manifest.json" or member.size > 64 * MAX_SMALL:
                    raise _damaged("manifest.json is not the first member")
                manifest = _read_manifest(kind, tar.extractfile(member).read(), header)
                expected = list(manifest["members"])
                if on_manifest:
                    on_manifest(manifest)
                continue
            if not expected:
                raise _damaged(f"unexpected member {member.name!r}")
            want = expected.pop(0)
            if member.name != want["name"] or member.size != want["size"]:
                raise _damaged(f"member {member.name!r} is not the {want['name']!r} the manifest lists")
            _copy_member(tar.extractfile(member), want, sink)
        if manifest is None:
            raise _damaged("the payload is empty")
        if expected:
            raise _damaged(f"member {expected[0]['name']!r} is missing (the backup is truncated)")
        # the rest of the stream must be tar padding only
        while chunk := zr.read(CHUNK):
            if chunk.strip(b"\0"):
                raise _damaged("the payload goes on after its last member")
        return manifest


def _read_manifest(kind: ArchiveKind, data: bytes, header: dict) -> dict:
    try:
        m = jsonread.loads(data, MANIFEST_DEPTH)
        assert isinstance(m, dict) and isinstance(m.get("members"), list)
    except (ValueError, AssertionError):
        raise _damaged("manifest.json is unreadable") from None
    if m.get("format") != kind.manifest_format:
        raise IntegrityError(f"unknown manifest format {m.get('format')!r}")
    for k in kind.header_keys:
        if k not in m or m[k] != header.get(k):
            raise _damaged(f"the header and the manifest disagree on {k}")
    names = [x.get("name") if isinstance(x, dict) else None for x in m["members"]]
    if not kind.names_ok(names) or len(set(names)) != len(names):
        raise _damaged("the manifest's member list is malformed")
    for x in m["members"]:
        if not isinstance(x.get("size"), int) or x["size"] < 0 or not re.match(r"^[0-9a-f]{64}$", str(x.get("sha256"))):
            raise _damaged("the manifest's member list is malformed")
    return m


def _copy_member(fo, want: dict, sink: Sink | None) -> None:
    h = hashlib.sha256()
    try:
        out = sink(want["name"], want["size"]) if sink else None
    except OSError as exc:
        raise SinkError(exc) from None
    ok = False
    try:
        n = 0
        while chunk := fo.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
            if out is not None:
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise SinkError(exc) from None
                checkpoint(f"write {want['name']}")
        if n != want["size"] or h.hexdigest() != want["sha256"]:
            raise _damaged(f"{want['name']} does not match its checksum")
        ok = True
    finally:
        if out is not None:
            try:
                out.close(ok)
            except OSError as exc:
                raise SinkError(exc) from None
