"""Choosing and changing where the site's objects live (OPS-06), as every face
calls it: the /appliance/storage page, ``PUT /appliance/api/storage`` and
``tether settings set-storage`` save through ``check_change`` (run by the
runtime's ``update_settings`` before anything is saved); ``tether storage
migrate`` moves the objects with ``migrate``.

A save that names a bucket first proves it reachable and writable (a probe
object written, read back and deleted); a failure is ``Unavailable`` and
nothing is saved. Switching the backend of a site that already has objects
is refused (409): its objects would vanish from view; ``migrate`` copies
them (resumable, each object's SHA-256 verified in the target) and switches
over only when every one is there. The source's objects are left in place."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterable

from tether.core.errors import Conflict, IntegrityError
from tether.core.paths import DataDir

from . import KINDS, Stores


def _ca_file(data: DataDir, pem: str | None):
    """A temporary file with ``pem`` for a check (the saved copy is written only once the settings are)."""
    if not pem:
        return None
    fd, name = tempfile.mkstemp(dir=data.runtime_dir, prefix="storage-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    return name


def connect_checked(data: DataDir, storage, secret_key: str | None) -> Stores:
    """The bucket's stores for ``storage``, after the bucket proved reachable and writable."""
    from .s3 import S3Store, check_bucket, connect

    ca = _ca_file(data, storage.s3.ca_pem)
    try:
        client = connect(storage.s3, secret_key, ca)
        check_bucket(client, storage.s3)
    finally:
        if ca:
            os.unlink(ca)
    client = connect(storage.s3, secret_key, data.storage_ca if storage.s3.ca_pem else None)
    return Stores(S3Store(client, storage.s3, "files", data.storage_spool / "files"),
                  S3Store(client, storage.s3, "recordings", data.storage_spool / "recordings"), "s3")


def has_objects(stores: Stores) -> int:
    """How many objects ``stores`` hold (stops counting at the first few: enough to refuse a switch)."""
    n = 0
    for kind in KINDS:
        for _ in stores.of(kind).shas():
            n += 1
            if n >= 10:
                return n
    return n


def check_change(data: DataDir, current, new, secret_key: str | None, current_stores: Stores | None) -> None:
    """Before ``new`` (a ``Storage``) replaces ``current``: a named bucket must pass the check, and a
    backend switch is refused while the current stores hold objects."""
    if new.backend == "s3" or new.s3.endpoint_url:
        connect_checked(data, new, secret_key)
    if current_stores is not None and new.backend != current.backend and has_objects(current_stores):
        raise Conflict(f"the site's objects are on {current_stores.files.describe()}; switching the backend "
                       f"to {new.backend} would leave them behind",
                       hint=f"stop the appliance and run `tether storage migrate --to {new.backend} --data DIR`")


def write_ca(data: DataDir, storage) -> None:
    """The saved endpoint CA (or none) where ``open_stores`` reads it."""
    from tether.core.fsutil import write_atomic

    if storage.s3.ca_pem:
        write_atomic(data.storage_ca, storage.s3.ca_pem.encode())
    else:
        data.storage_ca.unlink(missing_ok=True)


# --- migrate ----------------------------------------------------------------------------------------
@dataclass
class MigrateReport:
    source: str
    target: str
    dry_run: bool
    copied: int = 0
    copied_bytes: int = 0
    present: int = 0  # already in the target with the right hash (a resumed migration)
    to_copy: int = 0
    to_copy_bytes: int = 0
    missing: list[dict] = field(default_factory=list)  # indexed, but in neither store
    switched: bool = False

    def public(self) -> dict:
        return dict(self.__dict__)


def _hash(chunks: Iterable[bytes]) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    for c in chunks:
        h.update(c)
        n += len(c)
    return h.hexdigest(), n


def migrate(source: Stores, target: Stores, wanted: dict[str, dict[str, int]], *, dry_run: bool,
            progress: Callable[[str, str, int], None] = lambda kind, sha, size: None) -> MigrateReport:
    """Copy every object of ``source`` and every indexed one (``wanted``: kind -> sha -> size) to
    ``target``; an object already in the target is kept when its SHA-256 checks, copied again if not.
    Each copied object is read back from the target and its SHA-256 checked. Raises before the
    caller switches when anything is not there."""
    rep = MigrateReport(source.files.describe(), target.files.describe(), dry_run)
    for kind in KINDS:
        src, dst = source.of(kind), target.of(kind)
        shas = dict(wanted.get(kind, {}))
        for sha in src.shas():
            shas.setdefault(sha, -1)
        for sha, size in sorted(shas.items()):
            have = dst.size(sha) is not None
            if have and _hash(dst.read(sha))[0] == sha:
                rep.present += 1
                continue
            size = src.size(sha)
            if size is None:
                rep.missing.append({"kind": kind, "sha256": sha})
                continue
            if dry_run:
                rep.to_copy += 1
                rep.to_copy_bytes += size
                continue
            if have:  # there, but not these bytes (a damaged copy): replaced
                dst.remove(sha)
            got, n = dst.put_stream(src.read(sha), None, kind)
            back, _ = _hash(dst.read(sha))
            if got != sha or back != sha:
                raise IntegrityError(f"{kind} object {sha} read back from {dst.describe()} with SHA-256 {back}; "
                                     "nothing was switched", hint="run the migration again")
            rep.copied += 1
            rep.copied_bytes += n
            progress(kind, sha, n)
    return rep


def site_objects(engine) -> dict[str, dict[str, int]]:
    """The objects the site's index names: kind -> sha256 -> size."""
    import sqlalchemy as sa

    from tether.site.config_tables import store_files
    from tether.site.history_tables import recordings

    out: dict[str, dict[str, int]] = {"files": {}, "recordings": {}}
    with engine.connect() as c:
        insp = sa.inspect(c)
        if insp.has_table(store_files.name):
            out["files"] = {r.sha256: r.size for r in c.execute(sa.select(store_files.c.sha256, store_files.c.size))}
        if insp.has_table(recordings.name):
            out["recordings"] = {r.sha256: r.size for r in c.execute(sa.select(recordings.c.sha256, recordings.c.size))}
    return out

