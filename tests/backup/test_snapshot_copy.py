"""The site-database snapshot a backup starts from (backup/snapshot.py): a
consistent, complete database without the rows a backup must not hold."""

import sqlite3

import pytest

from tether.backup import snapshot
from tether.core.db import make_engine, sqlite_url
from tether.site import schema
from tether.site.tables import metadata


@pytest.fixture(params=["rows", "pages"])
def copy(request, monkeypatch):
    """Each test runs with both copies (snapshot.py chooses one by the share left out)."""
    monkeypatch.setattr(snapshot, "ROWS_FROM", 0.0 if request.param == "rows" else float("inf"))
    return request.param


@pytest.mark.parametrize("sessions", [3, 60_000])
def test_snapshot_leaves_out_excluded_rows_and_keeps_the_rest(tmp_path, sessions, copy):
    db = tmp_path / "site.db"
    engine = make_engine(sqlite_url(db))
    schema.upgrade(engine, "head")
    engine.dispose()
    con = sqlite3.connect(db)
    con.executemany("INSERT INTO sessions VALUES (?, 'admin', 'Zq9-unique-csrf-value', 0, 9e9, '127.0.0.1')",
                    [(f"{i:064x}",) for i in range(sessions)])
    con.executemany("INSERT INTO users (username, display_name, password_hash, must_change_password, is_admin, "
                    "permissions, enabled, created_at) VALUES (?, ?, 'h', 0, 0, '[]', 1, 0)",
                    [(f"user{i}", f"User {i}") for i in range(500)])
    con.commit()
    indexes = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'"))
    con.close()
    engine = make_engine(sqlite_url(db))
    out = tmp_path / "snap.db"
    counts = snapshot.take(engine, out, include_history=True)
    engine.dispose()
    assert counts["sessions"] == 0 and counts["users"] == 500
    con = sqlite3.connect(out)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")) == indexes
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == schema.head_revision()
    con.close()
    assert b"Zq9-unique-csrf-value" not in out.read_bytes()  # wiped, not just unlinked from the b-tree


def _site_db(tmp_path):
    db = tmp_path / "site.db"
    engine = make_engine(sqlite_url(db))
    schema.upgrade(engine, "head")
    engine.dispose()
    return db


def _record(con, i):
    """One session and its event, in one transaction (what the appliance writes together)."""
    with con:
        cur = con.execute("INSERT INTO session_records (lsid, kind, rep, customer_name, customer_host, started_at) "
                          "VALUES (?, 'support', 'alice', 'c', 'h', ?)", (f"lsid-{i}", float(i)))
        con.execute("INSERT INTO session_events (session_id, at, type, actor, data) VALUES (?, ?, 'start', 'alice', "
                    "'{}')", (cur.lastrowid, float(i)))


def test_snapshot_is_one_consistent_view_while_the_site_writes(tmp_path, copy):
    """Every table is copied from one read transaction: a session and its event, committed together
    while the snapshot runs, are both in it or both not."""
    import threading

    db = _site_db(tmp_path)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.isolation_level = ""
    for i in range(0, 50_000, 5000):
        _record(con, i)
    with con:
        con.executemany("INSERT INTO session_records (lsid, kind, rep, customer_name, customer_host, started_at) "
                        "VALUES (?, 'support', 'alice', 'c', 'h', 0)", [(f"bulk-{i}",) for i in range(150_000)])
        con.execute("INSERT INTO session_events (session_id, at, type, actor, data) "
                    "SELECT id, 0, 'start', 'alice', '{}' FROM session_records WHERE lsid LIKE 'bulk-%'")
    stop, wrote = threading.Event(), []

    def writer():
        w = sqlite3.connect(db, timeout=30)
        i = 10**6
        while not stop.is_set():
            _record(w, i)
            wrote.append(i)
            i += 1
        w.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        while len(wrote) < 20:  # the writer is going before the snapshot starts
            pass
        before = len(wrote)
        engine = make_engine(sqlite_url(db))
        counts = snapshot.take(engine, tmp_path / "snap.db", include_history=True)
        engine.dispose()
        during = len(wrote) - before
    finally:
        stop.set()
        t.join()
    assert during > 0, "the writer committed nothing while the snapshot ran: the test proves nothing"
    snap = sqlite3.connect(tmp_path / "snap.db")
    sessions, events = (snap.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                        for t in ("session_records", "session_events"))
    assert sessions == events == counts["session_records"] == counts["session_events"]
    assert snap.execute("SELECT count(*) FROM session_events e LEFT JOIN session_records r "
                        "ON r.id = e.session_id WHERE r.id IS NULL").fetchone()[0] == 0
    assert snap.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_snapshot_keeps_schema_counters_and_marks(tmp_path, copy):
    """The same tables, indexes and SQL as the live database, the AUTOINCREMENT high-water marks
    (a restored site does not reuse an id) and the header's user_version and page size."""
    db = _site_db(tmp_path)
    con = sqlite3.connect(db)
    for i in range(3):
        _record(con, i)
    with con:
        con.executemany("INSERT INTO change_log (at, tbl, op, key, row) VALUES (0, 'users', 'insert', ?, '{}')",
                        [(f'{{"id": {i}}}',) for i in range(3)])
        con.execute("DELETE FROM change_log WHERE seq = 3")
        con.execute("PRAGMA user_version = 7")
    live_schema = sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
                         key=lambda r: (r[0], r[1]))
    live_seq = dict(con.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    con.close()
    engine = make_engine(sqlite_url(db))
    counts = snapshot.take(engine, tmp_path / "snap.db", include_history=False)
    engine.dispose()
    snap = sqlite3.connect(tmp_path / "snap.db")
    assert sorted(snap.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
                  key=lambda r: (r[0], r[1])) == live_schema
    assert dict(snap.execute("SELECT name, seq FROM sqlite_sequence").fetchall()) == live_seq
    assert live_seq["change_log"] == 3
    assert counts["session_records"] == counts["change_log"] == 0  # left out: present, empty
    assert snap.execute("PRAGMA user_version").fetchone()[0] == 7
    assert snap.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert b"lsid-1" not in (tmp_path / "snap.db").read_bytes()


def test_the_copy_is_chosen_by_the_share_left_out(tmp_path):
    """A long change log (most of the file) makes the row copy the cheaper one; a site whose
    rows are all kept (e.g. just restored: its change log starts empty) gets the page copy."""
    db = _site_db(tmp_path)
    con = sqlite3.connect(db)
    with con:
        con.executemany("INSERT INTO users (username, display_name, password_hash, must_change_password, is_admin, "
                        "permissions, enabled, created_at) VALUES (?, ?, 'h', 0, 0, '[]', 1, 0)",
                        [(f"user{i}", f"User {i}") for i in range(2000)])
    kept_only = snapshot.left_out_share(str(db), snapshot.excluded_tables(metadata, True))
    with con:
        con.executemany("INSERT INTO change_log (at, tbl, op, key, row) VALUES (0, 'users', 'update', ?, ?)",
                        [(f'{{"id": {i}}}', '{"display_name": "' + "x" * 300 + '"}') for i in range(20_000)])
    con.close()
    long_log = snapshot.left_out_share(str(db), snapshot.excluded_tables(metadata, True))
    assert kept_only < 0.05 < snapshot.ROWS_FROM < long_log < 1.0
