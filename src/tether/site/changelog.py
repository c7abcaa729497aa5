"""The site's change log (docs/formats/changelog.md): every insert, update
and delete of a site-data table is recorded as an ordered entry
``(seq, at, tbl, op, key, row, gen, fence)`` in the same transaction as the change.

Capture is done once, for every writer, by SQLAlchemy connection events on
the site engine (``install``): an UPDATE or DELETE first selects the primary
keys it will touch; after the statement the touched rows are read back and
logged as ``upsert`` (the whole new row) or ``delete`` (a tombstone with the
key). Writes must therefore go through SQLAlchemy Core statements (never raw
SQL text) and SHOULD address rows by primary or unique key.

Each entry is stamped with the role generation and the witness's fencing
token it was written under (``gen``, ``fence``): the write fence returns them
and the commit is refused if they changed while the transaction was open.

``apply`` replays entries onto a copy (failover sync, incremental restore):
replaying every entry after N onto a copy taken at N gives an identical site,
checked by ``dump`` (a canonical, byte-comparable logical dump).

Tables that are local to one appliance are never logged: login sessions,
API tokens, the event delivery queue, sync state and the log itself
(``LOCAL_TABLES``, defined once in site/locality.py).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Callable, Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.sql.dml import Delete, Insert, Update

from pydantic import BaseModel

from tether.core.errors import NotPrimary
from tether.core.shapes import of_table

from .history_tables import change_log
from .locality import LOCAL_TABLES as _LOCAL
from .tables import metadata

ChangeEntry = of_table(change_log, "ChangeEntry")  # one entry as ``entries_after`` reads it


class Changes(BaseModel):
    """A page of the change log after a sequence number (docs/formats/changelog.md)."""
    format: int
    last_seq: int
    entries: list[ChangeEntry]  # type: ignore[valid-type]


class Reapplied(BaseModel):
    """What ``reapply`` did: how many entries it applied, the sequence numbers of those it skipped."""
    applied: int
    skipped: list[int | None]

FORMAT_VERSION = 2
LOCAL_TABLES = frozenset(_LOCAL)
NOLOG = "tether_nolog"  # execution option: do not capture (replay, migrations)
_PENDING = "tether_changelog_pending"
_WROTE = "tether_changelog_wrote"  # the stamp this transaction's entries carry: its commit is fenced too
Stamp = tuple[int, "int | None"]  # (role generation, witness fencing token or None), from the write fence
NO_STAMP: Stamp = (0, None)
_PG_LOCK = 0x7E7E_0C1A  # advisory lock serialising site writers on PostgreSQL (commit order == seq order)


def logged_tables() -> list[sa.Table]:
    return [t for t in metadata.sorted_tables if t.name not in LOCAL_TABLES]


def _logged(table) -> bool:
    return isinstance(table, sa.Table) and table.name not in LOCAL_TABLES and table.metadata is metadata


# --- value encoding: JSON, typed by column ------------------------------------------
def encode_row(table: sa.Table, row) -> dict:
    out = {}
    for col in table.columns:
        v = row[col.name]
        if v is not None and isinstance(col.type, sa.LargeBinary):
            v = base64.b64encode(bytes(v)).decode()
        elif isinstance(v, bool) or v is None:
            pass
        elif isinstance(col.type, sa.Boolean):
            v = bool(v)
        out[col.name] = v
    return out


def decode_row(table: sa.Table, data: dict) -> dict:
    out = {}
    for name, v in data.items():
        col = table.c[name]
        if v is not None and isinstance(col.type, sa.LargeBinary):
            v = base64.b64decode(v)
        out[name] = v
    return out


def _key(table: sa.Table, row) -> dict:
    return {c.name: row[c.name] for c in table.primary_key.columns}


def _where_key(table: sa.Table, key: dict):
    return sa.and_(*[table.c[k] == v for k, v in key.items()])


# --- capture ---------------------------------------------------------------------------
def install(engine: sa.Engine, fence: Callable[[], Stamp] | None = None) -> None:
    """Capture every change to a logged table made through ``engine``. ``fence`` (the
    runtime's write fence) is called before each captured write and raises to refuse it,
    e.g. ``NotPrimary`` on a backup appliance; replay (``NOLOG``) is never fenced. It
    returns the stamp (generation, fencing token) the entries carry. It is called again
    just before the commit of a transaction that captured a change: a primary whose
    witness lease ran out, or whose generation or token changed, while the transaction
    was open (FO-08, FO-11) rolls it back instead of committing it."""
    pg = engine.dialect.name == "postgresql"
    has_log = [False]  # a site still at an older schema (before its update migrates it) has no log yet

    def _active(conn) -> bool:
        if not has_log[0]:
            has_log[0] = sa.inspect(conn).has_table("change_log")
        return has_log[0]

    @event.listens_for(engine, "before_execute")
    def _before(conn, clause, multiparams, params, options):
        if options.get(NOLOG) or conn.get_execution_options().get(NOLOG):
            return
        if not isinstance(clause, (Insert, Update, Delete)) or not _logged(clause.table) or not _active(conn):
            return
        stamp = _stamp(fence)
        held = conn.info.get(_WROTE)
        if held is not None and held != stamp:
            raise NotPrimary(_CHANGED.format(held=held, now=stamp))
        if pg:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        keys = None
        if isinstance(clause, (Update, Delete)):
            if multiparams:
                raise NotImplementedError("executemany UPDATE/DELETE on a logged table is not captured")
            t = clause.table
            changed = {getattr(c, "name", c) for c in (getattr(clause, "_values", None) or {})}
            if isinstance(clause, Update) and changed & {c.name for c in t.primary_key.columns}:
                raise NotImplementedError(f"changing the primary key of {t.name} is not supported")
            q = sa.select(*t.primary_key.columns)
            if clause.whereclause is not None:
                q = q.where(clause.whereclause)
            keys = [dict(r._mapping) for r in conn.execute(q, execution_options={NOLOG: True})]
        conn.info.setdefault(_PENDING, []).append((keys, stamp))

    @event.listens_for(engine, "after_execute")
    def _after(conn, clause, multiparams, params, options, result):
        if options.get(NOLOG) or conn.get_execution_options().get(NOLOG):
            return
        if not isinstance(clause, (Insert, Update, Delete)) or not _logged(clause.table) or not has_log[0]:
            return
        pending = conn.info.get(_PENDING)
        if not pending:
            return
        keys, (gen, token) = pending.pop()
        t = clause.table
        now = time.time()
        entries: list[dict] = []
        if isinstance(clause, Delete):
            entries = [{"at": now, "tbl": t.name, "op": "delete", "key": k, "row": None} for k in keys]
        elif isinstance(clause, Update):
            entries = [_upsert(conn, t, k, now) for k in keys]
        else:
            rows = multiparams[0] if multiparams and isinstance(multiparams[0], list) else multiparams
            if rows and len(rows) > 1:
                names = {c.name for c in t.columns}
                for r in rows:
                    if names <= set(r):
                        entries.append({"at": now, "tbl": t.name, "op": "upsert", "key": _key(t, r),
                                        "row": encode_row(t, r)})
                    else:
                        pk = [c.name for c in t.primary_key.columns]
                        if not set(pk) <= set(r):
                            raise NotImplementedError(f"bulk insert into {t.name} must give every primary key")
                        entries.append(_upsert(conn, t, {k: r[k] for k in pk}, now))
            else:
                pk = result.inserted_primary_key
                entries.append(_upsert(conn, t, dict(zip([c.name for c in t.primary_key.columns], pk)), now))
        entries = [{**e, "gen": gen, "fence": token} for e in entries if e is not None]
        if entries:
            conn.execute(change_log.insert(), entries, execution_options={NOLOG: True})
            conn.info[_WROTE] = (gen, token)

    if fence is not None:
        @event.listens_for(engine, "commit")
        def _commit(conn):
            held = conn.info.pop(_WROTE, None)
            if held is not None:
                now = _stamp(fence)  # raising here rolls the transaction back
                if now != held:
                    raise NotPrimary(_CHANGED.format(held=held, now=now))

        @event.listens_for(engine, "rollback")
        def _rollback(conn):
            conn.info.pop(_WROTE, None)


_CHANGED = ("the appliance's role changed while this change was being made (generation and fencing token "
            "{held} then {now}); nothing of it was saved")


def _stamp(fence: Callable[[], Stamp] | None) -> Stamp:
    stamp = fence() if fence is not None else None
    return tuple(stamp) if stamp is not None else NO_STAMP


def _upsert(conn, t: sa.Table, key: dict, now: float) -> dict | None:
    row = conn.execute(sa.select(t).where(_where_key(t, key)), execution_options={NOLOG: True}).mappings().first()
    if row is None:
        return None
    return {"at": now, "tbl": t.name, "op": "upsert", "key": key, "row": encode_row(t, row)}


# --- reading and replaying ------------------------------------------------------------------
def last_seq(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.coalesce(sa.func.max(change_log.c.seq), 0))).scalar_one()


def last_stamp(conn: sa.Connection) -> Stamp:
    """The generation of this copy's last entry and the highest fencing token written under it."""
    gen = conn.execute(sa.select(change_log.c.gen).order_by(change_log.c.seq.desc()).limit(1)).scalar()
    if gen is None:
        return NO_STAMP
    token = conn.execute(sa.select(sa.func.max(change_log.c.fence)).where(change_log.c.gen == gen)).scalar()
    return gen, token


def entries_after(conn: sa.Connection, seq: int, limit: int = 10_000) -> list[dict]:
    q = sa.select(change_log).where(change_log.c.seq > seq).order_by(change_log.c.seq).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def apply(conn: sa.Connection, entries: Iterable[dict], after_each: Callable[[dict], None] | None = None) -> int:
    """Replay entries (in ``seq`` order) onto this copy, in the caller's
    transaction; the entries are appended to this copy's log verbatim.
    ``after_each(entry)`` is called once each entry is written (crash points).
    Returns the last sequence number applied."""
    nolog = {NOLOG: True}
    entries = [{**e, "gen": e.get("gen", 0), "fence": e.get("fence")} for e in entries]
    last = last_seq(conn)
    gen, token = last_stamp(conn)
    for e in entries:  # check the whole batch before writing anything
        if e["seq"] <= last:
            raise ValueError(f"change log entries out of order (or already applied) at seq {e['seq']}")
        if e["tbl"] not in metadata.tables or e["tbl"] in LOCAL_TABLES:
            raise ValueError(f"change log entry {e['seq']} names an unknown table {e['tbl']!r}")
        if e["gen"] < gen or (e["gen"] == gen and e["fence"] is not None and token is not None
                              and e["fence"] < token):
            raise ValueError(f"change log entry {e['seq']} was written under generation {e['gen']} and fencing "
                             f"token {e['fence']}, older than the {gen} and {token} before it: it comes from a "
                             f"fenced-off primary")
        if e["gen"] > gen:
            gen, token = e["gen"], None
        if e["fence"] is not None:
            token = max(token or 0, e["fence"])
        last = e["seq"]
    for e in entries:
        if e["op"] == "skip":  # a position only: the change is not for this copy (failover sync, FO-03)
            conn.execute(change_log.insert().values(**e), execution_options=nolog)
            if after_each is not None:
                after_each(e)
            continue
        t = metadata.tables[e["tbl"]]
        where = _where_key(t, e["key"])
        if e["op"] == "delete":
            conn.execute(t.delete().where(where), execution_options=nolog)
        elif e["op"] == "upsert":
            row = decode_row(t, e["row"])
            if conn.execute(t.update().where(where).values(**row), execution_options=nolog).rowcount == 0:
                conn.execute(t.insert().values(**row), execution_options=nolog)
        else:
            raise ValueError(f"unknown change log operation {e['op']!r} at seq {e['seq']}")
        conn.execute(change_log.insert().values(**e), execution_options=nolog)
        if after_each is not None:
            after_each(e)
    if conn.dialect.name == "postgresql":
        _reset_sequences(conn)
    return last


def reapply(conn: sa.Connection, entries: Iterable[dict]) -> dict:
    """Make ``entries`` (from another copy, e.g. an orphan file) new changes of this site: written
    through the normal, captured path, so they are logged and synced like any other.

    Rows keyed by name are updated or inserted by that key. Rows with a generated integer key (users,
    history) may collide with rows this copy made meanwhile under the same number: such a row is
    inserted under a new number unless an identical row is already there, and a delete of one is
    skipped (it could remove another row). Returns ``{"applied": n, "skipped": [seq, ...]}``."""
    applied, skipped = 0, []
    for e in entries:
        if e.get("op") not in ("upsert", "delete") or e.get("tbl") not in metadata.tables or e["tbl"] in LOCAL_TABLES:
            raise ValueError(f"entry {e.get('seq')}: not a change of a site table")
        t = metadata.tables[e["tbl"]]
        pk = list(t.primary_key.columns)
        generated = len(pk) == 1 and isinstance(pk[0].type, sa.Integer)
        where = _where_key(t, e["key"])
        if e["op"] == "delete":
            if generated:
                skipped.append(e.get("seq"))
                continue
            conn.execute(t.delete().where(where))
        else:
            row = decode_row(t, e["row"])
            if generated:
                there = conn.execute(sa.select(t).where(where)).mappings().first()
                if there is None:
                    conn.execute(t.insert().values(**row))
                elif encode_row(t, there) == e["row"]:
                    skipped.append(e.get("seq"))
                    continue
                else:
                    conn.execute(t.insert().values(**{k: v for k, v in row.items() if k != pk[0].name}))
            else:
                values = {k: v for k, v in row.items() if k not in {c.name for c in pk}}
                if not values or conn.execute(t.update().where(where).values(**values)).rowcount == 0:
                    if conn.execute(sa.select(*pk).where(where)).first() is None:
                        conn.execute(t.insert().values(**row))
        applied += 1
    return {"applied": applied, "skipped": skipped}


def _reset_sequences(conn: sa.Connection) -> None:
    for t in metadata.sorted_tables:
        pk = list(t.primary_key.columns)
        if len(pk) == 1 and isinstance(pk[0].type, sa.Integer):
            col = pk[0].name
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{t.name}', '{col}'), "
                                 f"COALESCE((SELECT MAX({col}) FROM {t.name}), 0) + 1, false)"),
                         execution_options={NOLOG: True})


def dump(conn: sa.Connection, include_log: bool = True) -> Iterator[bytes]:
    """A canonical logical dump: one JSON line per row, tables by name, rows by key."""
    tables = sorted(logged_tables() + ([change_log] if include_log else []), key=lambda t: t.name)
    for t in tables:
        yield json.dumps({"table": t.name}).encode() + b"\n"
        for row in conn.execute(sa.select(t).order_by(*t.primary_key.columns)).mappings():
            yield json.dumps(encode_row(t, row), sort_keys=True, separators=(",", ":")).encode() + b"\n"
