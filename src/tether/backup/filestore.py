"""Which file-store files a backup carries (BK-02, BK-04): for Remote Support
sites the first 50 files (by upload order) of at most 200 KB each; every
other file is listed as left out, with the reason. A Privileged Remote Access
site has no file store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Callable

from .policy import FILE_LIMIT_BYTES, FILE_LIMIT_COUNT


@dataclass(frozen=True)
class FileEntry:
    name: str  # the name users see
    sha256: str  # content address
    size: int
    open: Callable[[], BinaryIO]  # a reader of the content, from disk or from the bucket (site.storage)


def choose_files(files: list[FileEntry], edition: str) -> tuple[list[FileEntry], list[dict]]:
    """``files`` in upload order -> (included, left_out)."""
    if edition != "remote-support":
        return [], []
    included, left_out, seen = [], [], set()
    for f in files:
        if f.size > FILE_LIMIT_BYTES:
            left_out.append({"what": "file", "name": f.name, "sha256": f.sha256, "size": f.size,
                             "reason": f"larger than {FILE_LIMIT_BYTES} bytes"})
        elif len(seen) >= FILE_LIMIT_COUNT and f.sha256 not in seen:
            left_out.append({"what": "file", "name": f.name, "sha256": f.sha256, "size": f.size,
                             "reason": f"beyond the first {FILE_LIMIT_COUNT} files"})
        elif f.sha256 not in seen:
            seen.add(f.sha256)
            included.append(f)
    return included, left_out
