"""Login sessions (tether.core.sessions) end at their lifetime, read
through the clock seam, and expired rows are purged."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tether.core import clock
from tether.core.db import make_engine, sessions_table, sqlite_url
from tether.core.sessions import SessionStore
from tests.helpers import ClockFile


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(clock.ENV_CLOCK_FILE, str(tmp_path / "offset"))
    md = sa.MetaData()
    table = sessions_table(md)
    engine = make_engine(sqlite_url(tmp_path / "s.db"))
    md.create_all(engine)
    yield SessionStore(engine, table, ttl=600)
    engine.dispose()


def test_a_session_lasts_its_ttl_then_is_gone(store, tmp_path):
    offset = ClockFile(tmp_path / "offset")
    token, s = store.create("alice", "192.0.2.1")
    assert store.get(token) == s and s.username == "alice"
    offset.advance(590)
    assert store.get(token) == s
    offset.advance(20)
    assert store.get(token) is None
    other, _ = store.create("bob", None)  # creating a session purges the expired ones
    with store.engine.connect() as c:
        assert [r.username for r in c.execute(sa.select(store.table))] == ["bob"]
    assert store.get(other) is not None and store.get(None) is None and store.get("forged") is None
