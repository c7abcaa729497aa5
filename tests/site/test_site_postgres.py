"""OPS-03: the site database is SQLite by default and PostgreSQL when the
appliance is initialised with ``--site-db-url``: the site is installed into
the PostgreSQL database (no site.db file), served from it, and survives a
restart. (The whole ``pg``-marked subset also runs against PostgreSQL with
TETHER_TEST_DB=postgresql.)"""

import json

import psycopg
import pytest

from tether.core import releases
from tests.helpers import ApplianceProc, first_admin_login, first_site_login, run_cli


@pytest.mark.pg
@pytest.mark.req("OPS-03")
def test_site_database_on_postgresql(tmp_path, vendor, pg_server):
    url = pg_server.new_database()
    data = tmp_path / "pg-appliance"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), "--site-db-url", url, check=True)
    assert url.split("@")[0] not in (data / "appliance.db").read_bytes().decode("latin-1")  # sealed at rest
    r = run_cli("init", "--data", str(tmp_path / "bad"), "--trust-vendor-key", str(vendor["pub"]),
                "--site-db-url", "mysql://x")
    assert r.returncode == 2 and "site_db_url" in r.stderr
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    assert (data / "site").is_dir() and not (data / "site" / "site.db").exists()
    a = ApplianceProc(data, ["127.0.0.1:0"]).start()
    try:
        with a.client() as c:
            first_admin_login(c)
            h = first_site_login(c)
            assert c.post("/api/config/teams", headers=h, json={"name": "On PG"}).status_code == 201
    finally:
        a.stop()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    # the site lives in a schema of its own, which its directory names (docs/formats/site-database.md)
    where = json.loads((data / "site" / "database.json").read_text())
    assert where["backend"] == "postgresql" and where["schema"].startswith("tether_site_")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                            ).fetchall() == []
        conn.execute(f'SET search_path TO "{where["schema"]}"')
        assert conn.execute("SELECT name FROM teams").fetchall() == [("On PG",)]
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (releases.current().schema_revision,)
        assert conn.execute("SELECT count(*) FROM change_log WHERE tbl = 'teams'").fetchone()[0] == 1
    a = ApplianceProc(data, ["127.0.0.1:0"]).start()  # restarts on the same database
    try:
        with a.client() as c:
            tok = c.post("/api/session", json={"username": "admin", "password": "Site-admin-pass-1"}).json()["token"]
            teams = c.get("/api/config/teams", headers={"Authorization": f"Bearer {tok}"}).json()
            assert [t["name"] for t in teams] == ["On PG"]
    finally:
        a.stop()
