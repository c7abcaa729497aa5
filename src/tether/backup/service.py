"""Backup, verify and restore as the appliance performs them: the one place
the web pages, the API and the CLI call (so all three behave the same), with
audit records. The site swap itself is the runtime's site slot's (a port)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Protocol

from pydantic import BaseModel

from tether.core.audit import AuditLog
from tether.core.errors import Conflict, Invalid, NotFound, TetherError
from tether.core.paths import DataDir

from .restore import RestoreResult
from .filestore import FileEntry
from .reader import read_backup
from .rules import judge
from .writer import BackupResult, write_backup


def site_file_entries(site) -> list[FileEntry]:
    """The site's file store in upload order."""
    import sqlalchemy as sa

    from tether.site.config_tables import store_files as t

    with site.engine.connect() as c:
        if not sa.inspect(c).has_table(t.name):  # a site still on an older schema (before its update)
            return []
        rows = c.execute(sa.select(t.c.name, t.c.sha256, t.c.size).order_by(t.c.uploaded_at, t.c.name)).all()
    blobs = site.files.blobs
    return [FileEntry(r.name, r.sha256, r.size, functools.partial(blobs.open, r.sha256)) for r in rows]


class SiteSlotPort(Protocol):
    """What the service needs of the runtime's site slot."""

    @property
    def site(self) -> Any: ...
    def restore(self, path: Path, password: str | None, *, force: bool) -> RestoreResult: ...


class BackupService:
    def __init__(self, slot: SiteSlotPort, data: DataDir, audit: AuditLog,
                 report_failure: Callable[[str, str], None], pair_peer: Callable[[], str | None] = lambda: None):
        self.slot = slot
        self.data = data
        self.audit = audit  # the /appliance audit log
        self.report_failure = report_failure
        self.pair_peer = pair_peer  # the peer's address while this appliance is in a failover pair (FO-09)

    def _site(self):
        if self.slot.site is None:
            raise NotFound("no site is installed on this appliance", hint="install a site package first")
        return self.slot.site

    def take(self, *, password: str | None, include_history: bool, actor: str, source_ip: str | None,
             out_dir: Path | None = None, actor_kind: str = "user", kept_here: bool = False) -> BackupResult:
        """``actor_kind`` (user, api_account, cli, drill) and ``kept_here`` (a backup left in <data>/backups, such as
        the one before an update) go in the audit entry: the readiness audit (DR-01) reads them back."""
        site = self._site()
        data = self.data
        try:
            result = write_backup(site, out_dir or data.backups_dir, password=password,
                                  include_history=include_history, work_dir=data.backups_dir / ".work",
                                  files=site_file_entries(site))
        except Invalid:
            raise  # the caller's input, not a failure of the appliance
        except TetherError as exc:
            site.audit.record(actor, "backup.failed", None, source_ip, {"error": exc.message})
            self.report_failure("Site backup failed", exc.message)
            raise
        site.audit.record(actor, "backup.create", result.path.name, source_ip,
                          {"include_history": include_history, "protected": password is not None,
                           "size": result.size, "actor_kind": actor_kind, "kept_on_appliance": kept_here})
        return result

    def verify(self, path: Path, password: str | None) -> dict:
        return verify_file(path, password)

    def restore(self, path: Path, password: str | None, *, force: bool, actor: str, source_ip: str | None,
                confirm_failover: bool = False) -> dict:
        peer = self.pair_peer()
        if peer and not confirm_failover:
            raise Conflict(f"this appliance is in a failover pair with {peer}: restoring here is not the supported "
                           "path (the restored site replaces the pair's history, and the backup copies it)",
                           hint="break failover, restore, set a new pre-shared key on both, establish again "
                                "(docs/operations.md, FO-09); or confirm the restore in the pair explicitly "
                                "(--confirm-failover, confirm_failover=true)")
        try:
            result = self.slot.restore(path, password, force=force)  # every client reconnects (the slot tells the hub)
        except TetherError as exc:  # the attempt and its reason go on record in the /appliance audit log only:
            # the site itself stays exactly as it was (not one row written), as a refused restore promises
            self.audit.record(actor, "site.restore.failed", path.name, source_ip,
                              {"error": exc.message, "forced": force, "in_failover_pair": peer})
            raise
        details = {"backup_version": result.backup_version, "action": result.action, "forced": force,
                   "in_failover_pair": peer}
        self.audit.record(actor, "site.restore", result.site_name, source_ip, details)
        self._site().audit.record(actor, "site.restore", result.site_name, source_ip, details)
        return result.public()


class Verified(BaseModel):
    """``verify_file``'s findings (DR-03)."""
    file: str
    ok: bool
    protected: bool
    site_name: str
    edition: str
    product_version: str
    schema_revision: Any
    created_at: Any
    backup_id: str
    include_history: bool
    restorable_here: bool
    version_note: str
    members: int
    bytes: int
    tables: dict[str, Any]
    left_out: list[Any]


class Restored(BaseModel):
    """``RestoreResult.public``: the site put in place, and what the backup left out."""
    site_name: str
    edition: str
    version: str
    backup_version: str
    action: str
    warnings: list[str]
    left_out: list[Any]
    tables: dict[str, Any]


def verify_file(path: Path, password: str | None, running_version: str | None = None) -> dict:
    """DR-03: integrity, password and version compatibility, without restoring."""
    from tether import __version__

    running = running_version or __version__
    res = read_backup(path, password)
    m = res.manifest
    try:
        verdict = judge(m["product_version"], running)
        compatible, note = True, verdict.message
    except Exception as exc:  # refused versions are a finding, not a failure of verify
        compatible, note = False, getattr(exc, "message", str(exc))
    return {"file": str(path), "ok": True, "protected": res.header["protected"], "site_name": m["site_name"],
            "edition": m["edition"], "product_version": m["product_version"],
            "schema_revision": m["schema_revision"], "created_at": m["created_at"], "backup_id": m["backup_id"],
            "include_history": m["include_history"], "restorable_here": compatible, "version_note": note,
            "members": len(m["members"]), "bytes": sum(x["size"] for x in m["members"]), "tables": m["tables"],
            "left_out": m["left_out"]}
