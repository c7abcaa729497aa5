"""The site-database snapshot a backup starts from: both copy strategies give
a consistent, complete database without the rows a backup must not hold."""

import sqlite3

import pytest

from tether.backup import snapshot
from tether.core.db import make_engine, sqlite_url
from tether.site import schema


@pytest.mark.parametrize("sessions", [3, 60_000])
def test_snapshot_leaves_out_excluded_rows_and_keeps_the_rest(tmp_path, sessions):
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
