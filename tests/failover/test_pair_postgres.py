"""FO-02, FO-03, OPS-03: a pair across databases: the primary's site on
SQLite, the backup's on a real PostgreSQL server. The full copy, the
continuous stream and a planned swap (the PostgreSQL appliance becomes the
primary, the SQLite one follows it) all work whatever the database."""

from __future__ import annotations

import json

import pytest

from tests.helpers import first_admin_login, first_site_login, ok, wait_for
from tests.site.pg import PgServer

from .pairs import PSK, cli, peer_addr, set_psk, status


@pytest.fixture
def pg():
    server = PgServer.start()
    yield server
    server.stop()


def users(c, sh) -> set[str]:
    return {u["username"] for u in ok(c.get("/api/users", headers=sh))}


@pytest.mark.req("FO-02", "FO-03", "OPS-03")
def test_a_sqlite_primary_with_a_postgresql_backup(make_appliance, pg):
    p = make_appliance(site=True, listen=["127.0.0.3:0"])
    b = make_appliance(site=True, listen=["127.0.0.2:0"], init_args=("--site-db-url", pg.new_database()))
    pc, bc = p.client(), b.client()
    try:
        first_admin_login(pc), first_admin_login(bc)
        psh, bsh = first_site_login(pc), first_site_login(bc)
        set_psk(pc, psh, PSK)
        set_psk(bc, bsh, PSK)
        ok(pc.post("/api/users", headers=psh, json={"username": "before", "password": "Before-pass-123"}), 201)
        ok(pc.post("/api/config/teams", headers=psh, json={"name": "ops"}), 201)
        cli(p, "establish", "--peer", peer_addr(b))
        wait_for(lambda: "before" in users(bc, bsh), 30, what="the full copy on PostgreSQL")
        ok(pc.post("/api/users", headers=psh, json={"username": "streamed", "password": "Streamed-pass-1"}), 201)
        wait_for(lambda: "streamed" in users(bc, bsh), 15, what="the stream applied on PostgreSQL")
        assert status(bc, bsh)["sync"]["full_syncs"] == 1
        assert any(t["name"] == "ops" for t in ok(bc.get("/api/config/teams", headers=bsh)))

        # the PostgreSQL appliance takes over; its sequences were moved past the copied ids
        s = json.loads(cli(b, "become-primary", "--data-sync-first", "--json").stdout)
        assert s["role"] == "primary"
        ok(bc.post("/api/users", headers=bsh, json={"username": "on-pg", "password": "On-pg-pass-1234"}), 201)
        wait_for(lambda: "on-pg" in users(pc, psh), 20, what="the SQLite appliance following PostgreSQL")
        assert users(pc, psh) == users(bc, bsh)
    finally:
        pc.close()
        bc.close()
