"""Fixtures for the site tests: the site database backend (SQLite by default;
``TETHER_TEST_DB=postgresql`` starts a real PostgreSQL server from Debian's
package and gives every appliance its own empty database), and one shared
appliance per session and edition (starting one costs seconds; tests use distinct names), Remote Support or
Privileged Remote Access, with both first logins done.

With ``TETHER_TEST_DB=postgresql`` only tests marked ``pg`` run (a small
subset, so CI stays fast), here and in tests/backup (which shares these
fixtures); they run unchanged against both backends."""

from __future__ import annotations

import itertools
import os

import pytest

from tests.helpers import ApplianceProc, first_admin_login, first_site_login, run_cli
from tests.site.pg import PgServer

BACKEND = os.environ.get("TETHER_TEST_DB", "sqlite")
_counter = itertools.count()
PG_DIRS = ("tests/site/", "tests/backup/")  # the directories whose `pg` tests make the PostgreSQL pass


def pytest_configure(config):
    config.addinivalue_line("markers", "pg: also run against PostgreSQL (TETHER_TEST_DB=postgresql)")
    config.addinivalue_line("markers", "pg_only: needs PostgreSQL whatever the backend: run in the PostgreSQL "
                                       "pass only (tests/backup/test_pg_sites.py)")


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    if BACKEND != "postgresql":
        for item in items:
            (drop if item.get_closest_marker("pg_only") else keep).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        return
    for item in items:
        in_pass = any(d in item.nodeid.replace("\\", "/") for d in PG_DIRS)
        (keep if not in_pass or item.get_closest_marker("pg") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def site_db():
    """None for SQLite; else a running PostgreSQL server (``.new_database()`` gives a URL)."""
    if BACKEND == "sqlite":
        yield None
        return
    if BACKEND != "postgresql":
        raise pytest.UsageError(f"TETHER_TEST_DB={BACKEND!r}: use sqlite or postgresql")
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_appliance(make_appliance, site_db):
    """The shared factory, with the site database on the selected backend."""
    def make(**kw):
        if site_db is not None:
            kw["init_args"] = (*kw.get("init_args", ()), "--site-db-url", site_db.new_database())
        return make_appliance(**kw)
    return make


class SiteEnv:
    def __init__(self, proc: ApplianceProc):
        self.proc = proc
        self.c = proc.client()
        self.ah = first_admin_login(self.c)
        self.sh = first_site_login(self.c)

    def close(self):
        self.c.close()
        self.proc.stop()


def _start(tmp_path_factory, vendor, site_db, edition: str) -> SiteEnv:
    data = tmp_path_factory.mktemp("site") / f"appliance{next(_counter)}"
    init = ["init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"])]
    if site_db is not None:
        init += ["--site-db-url", site_db.new_database()]
    run_cli(*init, check=True)
    run_cli("site-package", "install", str(vendor["package"]("demo", edition)), "--data", str(data), check=True)
    return SiteEnv(ApplianceProc(data, ["127.0.0.1:0"]).start())


@pytest.fixture(scope="session")
def rs_site(tmp_path_factory, vendor, site_db):
    env = _start(tmp_path_factory, vendor, site_db, "remote-support")
    yield env
    env.close()


@pytest.fixture(scope="session")
def pra_site(tmp_path_factory, vendor, site_db):
    env = _start(tmp_path_factory, vendor, site_db, "privileged-remote-access")
    yield env
    env.close()


@pytest.fixture(scope="session")
def pg_server(site_db):
    """A PostgreSQL server whatever the backend (the one of TETHER_TEST_DB=postgresql, else a new one)."""
    if site_db is not None:
        yield site_db
        return
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()
