"""The integration's state directory: ``state.json`` (what was pulled, when,
the cursors to resume from, failures; docs/formats/integration-state.md),
``partial/`` (downloads in progress, resumed by Range) and ``lock`` (one
pass at a time: ``run`` and a ``sync --once`` never interleave).

``state.json`` is rewritten atomically (temporary name, fsync, rename) after
every item, so a pass killed at any moment resumes from the last item it
finished."""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tether.core.errors import Conflict

from .destinations import fsync_dir

FORMAT = 1
MAX_FAILURES = 50


def empty() -> dict:
    return {"format": FORMAT, "site": {}, "kinds": {}, "failures": [], "uploads": {}}


class State:
    def __init__(self, root: Path):
        self.root = root
        self.path = root / "state.json"
        self.partial = root / "partial"
        self.doc = empty()

    def load(self) -> "State":
        try:
            self.doc = {**empty(), **json.loads(self.path.read_text())}
        except FileNotFoundError:
            self.doc = empty()
        except (ValueError, OSError) as exc:
            raise Conflict(f"{self.path}: not a state file this program wrote ({exc})",
                           hint="move it aside; the next pass starts over (existing files are not duplicated)")
        return self

    def kind(self, name: str) -> dict:
        return self.doc["kinds"].setdefault(name, {"pulled": 0, "last_attempt": None, "last_success": None,
                                                   "last_error": None, "recent": []})

    def failed(self, kind: str, at: float, message: str) -> None:
        k = self.kind(kind)
        k["last_error"] = {"at": at, "message": message}
        self.doc["failures"] = ([{"at": at, "kind": kind, "message": message}] + self.doc["failures"])[:MAX_FAILURES]

    def pulled(self, kind: str, key: str, at: float) -> None:
        k = self.kind(kind)
        k["pulled"] += 1
        k["recent"] = ([{"key": key, "at": at}] + k["recent"])[:20]

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".state.json.{secrets.token_hex(4)}"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.root)

    @contextmanager
    def locked(self) -> Iterator["State"]:
        self.root.mkdir(parents=True, exist_ok=True)
        self.partial.mkdir(exist_ok=True)
        for stale in self.root.glob(".state.json.*"):
            stale.unlink(missing_ok=True)
        f = open(self.root / "lock", "a+b")
        try:
            try:
                if os.name == "nt":
                    import msvcrt

                    msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise Conflict(f"another tether-integration pass holds {self.root / 'lock'}",
                               hint="wait for it to finish (or stop the running service)") from None
            yield self.load()
        finally:
            f.close()
