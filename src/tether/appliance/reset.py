"""Wiping a data directory for a factory reset (APPL-06, SEC-03).

Every file is overwritten with zeros and synced before it is unlinked (so no
password hash, key or pre-shared key stays readable in the data directory),
the per-appliance key first, which makes every sealed value unrecoverable even
where the storage keeps old blocks. The lock file of the running process is
kept; everything else goes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tether.core.paths import DataDir

CHUNK = 1 << 20


def _shred(path: Path) -> None:
    try:
        size = path.stat().st_size
        with open(path, "r+b", buffering=0) as f:
            left = size
            while left > 0:
                n = min(CHUNK, left)
                f.write(b"\0" * n)
                left -= n
            os.fsync(f.fileno())
    except OSError:
        pass
    path.unlink(missing_ok=True)


def wipe(data: DataDir) -> int:
    """Shred every file under the data directory (the secret key first); return how many."""
    keep = {data.runtime_dir / "lock"}
    count = 0
    if data.secret_key.exists():
        _shred(data.secret_key)
        count += 1
    for dirpath, dirnames, filenames in os.walk(data.root, topdown=True, followlinks=False):
        for name in filenames:
            p = Path(dirpath) / name
            if p in keep or p.is_symlink():
                if p.is_symlink():
                    p.unlink()
                continue
            _shred(p)
            count += 1
        for name in list(dirnames):
            p = Path(dirpath) / name
            if p.is_symlink():
                p.unlink()
                dirnames.remove(name)
    for child in data.root.iterdir():
        if child.is_dir() and child != data.runtime_dir:
            shutil.rmtree(child, ignore_errors=True)
    return count
