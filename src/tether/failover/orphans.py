"""Orphans (FO-08): changes an appliance took as primary that the new
primary never received, kept in ``<data>/failover/orphans/`` before the
appliance takes the new primary's copy (docs/formats/orphans.md).

One file per demotion: ``orphans-<from generation>-to-<to generation>-<UTC stamp>.json``,
written aside, fsynced and renamed. Nothing deletes them; an administrator
lists, reads and re-applies chosen entries on the new primary
(``tether failover orphans list|show|apply``), where they become new
changes (logged and synced like any other).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from tether.core.errors import Invalid, NotFound
from tether.core.fsutil import write_atomic
from tether.site import changelog
from tether.site.locality import is_synced_entry

FORMAT = "tether-orphans/1"


class _OrphanHead(BaseModel):
    created_at: float
    reason: str = ""
    from_generation: int
    to_generation: int
    fork_seq: int
    count: int


class OrphanFileSummary(_OrphanHead):
    """One orphan file as ``list_files`` lists it."""
    file: str
    path: str
    tables: list[str]


class OrphanFile(_OrphanHead):
    """An orphan file's document (docs/formats/orphans.md)."""
    format: str
    site_name: str
    entries: list[dict[str, Any]]


def write(orphans_dir: Path, engine: sa.Engine, *, fork_seq: int, from_generation: int, to_generation: int,
          site_name: str, reason: str) -> Path | None:
    """Keep every entry after ``fork_seq`` of this appliance's log; None when there is none."""
    with engine.connect() as c:
        entries = [e for e in changelog.entries_after(c, fork_seq, limit=10_000_000)
                   if e["op"] != "skip" and is_synced_entry(e)]
    if not entries:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = orphans_dir / f"orphans-{from_generation}-to-{to_generation}-{stamp}.json"
    doc = {"format": FORMAT, "site_name": site_name, "created_at": time.time(), "reason": reason,
           "from_generation": from_generation, "to_generation": to_generation, "fork_seq": fork_seq,
           "count": len(entries), "entries": entries}
    write_atomic(path, json.dumps(doc, default=str, indent=1).encode(), label="orphans")
    return path


def list_files(orphans_dir: Path) -> list[dict]:
    d = orphans_dir
    out = []
    for p in sorted(d.glob("orphans-*.json")) if d.is_dir() else []:
        doc = read(p)
        out.append({"file": p.name, "path": str(p), "count": doc["count"], "created_at": doc["created_at"],
                    "from_generation": doc["from_generation"], "to_generation": doc["to_generation"],
                    "fork_seq": doc["fork_seq"], "reason": doc.get("reason", ""),
                    "tables": sorted({e["tbl"] for e in doc["entries"]})})
    return out


def read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(f"no orphan file {path}") from None
    except ValueError:
        raise Invalid(f"{path} is not an orphan file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise Invalid(f"{path} is not a {FORMAT} file")
    return doc


def select(doc: dict, seqs: list[int] | None) -> list[dict]:
    entries = doc["entries"]
    if seqs is None:
        return entries
    chosen = [e for e in entries if e["seq"] in set(seqs)]
    missing = set(seqs) - {e["seq"] for e in chosen}
    if missing:
        raise NotFound(f"the orphan file has no entries {sorted(missing)}")
    return chosen
