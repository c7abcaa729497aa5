"""Drill reports on disk: ``<data>/drills/drill-<id>.json`` (docs/formats/drill.md), written whole
(write aside, fsync, rename) at each step of a running drill and at its end."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

from tether.core.errors import Invalid, NotFound
from tether.core.fsutil import write_atomic

FORMAT_VERSION = 1
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def new_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class ReportStore:
    def __init__(self, root: Path):
        self.root = root  # DataDir.drills_dir

    def path(self, drill_id: str) -> Path:
        if not _ID.match(drill_id or ""):
            raise Invalid("id: a drill id from the list, e.g. 20261202T070000Z-1a2b3c", field="id")
        return self.root / f"drill-{drill_id}.json"

    def save(self, report: dict) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.path(report["id"]), json.dumps(report, indent=1, sort_keys=True).encode(),
                     label="drill report")

    def get(self, drill_id: str) -> dict:
        p = self.path(drill_id)
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            raise NotFound(f"no drill {drill_id} on this appliance", hint="tether drill list") from None

    def list(self) -> list[dict]:
        out = []
        for p in sorted(self.root.glob("drill-*.json"), reverse=True):
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError):
                continue  # a report being replaced right now, or damaged: skipped, never fatal
        return out
