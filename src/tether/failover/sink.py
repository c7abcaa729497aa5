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

What the primary sends is checked before anything is written
(``parse_message``, ``check_batch``, ``message_int``): a message the
backup cannot use raises ``StreamError`` naming what was wrong, and a disk
that is full or read-only raises ``StorageError``; either way nothing of the
message was applied, and no error repeats a row's values (they may be site
secrets) or the SQL.

Crash points (ROB-01, tether.core.crashpoints): ``sync: batch checked``,
``sync: entry written`` (each entry) and ``sync: batch written`` (inside the
transaction), ``sync: batch committed``;
``sync: copy cleared``, ``sync: copy rows <table>``, ``sync: copy complete``
(inside the transaction), ``sync: copy committed``.
"""

from __future__ import annotations

import contextlib
import errno
import json
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterable, Iterator

import sqlalchemy as sa

from tether.core.crashpoints import checkpoint
from tether.core.errors import TetherError
from tether.site import changelog
from tether.site.history_tables import change_log, recordings
from tether.site.locality import NOT_SYNCED_SETTINGS
from tether.site.tables import site_settings

from .errors import StorageError, StreamError
from .source import entry_at, entry_hash, synced_tables

NOLOG = {changelog.NOLOG: True}
BLOB_TABLES = {"store_files": "files", "recordings": "recordings"}
OPS = ("upsert", "delete", "skip")
STREAM_HINT = ("run the same Tether release on both appliances (tether failover status on each shows it); "
               "the backup keeps retrying by itself")
DISK_HINT = "free space on the file system of this appliance's data directory; sync resumes by itself"


# --- what the primary sends ---------------------------------------------------------------------------------
def _excerpt(line: bytes | str) -> str:
    text = line[:60].decode("utf-8", "replace") if isinstance(line, bytes) else line[:60]
    return repr(text) + ("..." if len(line) > 60 else "")


def parse_message(line: bytes | str) -> dict:
    """One line of the change stream or of a full copy: a JSON object with a ``type``."""
    try:
        msg = json.loads(line)
    except ValueError:
        raise StreamError(f"the primary sent a line that is not JSON ({_excerpt(line)}); nothing of it was applied",
                          hint=STREAM_HINT) from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise StreamError(f"the primary sent a line that is not a message (a JSON object with a type): "
                          f"{_excerpt(line)}; nothing of it was applied", hint=STREAM_HINT)
    return msg


def message_int(msg: dict, name: str, default: int | None = None) -> int:
    """The whole, non-negative number ``msg[name]`` (``default`` when absent)."""
    value = msg.get(name, default)
    if not _whole(value):
        raise StreamError(f"the primary sent a {msg.get('type')} message whose {name} is {value!r}, not a "
                          f"sequence number; nothing of it was applied", hint=STREAM_HINT)
    return value


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_batch(msg: dict) -> list[dict]:
    """The entries of a ``batch`` message, each in the shipped layout, else StreamError."""
    entries = msg.get("entries")
    if not isinstance(entries, list) or not entries:
        raise StreamError("the primary sent a batch without entries; nothing of it was applied", hint=STREAM_HINT)
    for name in ("generation", "head", "through"):
        if msg.get(name) is not None:
            message_int(msg, name)
    tables = {t.name for t in synced_tables()}
    for e in entries:
        if not isinstance(e, dict):
            raise StreamError("the primary sent a batch with an entry that is not an object; nothing of it was "
                              "applied", hint=STREAM_HINT)
        seq = e.get("seq")
        where = f"entry {seq!r} of the primary's batch"
        if isinstance(seq, bool) or not isinstance(seq, int) or seq <= 0:
            raise StreamError("the primary sent a batch with an entry without a sequence number; nothing of it "
                              "was applied", hint=STREAM_HINT)
        if e.get("op") not in OPS:
            raise StreamError(f"{where} has an unknown operation {e.get('op')!r}; nothing of the batch was applied",
                              hint=STREAM_HINT)
        if not isinstance(e.get("tbl"), str) or not isinstance(e.get("key"), dict) or \
                not isinstance(e.get("at"), (int, float)) or not (e.get("row") is None or isinstance(e["row"], dict)):
            raise StreamError(f"{where} is not in the change-log layout (at, tbl, op, key, row); nothing of the "
                              f"batch was applied", hint=STREAM_HINT)
        gen, token = e.get("gen"), e.get("fence")
        if not _whole(gen) or not (token is None or _whole(token)) or \
                (msg.get("generation") is not None and gen > msg["generation"]):
            raise StreamError(f"{where} carries no valid generation and fencing token (gen, fence), or a generation "
                              f"above the batch's; nothing of the batch was applied", hint=STREAM_HINT)
        if e["op"] != "skip" and e["tbl"] not in tables:
            raise StreamError(f"{where} names an unknown table {e['tbl'][:64]!r}; nothing of the batch was applied",
                              hint=STREAM_HINT)
    return entries


@contextmanager
def _storing(what: str) -> Iterator[None]:
    """Turn what can go wrong while writing ``what`` into StorageError / StreamError (no values, no SQL)."""
    try:
        yield
    except TetherError:
        raise
    except (sa.exc.OperationalError, OSError) as exc:
        text = str(getattr(exc, "orig", None) or getattr(exc, "strerror", None) or exc)
        code = getattr(exc, "errno", None)
        if code in (errno.ENOSPC, errno.EDQUOT) or "full" in text:
            raise StorageError(f"this appliance's disk is full: {what} could not be stored ({text}); nothing of it "
                               f"was applied", hint=DISK_HINT) from None
        if code == errno.EROFS or "readonly" in text or "read-only" in text:
            raise StorageError(f"this appliance's data directory is read-only: {what} could not be stored "
                               f"({text}); nothing of it was applied",
                               hint="make the data directory's file system writable again; sync resumes by "
                                    "itself") from None
        raise StorageError(f"{what} could not be stored ({text}); nothing of it was applied",
                           hint="the backup retries by itself") from None
    except sa.exc.DBAPIError as exc:  # a constraint: the data does not fit this site's schema
        raise StreamError(f"{what} was refused by this appliance's database ({exc.orig}); nothing of it was applied",
                          hint=STREAM_HINT) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamError(f"{what} was refused ({type(exc).__name__}: {str(exc)[:200]}); nothing of it was applied",
                          hint=STREAM_HINT) from None


def position(engine: sa.Engine) -> tuple[int, str | None]:
    with engine.connect() as c:
        seq = changelog.last_seq(c)
        e = entry_at(c, seq) if seq else None
    return seq, entry_hash(e) if e else None


# --- applying it -----------------------------------------------------------------------------------------------
def apply_batch(engine: sa.Engine, entries: list[dict], guard: Callable[[], ContextManager] | None = None) -> int:
    """Apply shipped entries in one transaction; returns the last sequence number applied. ``guard()`` is
    entered just before the commit and left after it: it refuses (raises) when this appliance is no longer a
    backup, and holds off a promotion meanwhile (SyncWorker.guard)."""
    check_batch({"entries": entries})
    checkpoint("sync: batch checked")
    with _storing(f"the primary's batch of entries {entries[0]['seq']} to {entries[-1]['seq']}"), \
            contextlib.ExitStack() as held:
        with engine.begin() as c:
            c = c.execution_options(**NOLOG)
            try:
                last = changelog.apply(c, entries, after_each=lambda e: checkpoint("sync: entry written"))
            except ValueError as exc:  # out of order, already applied
                raise StreamError(f"the primary's batch was refused: {exc}; nothing of it was applied",
                                  hint=STREAM_HINT) from None
            checkpoint("sync: batch written")
            if guard is not None:
                held.enter_context(guard())
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


class SnapshotError(StreamError):
    pass


def apply_snapshot(engine: sa.Engine, lines: Iterable[bytes], expect_site: str,
                   guard: Callable[[], ContextManager] | None = None) -> dict:
    """Replace the synced data by the primary's full copy (one transaction); returns its header. ``guard``: as
    for apply_batch (a copy that was still arriving when this appliance was promoted must not replace the new
    primary's data)."""
    header: dict | None = None
    ended = False
    tables = {t.name: t for t in synced_tables()}
    counts: dict[str, int] = {}
    with _storing("the primary's full copy"), contextlib.ExitStack() as held, engine.begin() as raw:
        c = raw.execution_options(**NOLOG)
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = parse_message(line)
            except StreamError as exc:
                raise SnapshotError(exc.message.replace("the primary sent", "the primary's full copy has"),
                                    hint=STREAM_HINT) from None
            kind = msg.get("type")
            if header is None:
                if kind != "snapshot":
                    raise SnapshotError("the primary's full copy does not start with its header; nothing was applied")
                if msg.get("site_name") != expect_site:
                    raise SnapshotError(f"the primary's copy is of site {msg.get('site_name')!r}, "
                                        f"this appliance hosts {expect_site!r}")
                header = msg
                _clear(c)
                checkpoint("sync: copy cleared")
            elif kind == "rows":
                t = tables.get(msg.get("table"))
                if t is None:
                    name = str(msg.get("table"))[:64]
                    raise SnapshotError(f"the primary's full copy names an unknown table {name!r}; nothing was applied")
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
                raise SnapshotError(f"the primary's full copy has an unknown line type {kind[:64]!r}; nothing was "
                                    f"applied")
        if header is None or not ended:
            raise SnapshotError("the primary's full copy ended early; nothing was applied")
        if c.dialect.name == "postgresql":
            changelog._reset_sequences(c)
        checkpoint("sync: copy complete")
        if guard is not None:
            held.enter_context(guard())
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
