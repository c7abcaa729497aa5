"""The primary's side of sync (docs/formats/peer-protocol.md, "Change
stream" and "Snapshot"): what it ships of its change log and of its site.

- ``shipped(entry)``: the form an entry travels in. Entries that are never
  synced (site/locality.py: the pair's failover settings, the pre-shared
  key, cluster settings) travel as ``skip`` entries (no table data), so the
  backup's position still advances and the secret never leaves.
- ``entry_hash``: SHA-256 of an entry's shipped form (canonical JSON, no
  ``at``); the backup sends the hash of its last entry with its position,
  and a mismatch means the two logs are not the same history (another
  generation, a restore, a new site): the backup needs a full copy.
- ``position_problem``: why the stream cannot continue from a position.
- ``read_batch``: the entries after a position, shipped.
- ``snapshot_lines``: a full, consistent copy of the synced tables as
  NDJSON lines, for a new backup or one whose history diverged.
- ``CommitSignal``: wakes the streams when the site commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event

from tether.site import changelog, schema
from tether.site.history_tables import change_log
from tether.site.install import read_info
from tether.site.locality import NOT_SYNCED_SETTINGS, is_synced_entry
from tether.site.tables import site_settings

BATCH_ENTRIES = 500
SNAPSHOT_ROWS = 500


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def shipped(entry: dict) -> dict:
    e = {k: entry[k] for k in ("seq", "at", "tbl", "op", "key", "row", "gen", "fence")}
    if e["op"] != "skip" and not is_synced_entry(e):
        e.update(op="skip", key={}, row=None)
    return e


def entry_hash(entry: dict) -> str:
    e = shipped(entry)
    return hashlib.sha256(canonical({k: e[k] for k in ("seq", "tbl", "op", "key", "row")})).hexdigest()


def head(conn: sa.Connection) -> int:
    return changelog.last_seq(conn)


def entry_at(conn: sa.Connection, seq: int) -> dict | None:
    row = conn.execute(sa.select(change_log).where(change_log.c.seq == seq)).mappings().first()
    return dict(row) if row else None


def position_problem(engine: sa.Engine, after: int, after_hash: str | None) -> str | None:
    """None when the stream can continue after ``after``; else why a full copy is needed."""
    with engine.connect() as c:
        top = head(c)
        if after > top:
            return f"the backup is at {after}, ahead of this primary's log ({top}): another history"
        if after == 0:
            first = c.execute(sa.select(sa.func.min(change_log.c.seq))).scalar()
            return None if first in (None, 1) else "this primary's log does not start at 1: a full copy is needed"
        e = entry_at(c, after)
        if e is None:
            return f"entry {after} is no longer in this primary's log"
        if after_hash != entry_hash(e):
            return f"the backup's entry {after} differs from the primary's: another history"
    return None


def read_batch(engine: sa.Engine, after: int, limit: int = BATCH_ENTRIES) -> list[dict]:
    with engine.connect() as c:
        return [shipped(e) for e in changelog.entries_after(c, after, limit)]


def read_batch_and_head(engine: sa.Engine, after: int, limit: int = BATCH_ENTRIES) -> tuple[list[dict], int]:
    """The entries after ``after`` and the log's head, read together (the backup's lag is head - applied)."""
    with engine.connect() as c:
        return [shipped(e) for e in changelog.entries_after(c, after, limit)], head(c)


def head_info(engine: sa.Engine) -> tuple[int, float | None]:
    with engine.connect() as c:
        row = c.execute(sa.select(change_log.c.seq, change_log.c.at).order_by(change_log.c.seq.desc())
                        .limit(1)).first()
    return (row.seq, row.at) if row else (0, None)


def _consistent(conn: sa.Connection) -> sa.Connection:
    """One snapshot for every read of ``conn`` (SQLite: a read transaction in WAL; PostgreSQL: repeatable read)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")
    else:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.begin()
    return conn


def synced_tables() -> list[sa.Table]:
    return changelog.logged_tables()  # in dependency order (parents first)


def snapshot_lines(engine: sa.Engine, generation: int) -> Iterator[bytes]:
    """A full copy, consistent at one moment: header, rows per table, the head entry, end."""
    with engine.connect() as raw:
        c = _consistent(raw)
        info = read_info(engine)
        top = head(c)
        yield canonical({"type": "snapshot", "head": top, "generation": generation,
                         "site_name": info.name if info else None, "product_version": info.version if info else None,
                         "schema_revision": schema.current_revision(engine)}) + b"\n"
        counts: dict[str, int] = {}
        for t in synced_tables():
            q = sa.select(t).order_by(*t.primary_key.columns)
            if t is site_settings:
                q = q.where(site_settings.c.key.not_in(NOT_SYNCED_SETTINGS))
            rows: list[dict] = []
            n = 0
            for r in c.execute(q).mappings():
                rows.append(changelog.encode_row(t, r))
                n += 1
                if len(rows) >= SNAPSHOT_ROWS:
                    yield canonical({"type": "rows", "table": t.name, "rows": rows}) + b"\n"
                    rows = []
            if rows:
                yield canonical({"type": "rows", "table": t.name, "rows": rows}) + b"\n"
            counts[t.name] = n
        last = entry_at(c, top) if top else None
        if last is not None:
            yield canonical({"type": "log", "entry": shipped(last)}) + b"\n"
        yield canonical({"type": "end", "head": top, "rows": counts}) + b"\n"
        c.rollback()


class CommitSignal:
    """Set whenever the site's engine commits; streams wait on it instead of polling."""

    def __init__(self):
        self._cond = threading.Condition()
        self._count = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def attach(self, engine: sa.Engine) -> None:
        if getattr(engine, "_tether_commit_signal", None) is self:
            return
        event.listen(engine, "commit", lambda conn: self.fire())
        engine._tether_commit_signal = self  # type: ignore[attr-defined]

    def fire(self) -> None:
        with self._cond:
            self._count += 1
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, ev in waiters:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # that loop is closed
                pass

    def count(self) -> int:
        return self._count

    async def wait_async(self, seen: int, timeout: float) -> None:
        """``wait`` for the event loop, without holding a thread."""
        if self._count != seen:
            await asyncio.sleep(0.002)  # the commit event fires just before the commit is visible
            return
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._cond:
            self._waiters.add(waiter)
        try:
            if self._count == seen:
                await asyncio.wait_for(waiter[1].wait(), timeout)
            await asyncio.sleep(0.002)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._cond:
                self._waiters.discard(waiter)

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until a commit after ``seen`` (the ``count()`` read before the last check) or ``timeout``."""
        with self._cond:
            self._cond.wait_for(lambda: self._count != seen, timeout)
            return self._count
