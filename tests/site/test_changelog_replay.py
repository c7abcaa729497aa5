"""The change log's contract (docs/formats/changelog.md): for random
sequences of site changes made through the site's services, a copy taken
at sequence N plus the log entries after N replayed onto it gives a
byte-identical logical dump of the whole site (log included). Also: the
migrations and tables.py agree, and refused changes log nothing."""

import shutil
import sqlite3

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.core import releases
from tether.core.db import make_engine, sqlite_url
from tether.core.errors import TetherError
from tether.site import changelog, schema
from tether.site import resources as R
from tether.site import sections as S
from tether.site.history import History
from tether.site.tables import metadata, users
from tether.site.users import UserAdmin

USERS = ("u1", "u2", "u3")
NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("tpl") / "site.db"
    e = make_engine(sqlite_url(path))
    schema.upgrade(e, "head")
    with e.begin() as c:
        for u in USERS:
            c.execute(users.insert().values(username=u, display_name=u, password_hash="x", must_change_password=False,
                                            is_admin=False, permissions=[], enabled=True, created_at=1.0))
    e.dispose()
    return path


def test_tables_match_the_newest_migration(template):
    e = make_engine(sqlite_url(template))
    with e.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), metadata) == []
    assert schema.head_revision() == releases.current().schema_revision
    e.dispose()


ops = st.one_of(
    st.tuples(st.just("team.create"), st.sampled_from(NAMES), st.text(max_size=8),
              st.lists(st.sampled_from(USERS), unique=True, max_size=3)),
    st.tuples(st.just("team.update"), st.sampled_from(NAMES), st.text(max_size=8),
              st.lists(st.sampled_from(USERS), unique=True, max_size=3)),
    st.tuples(st.just("team.delete"), st.sampled_from(NAMES)),
    st.tuples(st.just("jumpoint.create"), st.sampled_from(NAMES), st.integers(1, 99)),
    st.tuples(st.just("jumpoint.delete"), st.sampled_from(NAMES)),
    st.tuples(st.just("provider.create"), st.sampled_from(NAMES), st.binary(min_size=3, max_size=40)),
    st.tuples(st.just("policy.create"), st.sampled_from(NAMES), st.sampled_from(USERS), st.sampled_from(NAMES)),
    st.tuples(st.just("policy.delete"), st.sampled_from(NAMES)),
    st.tuples(st.just("user.update"), st.sampled_from(USERS), st.booleans(),
              st.lists(st.sampled_from(NAMES), unique=True, max_size=2)),
    st.tuples(st.just("settings"), st.integers(1, 300)),
    st.tuples(st.just("session"), st.sampled_from(USERS), st.booleans()),
)


def _apply(engine, op) -> None:
    store, hist = R.ConfigStore(engine), History(engine)
    kind, *a = op
    try:
        if kind == "team.create":
            store.create(R.KINDS["teams"], {"name": a[0], "description": a[1],
                                            "members": [{"username": u} for u in a[2]]})
        elif kind == "team.update":
            store.update(R.KINDS["teams"], a[0], {"description": a[1], "members": [{"username": u} for u in a[2]]})
        elif kind in ("team.delete", "jumpoint.delete", "policy.delete"):
            slug = {"team": "teams", "jumpoint": "jumpoints", "policy": "group-policies"}[kind.split(".")[0]]
            store.delete(R.KINDS[slug], a[0])
        elif kind == "jumpoint.create":
            store.create(R.KINDS["jumpoints"], {"name": a[0], "hostname": "jp.example", "max_sessions": a[1]})
        elif kind == "provider.create":
            import base64

            store.create(R.KINDS["security-providers"], {"name": a[0], "kind": "kerberos", "realm": "EX.COM",
                                                         "keytab": base64.b64encode(a[1]).decode()})
        elif kind == "policy.create":
            store.create(R.KINDS["group-policies"], {"name": a[0], "members": [
                {"kind": "user", "username": a[1]}, {"kind": "team", "team": a[2]}]})
        elif kind == "user.update":
            UserAdmin(engine).update(a[0], {"display_name": a[0].upper(), "enabled": a[1], "teams": a[2]}, "admin")
        elif kind == "settings":
            S.put(engine, S.SECTIONS["jump-clients"], {"connection_rate_per_second": a[0]})
        elif kind == "session":
            s = hist.start_session({"rep": a[0]})
            if a[1]:
                hist.end_session(s["lsid"])
    except TetherError:
        pass  # refused: must have written nothing (the dumps below would differ otherwise)


def _dump(engine) -> bytes:
    with engine.connect() as c:
        return b"".join(changelog.dump(c))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.lists(ops, max_size=12), after=st.lists(ops, min_size=1, max_size=15))
def test_replaying_the_log_from_n_onto_a_copy_at_n_gives_an_identical_site(template, tmp_path, before, after):
    src_path, copy_path = tmp_path / "primary.db", tmp_path / "copy.db"
    for p in (src_path, copy_path):
        p.unlink(missing_ok=True)
    shutil.copy(template, src_path)
    primary = make_engine(sqlite_url(src_path))
    changelog.install(primary)
    try:
        for op in before:
            _apply(primary, op)
        with primary.connect() as c:
            n = changelog.last_seq(c)
        src, dst = sqlite3.connect(src_path), sqlite3.connect(copy_path)
        src.backup(dst)  # a consistent copy taken at N
        src.close()
        dst.close()
        for op in after:
            _apply(primary, op)
        copy = make_engine(sqlite_url(copy_path))
        try:
            with primary.connect() as c:
                entries = changelog.entries_after(c, n, limit=100_000)
            with copy.begin() as c:
                changelog.apply(c, entries)
            assert _dump(copy) == _dump(primary)
        finally:
            copy.dispose()
    finally:
        primary.dispose()


def test_replay_refuses_entries_out_of_order(template, tmp_path):
    e = make_engine(sqlite_url(shutil.copy(template, tmp_path / "x.db")))
    try:
        with pytest.raises(ValueError, match="out of order"), e.begin() as c:
            changelog.apply(c, [{"seq": 2, "at": 0, "tbl": "teams", "op": "delete", "key": {"name": "a"}, "row": None},
                                {"seq": 1, "at": 0, "tbl": "teams", "op": "delete", "key": {"name": "a"}, "row": None}])
        with e.connect() as c:
            assert c.execute(sa.select(sa.func.count()).select_from(metadata.tables["change_log"])).scalar() == 0
    finally:
        e.dispose()
