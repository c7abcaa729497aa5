"""The hello's identity check (``Directory.authenticate``, one SELECT since
PERF-08): a live identity gives its kind and name; an unknown identity or a
wrong secret is Unauthorized; a revoked identity, or one whose jump client
or jumpoint was removed, is a Conflict naming why; a jump client's identity
is not satisfied by a jumpoint of the same name, nor the reverse."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from tether.clients.directory import Directory
from tether.core.db import make_engine, sqlite_url
from tether.core.errors import Conflict, Unauthorized
from tether.site import client_tables as C
from tether.site import config_tables as T
from tether.site import schema


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = make_engine(sqlite_url(tmp_path_factory.mktemp("dir") / "site.db"))
    schema.upgrade(e, "head")
    with e.begin() as c:
        c.execute(T.jump_clients.insert().values(name="pc1", hostname="pc1", os="linux", comments="", created_at=1.0))
        c.execute(T.jumpoints.insert().values(name="jp1", description="", hostname="jp1", enabled=True,
                                              protocols=["ssh"], allowed_networks=[], max_sessions=4, created_at=1.0))
        for cid, kind, name, revoked in (("a" * 32, "jump", "pc1", None), ("b" * 32, "jumpoint", "jp1", None),
                                         ("c" * 32, "jump", "pc1", "carol"), ("d" * 32, "jump", "gone", None),
                                         ("e" * 32, "jumpoint", "pc1", None), ("f" * 32, "jump", "jp1", None)):
            c.execute(C.client_identities.insert().values(id=cid, kind=kind, name=name, secret_sha256=_sha(cid),
                                                          created_at=1.0, revoked_at=2.0 if revoked else None,
                                                          revoked_by=revoked))
    yield e
    e.dispose()


def test_live_identities(engine):
    d = Directory(engine)
    assert d.authenticate("a" * 32, "a" * 32) == ("jump", "pc1")
    assert d.authenticate("b" * 32, "b" * 32) == ("jumpoint", "jp1")


def test_unknown_or_wrong_secret(engine):
    d = Directory(engine)
    with pytest.raises(Unauthorized, match="unknown client identity or wrong secret"):
        d.authenticate("0" * 32, "0" * 32)
    with pytest.raises(Unauthorized, match="unknown client identity or wrong secret"):
        d.authenticate("a" * 32, "wrong")


def test_revoked(engine):
    with pytest.raises(Conflict, match="revoked by carol"):
        Directory(engine).authenticate("c" * 32, "c" * 32)


@pytest.mark.parametrize("cid, what", [("d" * 32, "jump 'gone'"), ("e" * 32, "jumpoint 'pc1'"),
                                       ("f" * 32, "jump 'jp1'")])
def test_item_removed_or_of_the_other_kind(engine, cid, what):
    with pytest.raises(Conflict, match=f"{what} was removed from the site"):
        Directory(engine).authenticate(cid, cid)


def test_removed_after_connecting_once(engine):
    d = Directory(engine)
    with engine.begin() as c:
        c.execute(T.jump_clients.insert().values(name="pc2", hostname="pc2", os="linux", comments="", created_at=1.0))
        c.execute(C.client_identities.insert().values(id="9" * 32, kind="jump", name="pc2",
                                                      secret_sha256=_sha("s"), created_at=1.0))
    assert d.authenticate("9" * 32, "s") == ("jump", "pc2")
    with engine.begin() as c:
        c.execute(sa.delete(T.jump_clients).where(T.jump_clients.c.name == "pc2"))
    with pytest.raises(Conflict, match="removed from the site"):
        d.authenticate("9" * 32, "s")
