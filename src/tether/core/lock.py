"""The data-directory lock: a running appliance holds an exclusive flock on
``<data>/run/lock`` so that offline commands (``--data``) never change a data
directory under a live process."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import Conflict


class DataLock:
    def __init__(self, run_dir: Path):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "lock"
        self.fd: int | None = None

    def acquire(self) -> "DataLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Conflict(f"an appliance is running on {self.path.parent.parent}",
                           hint="stop it first, or act on it through --url") from None
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
