"""One pass of the integration (``sync --once``, and each turn of ``run``):
check the site's version, then pull each kind asked for, recording in the
state what was pulled, when, and what failed.

- backups: a new site backup (``POST /api/backup``), written as
  ``backups/<site>-<UTC stamp>.nsb``, then the retention policy applied. A
  backup whose upload was interrupted is finished (from its staged copy)
  before a new one is taken.
- sessions: session reports in the order written (``order=oldest``, the
  cursor kept in the state), each ended session with its events as
  ``sessions/<YYYY-MM-DD>/<lsid>.json``; sessions still open are remembered
  and written once they end. The other history kinds the site records
  (exit surveys, presentation logs, license usage, team activity) go as
  JSON-lines pages ``history/<kind>/<first id>.jsonl``.
- recordings: each recording downloaded into ``partial/`` (resumed by Range,
  checked against its SHA-256), then written as
  ``recordings/<YYYY-MM-DD>/<the site's file name>``.

Keys are a function of the record, so an item redone after a crash replaces
itself: no duplicate."""

from __future__ import annotations

import datetime as dt
import json
from typing import Callable

from tether.core.errors import Gone, TetherError

from . import retention
from .config import Config
from .destinations import Destination, disk_error
from .progress import Reporter
from .siteapi import Site, file_sha256
from .state import State

HISTORY_KINDS = ("exit-survey-answers", "presentation-logs", "license-usage", "team-activity")


def _day(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d")


class _Uploads(dict):
    """The state's in-progress multipart uploads: saved the moment one starts or ends."""

    def __init__(self, state: State):
        super().__init__(state.doc["uploads"])
        self.state = state

    def _sync(self) -> None:
        self.state.doc["uploads"] = dict(self)
        self.state.save()

    def __setitem__(self, k, v):
        super().__setitem__(k, v)
        self._sync()

    def pop(self, k, *default):
        v = super().pop(k, *default)
        self._sync()
        return v


class Pass:
    def __init__(self, cfg: Config, state: State, site: Site, dest: Destination, now: Callable[[], float],
                 out: Reporter):
        self.cfg, self.state, self.site, self.dest, self.now, self.out = cfg, state, site, dest, now, out
        self.info: dict = {}
        self.uploads = _Uploads(state)

    def run(self, kinds: list[str]) -> list[dict]:
        """Pull ``kinds``; the failures (kind, message), also recorded in the state. An unsupported site,
        wrong credentials or an unreachable site stop the pass (raised, after being recorded)."""
        st = self.state
        try:
            self.info = self.site.info()
        except TetherError as exc:
            for kind in kinds:
                st.kind(kind)["last_attempt"] = self.now()
                st.failed(kind, self.now(), exc.message)
            st.save()
            raise
        st.doc["site"] = {"url": self.cfg.site_url, "software_version": self.info["software_version"],
                          "name": self.info["site"]["name"], "checked_at": self.now()}
        self.dest.cleanup()
        failures = []
        for kind in kinds:
            k = st.kind(kind)
            k["last_attempt"] = self.now()
            st.save()
            try:
                getattr(self, f"pull_{kind}")()
            except TetherError as exc:
                st.failed(kind, self.now(), exc.message)
                failures.append({"kind": kind, "message": exc.message, "exit_code": exc.exit_code})
                self.out.line(f"{kind}: failed: {exc.message}")
            except OSError as exc:  # the state directory itself (partial downloads): full, read-only ...
                err = disk_error(exc, f"the state directory {st.root}")
                st.failed(kind, self.now(), err.message)
                failures.append({"kind": kind, "message": err.message, "exit_code": 1})
                self.out.line(f"{kind}: failed: {err.message}")
            else:
                k["last_success"], k["last_error"] = self.now(), None
            st.save()
        return failures

    # --- backups ------------------------------------------------------------------------------
    def pull_backups(self) -> None:
        k = self.state.kind("backups")
        part = self.state.partial / "backup.part"
        pending = k.get("pending")
        if pending and not (part.exists() and file_sha256(part) == pending["sha256"]):
            pending = None
        if pending is None:
            at = dt.datetime.fromtimestamp(self.now(), dt.timezone.utc)
            key = f"backups/{self.info['site']['name']}-{retention.stamp(at)}.nsb"
            part.unlink(missing_ok=True)
            with self.out.item("site backup") as progress:
                _, sha, size = self.site.download_backup(part, progress)
            pending = k["pending"] = {"key": key, "sha256": sha, "size": size}
            self.state.save()
        with self.out.item(f"writing {pending['key']}", pending["size"]) as progress:
            self.dest.put_file(pending["key"], part, pending["sha256"], progress, self.uploads)
        k.pop("pending")
        k["last"] = {**pending, "at": self.now()}
        self.state.pulled("backups", pending["key"], self.now())
        self.state.save()
        part.unlink(missing_ok=True)
        if not self.cfg.retention.empty:
            _, removed = retention.plan(retention.parse(self.dest.list("backups/")), self.cfg.retention)
            for snap in removed:
                self.dest.delete(snap.key)
                self.out.line(f"retention: removed {snap.key}")
            k["removed"] = [s.key for s in removed]

    # --- sessions and the other history ---------------------------------------------------------------
    def _write_session(self, s: dict) -> None:
        key = f"sessions/{_day(s['started_at'])}/{s['lsid']}.json"
        self.dest.put_bytes(key, json.dumps(s, indent=1, sort_keys=True).encode())
        self.state.pulled("sessions", key, self.now())

    def pull_sessions(self) -> None:
        k = self.state.kind("sessions")
        open_: list[str] = k.setdefault("open", [])
        for lsid in list(open_):
            s = self.site.session(lsid)
            if s["ended_at"] is not None:
                self._write_session(s)
                open_.remove(lsid)
                self.state.save()
        n = 0
        for items, cursor in self.site.pages("sessions", k.get("cursor")):
            for item in items:
                if item["ended_at"] is None:
                    if item["lsid"] not in open_:
                        open_.append(item["lsid"])
                else:
                    self._write_session(self.site.session(item["lsid"]))
                    n += 1
            k["cursor"] = cursor
            self.state.save()
        self.out.line(f"sessions: {n} new, {len(open_)} still open")
        hist = k.setdefault("history", {})
        for hk in HISTORY_KINDS:
            if hk not in self.info.get("kinds", ()):
                continue
            h = hist.setdefault(hk, {})
            for items, cursor in self.site.pages(hk, h.get("cursor"), limit=500):
                key = f"history/{hk}/{items[0]['id']:012d}.jsonl"
                self.dest.put_bytes(key, b"".join(json.dumps(i, sort_keys=True).encode() + b"\n" for i in items))
                h["cursor"] = cursor
                h["rows"] = h.get("rows", 0) + len(items)
                self.state.save()

    # --- recordings -------------------------------------------------------------------------------------
    def pull_recordings(self) -> None:
        k = self.state.kind("recordings")
        missing: list[int] = k.setdefault("missing", [])
        for items, cursor in self.site.pages("recordings", k.get("cursor"), limit=100):
            done = k.setdefault("page_done", [])
            for rec in items:
                if rec["id"] in done:
                    continue
                try:
                    self._recording(k, rec)
                except Gone as exc:
                    if rec["id"] not in missing:
                        missing.append(rec["id"])
                    self.state.failed("recordings", self.now(), exc.message)
                done.append(rec["id"])
                k.pop("current", None)
                self.state.save()
            k["cursor"], k["page_done"] = cursor, []
            self.state.save()

    def _recording(self, k: dict, rec: dict) -> None:
        part = self.state.partial / f"recording-{rec['id']}.part"
        cur = k.get("current") or {}
        if cur.get("id") == rec["id"] and cur.get("key") and part.exists() \
                and part.stat().st_size == rec["size"] and file_sha256(part) == rec["sha256"]:
            key, sha = cur["key"], rec["sha256"]  # downloaded before the interruption: only the write is left
        else:
            have = part.stat().st_size if part.exists() else 0
            resume = f", resuming from byte {have}" if have else ""
            with self.out.item(f"recording {rec['id']} ({rec['kind']}{resume})", rec["size"]) as progress:
                name, sha = self.site.download_recording(rec, part, progress)
            key = f"recordings/{_day(rec['started_at'])}/{name}"
            k["current"] = {"id": rec["id"], "key": key}
            self.state.save()
        with self.out.item(f"writing {key}", rec["size"]) as progress:
            self.dest.put_file(key, part, sha, progress, self.uploads)
        self.state.pulled("recordings", key, self.now())
        part.unlink(missing_ok=True)
