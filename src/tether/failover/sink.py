"""The backup's side of sync: applying what the primary ships.

- ``position``: this copy's last applied sequence number and the hash of
  that entry (its own change log holds the primary's entries verbatim, so
  the position is durable with the data: one transaction per batch).
- ``apply_batch``: a batch of shipped entries in one transaction
  (site/changelog.py ``apply``; ``skip`` entries only advance the position).
- ``apply_snapshot``: a full copy in one transaction: every synced table is
  replaced (this appliance's own failover settings, pre-shared key and
  cluster settings are kept), and the log restarts at the primary's head.
  Either the whole copy is applied or nothing.

Replay is written with ``NOLOG`` and is therefore never stopped by the
backup's write fence. ``blob_refs`` names the blobs a batch refers to.

Crash points (ROB-01, tether.core.crashpoints): ``sync: batch checked``,
``sync: entry written`` (each entry) and ``sync: batch written`` (inside the
transaction), ``sync: batch committed``;
``sync: copy cleared``, ``sync: copy rows <table>``, ``sync: copy complete``
(inside the transaction), ``sync: copy committed``.
"""

from __future__ import annotations

import json
from typing import Iterable

import sqlalchemy as sa

from tether.core.crashpoints import checkpoint
from tether.core.errors import IntegrityError
from tether.site import changelog
from tether.site.history_tables import change_log, recordings
from tether.site.locality import NOT_SYNCED_SETTINGS
from tether.site.tables import site_settings

from .source import entry_at, entry_hash, synced_tables

NOLOG = {changelog.NOLOG: True}
BLOB_TABLES = {"store_files": "files", "recordings": "recordings"}


def position(engine: sa.Engine) -> tuple[int, str | None]:
    with engine.connect() as c:
        seq = changelog.last_seq(c)
        e = entry_at(c, seq) if seq else None
    return seq, entry_hash(e) if e else None


def apply_batch(engine: sa.Engine, entries: list[dict]) -> int:
    """Apply shipped entries in one transaction; returns the last sequence number applied."""
    for e in entries:
        if e.get("op") not in ("upsert", "delete", "skip"):
            raise IntegrityError(f"change stream entry {e.get('seq')} has an unknown operation {e.get('op')!r}")
    checkpoint("sync: batch checked")
    with engine.begin() as c:
        c = c.execution_options(**NOLOG)
        last = changelog.apply(c, entries, after_each=lambda e: checkpoint("sync: entry written"))
        checkpoint("sync: batch written")
    checkpoint("sync: batch committed")
    return last


def blob_refs(entries: Iterable[dict]) -> list[tuple[str, str]]:
    """(kind, sha256) of the blobs that upserted rows refer to."""
    out = []
    for e in entries:
        kind = BLOB_TABLES.get(e["tbl"])
        if kind and e["op"] == "upsert" and e.get("row") and e["row"].get("sha256"):
            out.append((kind, e["row"]["sha256"]))
    return out


def all_blob_refs(engine: sa.Engine) -> list[tuple[str, str, int]]:
    """(kind, sha256, size) of every blob the site refers to."""
    from tether.site.config_tables import store_files

    with engine.connect() as c:
        out = [("files", r.sha256, r.size) for r in c.execute(sa.select(store_files.c.sha256, store_files.c.size))]
        out += [("recordings", r.sha256, r.size) for r in c.execute(sa.select(recordings.c.sha256, recordings.c.size))]
    return out


class SnapshotError(IntegrityError):
    pass


def apply_snapshot(engine: sa.Engine, lines: Iterable[bytes], expect_site: str) -> dict:
    """Replace the synced data by the primary's full copy (one transaction); returns its header."""
    header: dict | None = None
    ended = False
    tables = {t.name: t for t in synced_tables()}
    counts: dict[str, int] = {}
    with engine.begin() as raw:
        c = raw.execution_options(**NOLOG)
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                raise SnapshotError("the primary's full copy has a line that is not JSON") from None
            kind = msg.get("type")
            if header is None:
                if kind != "snapshot":
                    raise SnapshotError("the primary's full copy does not start with its header")
                if msg.get("site_name") != expect_site:
                    raise SnapshotError(f"the primary's copy is of site {msg.get('site_name')!r}, "
                                        f"this appliance hosts {expect_site!r}")
                header = msg
                _clear(c)
                checkpoint("sync: copy cleared")
            elif kind == "rows":
                t = tables.get(msg.get("table"))
                if t is None:
                    raise SnapshotError(f"the primary's copy names an unknown table {msg.get('table')!r}")
                rows = [changelog.decode_row(t, r) for r in msg.get("rows", [])]
                if t is site_settings:
                    rows = [r for r in rows if r["key"] not in NOT_SYNCED_SETTINGS]
                if rows:
                    c.execute(t.insert(), rows)
                counts[t.name] = counts.get(t.name, 0) + len(rows)
                checkpoint(f"sync: copy rows {t.name}")
            elif kind == "log":
                c.execute(change_log.insert().values(**msg["entry"]))
            elif kind == "end":
                ended = True
                break
            else:
                raise SnapshotError(f"the primary's full copy has an unknown line type {kind!r}")
        if header is None or not ended:
            raise SnapshotError("the primary's full copy ended early; nothing was applied")
        if c.dialect.name == "postgresql":
            changelog._reset_sequences(c)
        checkpoint("sync: copy complete")
    checkpoint("sync: copy committed")
    return {**header, "applied_rows": counts}


def _clear(c: sa.Connection) -> None:
    """Empty every synced table and the log (children first), keeping this appliance's own settings."""
    for t in reversed(synced_tables()):
        q = t.delete()
        if t is site_settings:
            q = q.where(site_settings.c.key.not_in(NOT_SYNCED_SETTINGS))
        c.execute(q)
    c.execute(change_log.delete())
