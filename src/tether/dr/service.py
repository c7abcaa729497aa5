"""The drill as the /appliance page, its API twin and ``tether drill`` call
it (DR-02): one ``start`` (one permission check), run as a one-shot job of
the appliance's job runner, a report saved at each step, ``list`` and
``get`` of past drills. Declares what it needs of the appliance as
``DrillHost``.

A drill never changes production data: the restore rehearsal works on a
scratch copy; the failover part swaps the pair's roles and swaps them back
(planned, data sync first), and its probe workload writes only the
``drill_probe`` site setting, removed at the end.

Which backup is rehearsed (``backup``):

- ``fresh`` (the default): a site backup taken now, unprotected, into the
  scratch directory (never leaving it; removed with it). The appliance does
  not keep the backups administrators download, so this is the one whose
  restore path and version are surely today's.
- ``latest``: the newest backup the appliance keeps itself
  (``<data>/backups/``, taken before site updates); a drill with none fails.
- ``upload``: a backup file given by the caller (the one kept off the
  appliance), with its password; the comparison then shows what changed
  since it was taken.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from pydantic import BaseModel, ConfigDict

from tether.core.audit import AuditLog
from tether.core.errors import Conflict, Invalid, TetherError
from tether.core.paths import DataDir
from tether.site import permissions as P

from . import failover_drill, scratch
from .reports import FORMAT_VERSION, ReportStore, new_id

SOURCES = ("fresh", "latest", "upload")


class Caller(Protocol):
    name: str

    def require(self, permission: str) -> None: ...


class DrillHost(Protocol):
    data: DataDir
    audit: AuditLog
    role: Any
    failover: Any  # failover.service.FailoverService
    backups: Any  # backup.service.BackupService

    @property
    def site(self) -> Any: ...
    def first_client_since(self, since: float) -> float | None: ...
    def client_total(self) -> int: ...


class DrillService:
    def __init__(self, host: DrillHost, submit: Callable[[str, Callable[[], Any]], Any]):
        self.host = host
        self.submit = submit  # the job runner's one-shot submit
        self.store = ReportStore(host.data.drills_dir)
        self._running: str | None = None
        self._lock = threading.Lock()
        self._abandoned()

    def _abandoned(self) -> None:
        """A drill the process did not live to finish: its report says so; its scratch copy is removed."""
        for r in self.store.list():
            if r.get("state") == "running":
                r.update(state="done", result="fail", finished_at=time.time())
                r.setdefault("errors", []).append("the appliance stopped before the drill finished")
                self.store.save(r)
        for d in self.host.data.drills_dir.glob(".scratch-*"):
            shutil.rmtree(d, ignore_errors=True)

    # --- the faces ------------------------------------------------------------------------------------
    def start(self, caller: Caller, source_ip: str | None, *, backup: str = "fresh", upload: Path | None = None,
              password: str | None = None, failover: bool = True, unplanned: bool = False,
              upload_name: str | None = None) -> dict:
        """Start a drill (returns its report, state ``running``); one at a time."""
        caller.require(P.COMMAND)
        caller.require(P.BACKUP)
        if backup not in SOURCES:
            raise Invalid(f"backup: one of {', '.join(SOURCES)}", field="backup")
        if (backup == "upload") != (upload is not None):
            raise Invalid("backup: 'upload' goes with an uploaded file, and a file with 'upload'", field="backup")
        if self.host.site is None:
            raise Conflict("no site is installed on this appliance: there is nothing to rehearse",
                           hint="install the site package first")
        with self._lock:
            if self._running is not None:
                raise Conflict(f"drill {self._running} is still running", hint=f"tether drill show {self._running}")
            report = {"version": FORMAT_VERSION, "id": new_id(), "state": "running", "result": None,
                      "started_at": time.time(), "finished_at": None, "by": caller.name,
                      "options": {"backup": backup, "failover": failover, "unplanned": bool(failover and unplanned)},
                      "progress": [], "errors": [], "restore": None, "failover": None}
            if upload is not None and upload_name:
                report["options"]["upload_name"] = upload_name[:200]
            self._running = report["id"]
        self.store.save(report)
        self.host.audit.record(caller.name, "drill.start", report["id"], source_ip, report["options"])
        self.submit("drill", lambda: self._run(report, caller, source_ip, upload, password))
        return report

    def list(self, caller: Caller) -> list[dict]:
        caller.require(P.COMMAND)
        return [summary(r) for r in self.store.list()]

    def get(self, caller: Caller, drill_id: str) -> dict:
        caller.require(P.COMMAND)
        return self.store.get(drill_id)

    @property
    def running(self) -> str | None:
        return self._running

    # --- the job ----------------------------------------------------------------------------------------
    def _run(self, report: dict, caller: Caller, source_ip: str | None, upload: Path | None,
             password: str | None) -> None:
        def progress(step: str) -> None:
            report["progress"].append({"at": time.time(), "step": step})
            self.store.save(report)

        try:
            report["restore"] = self._restore(report, upload, password, progress)
            if report["options"]["failover"]:
                report["failover"] = self._failover(report, caller, source_ip, progress)
            else:
                report["failover"] = {"result": "skipped", "reason": "not asked for"}
        except Exception as exc:  # noqa: BLE001 - a drill always ends with a report
            report["errors"].append(f"{type(exc).__name__}: {exc}")
        finally:
            if upload is not None:
                upload.unlink(missing_ok=True)
            parts = [p for p in (report.get("restore"), report.get("failover")) if p]
            results = [p.get("result") for p in parts]
            report["result"] = ("fail" if report["errors"] or "fail" in results or not parts
                                else "warn" if "warn" in results else "pass")
            report["state"] = "done"
            report["finished_at"] = time.time()
            report["duration_seconds"] = round(report["finished_at"] - report["started_at"], 3)
            self.store.save(report)
            self.host.audit.record(caller.name, "drill.done", report["id"], source_ip,
                                   {"result": report["result"], **figures(report)})
            with self._lock:
                self._running = None

    def _restore(self, report: dict, upload: Path | None, password: str | None, progress) -> dict:
        source = report["options"]["backup"]
        work = self.host.data.drills_dir / f".scratch-{report['id']}"
        out: dict = {"backup": {"source": source}}
        try:
            t0 = time.monotonic()
            if source == "fresh":
                progress("backup: taking a fresh site backup")
                work.mkdir(mode=0o700, parents=True)
                res = self.host.backups.take(password=None, include_history=False, actor="drill", actor_kind="drill",
                                             source_ip=None, out_dir=work)
                path, password = res.path, None
                out["backup"]["seconds"] = round(time.monotonic() - t0, 3)
                out["backup"]["why"] = ("taken now: the appliance keeps no copy of the backups administrators "
                                        "download, and this one surely restores with today's software")
            elif source == "latest":
                kept = sorted(self.host.data.backups_dir.glob("*.nsb"), key=lambda p: p.stat().st_mtime)
                if not kept:
                    raise scratch.RehearsalFailed(f"no site backup is kept on this appliance "
                                                  f"({self.host.data.backups_dir})",
                                                  hint="rehearse a fresh backup, or upload the latest one you keep")
                path = kept[-1]
                out["backup"]["why"] = "the newest backup this appliance keeps (taken before a site update)"
            else:
                path = upload
                out["backup"]["why"] = "the backup file given to the drill"
            out["backup"]["file"] = report["options"].get("upload_name") or path.name
            out["backup"]["size"] = path.stat().st_size
            rehearsal = scratch.rehearse(self.host.site.engine, path, password, work / "scratch",
                                         progress=progress)
            out.update(rehearsal)
            out["result"] = "pass" if rehearsal["comparison"]["matches"] else "warn"
        except TetherError as exc:
            out.update(getattr(exc, "partial", {}))
            out["result"] = "fail"
            out["error"] = exc.message
            report["errors"].append(f"restore rehearsal: {exc.message}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return out

    def _failover(self, report: dict, caller: Caller, source_ip: str | None, progress) -> dict:
        svc = self.host.failover
        if svc.pairs.load() is None:
            return {"result": "skipped", "reason": "this appliance is not in a failover pair"}
        unplanned = report["options"].get("unplanned", False)
        run = failover_drill.unplanned if unplanned else failover_drill.planned
        try:
            out = run(svc, self.host, caller, source_ip, report["id"], self.submit, progress)
        except TetherError as exc:
            report["errors"].append(f"failover: {exc.message}")
            return {"result": "fail", "mode": "unplanned" if unplanned else "planned", "error": exc.message,
                    "role_now": self.host.role.current}
        lost = out["rpo"]["lost"] or out["rpo"]["orphan_files"]
        if not out["roles_restored"]:
            out["result"] = "fail"
            report["errors"].append("failover: the pair is not back to its original roles")
        elif lost and not unplanned:
            out["result"] = "fail"  # a planned failover (data sync first) must lose nothing
            report["errors"].append("failover: acknowledged writes were lost in a planned failover")
        else:
            out["result"] = "warn" if lost else "pass"  # unplanned: what asynchronous sync loses, measured
        return out


class DrillFigures(BaseModel):
    restore_seconds: float | None
    restore_to_answer_seconds: float | None
    differences: int | None
    rto_seconds: float | None
    rpo_writes_lost: int | None


class DrillSummary(DrillFigures):
    """A drill as ``DrillService.list`` lists it: its outcome and headline figures."""
    id: str
    state: str
    result: str | None
    started_at: float
    finished_at: float | None
    by: str | None
    restore: str | None
    failover: str | None


class DrillReport(BaseModel):
    """A drill's report (docs/formats/drill.md); its restore and failover parts as the format says."""
    model_config = ConfigDict(extra="allow")
    version: int
    id: str
    state: str
    result: str | None
    started_at: float
    finished_at: float | None
    by: str | None
    options: dict[str, Any]
    progress: list[Any]
    errors: list[Any]
    restore: dict[str, Any] | None
    failover: dict[str, Any] | None


def figures(r: dict) -> dict:
    """The headline figures of a report (the list, the audit entry)."""
    rs, fo = r.get("restore") or {}, r.get("failover") or {}
    t = rs.get("timings") or {}
    cmp = rs.get("comparison") or {}
    return {"restore_seconds": t.get("restore_seconds"), "restore_to_answer_seconds":
            t.get("restore_to_answer_seconds"), "differences": len(rs.get("differences") or []) if cmp else None,
            "rto_seconds": fo.get("rto_seconds"), "rpo_writes_lost": fo.get("rpo_writes_lost")}


def summary(r: dict) -> dict:
    return {"id": r["id"], "state": r["state"], "result": r.get("result"), "started_at": r["started_at"],
            "finished_at": r.get("finished_at"), "by": r.get("by"),
            "restore": (r.get("restore") or {}).get("result"), "failover": (r.get("failover") or {}).get("result"),
            **figures(r)}
