"""The hub's last-seen writes (``Directory.seen_many``): reconnections that
report what is already recorded, and disconnections, are written with the
others of the same second in one UPDATE (PERF-08); a client reporting
something new is written alone, at its own time; every touched row is in
the site's change log (what a failover backup replays), and jumpoints and
removed jump clients are left alone."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.sql.dml import Update

from tether.clients.directory import Directory
from tether.core.db import make_engine, sqlite_url
from tether.site import changelog, schema
from tether.site import config_tables as T
from tether.site.history_tables import change_log


@pytest.fixture
def engine(tmp_path):
    e = make_engine(sqlite_url(tmp_path / "site.db"))
    schema.upgrade(e, "head")
    changelog.install(e)
    with e.begin() as c:
        c.execute(T.jump_clients.insert(), [dict(name=f"pc{i}", hostname=f"pc{i}", os="linux",
                                                 public_ip=f"10.0.0.{i}", comments="", last_seen_at=5.0,
                                                 created_at=1.0) for i in range(10)])
    yield e
    e.dispose()


def updates_of_jump_clients(engine) -> list:
    seen = []

    @event.listens_for(engine, "before_execute")
    def count(conn, clause, multiparams, params, options):
        if isinstance(clause, Update) and clause.table.name == "jump_clients":
            seen.append(clause)
    return seen


def test_reconnections_of_one_second_in_one_statement(engine):
    updates = updates_of_jump_clients(engine)
    with engine.connect() as c:
        log_before = c.execute(sa.select(sa.func.count()).select_from(change_log)).scalar()
    seen = {("jump", f"pc{i}"): (1000.1 + i / 10, f"pc{i}", "linux", f"10.0.0.{i}") for i in range(6)}
    seen[("jump", "pc6")] = (1000.7, "pc6-renamed", "windows", "10.0.0.6")
    seen[("jump", "pc7")] = (1001.5, None, None, None)  # a disconnection
    seen[("jump", "missing")] = (1000.2, "missing", "linux", None)
    seen[("jumpoint", "pc8")] = (1000.3, None, None, None)
    Directory(engine).seen_many(seen)
    assert len(updates) == 3  # pc0-pc5 together, pc6 alone, pc7 in its own second
    with engine.connect() as c:
        rows = {r.name: r for r in c.execute(sa.select(T.jump_clients))}
        logged = [r.key["name"] for r in c.execute(sa.select(change_log.c.key).where(
            change_log.c.seq > log_before, change_log.c.tbl == "jump_clients"))]
    for i in range(6):
        assert rows[f"pc{i}"].last_seen_at == pytest.approx(1000.1)
        assert (rows[f"pc{i}"].hostname, rows[f"pc{i}"].public_ip) == (f"pc{i}", f"10.0.0.{i}")
    assert (rows["pc6"].last_seen_at, rows["pc6"].hostname, rows["pc6"].os) == (1000.7, "pc6-renamed", "windows")
    assert rows["pc7"].last_seen_at == 1001.5 and rows["pc7"].hostname == "pc7"
    assert rows["pc8"].last_seen_at == 5.0 and rows["pc9"].last_seen_at == 5.0
    assert sorted(logged) == [f"pc{i}" for i in range(8)]


def test_many_names_in_batches(engine):
    with engine.begin() as c:
        c.execute(T.jump_clients.insert(), [dict(name=f"bulk{i}", hostname=f"bulk{i}", os="linux", comments="",
                                                 created_at=1.0) for i in range(1200)])
    updates = updates_of_jump_clients(engine)
    Directory(engine).seen_many({("jump", f"bulk{i}"): (2000.5, None, None, None) for i in range(1200)})
    assert len(updates) == 3  # 500 names an IN list
    with engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(T.jump_clients)
                         .where(T.jump_clients.c.last_seen_at == 2000.5)).scalar() == 1200
