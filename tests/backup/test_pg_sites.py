"""OPS-03 with BK-06, APPL-06 and APPL-07 on a real PostgreSQL server: a
backup moves between a SQLite and a PostgreSQL site both ways, `tether site
move-db` moves a site between the two (with a dry run), a whole-appliance
snapshot of a PostgreSQL-hosted site holds its data and restores it, and a
factory reset drops the site's schema and says what stays on the server.
These always use PostgreSQL (``pg_server``); they run in the PostgreSQL pass
of scripts/test only (``pg_only``)."""

import json
from pathlib import Path

import pytest

from tether.site import location
from tests.backup.util import site_database
from tests.helpers import (NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, ApplianceProc, first_admin_login,
                           first_site_login, run_cli, site_token)

pytestmark = [pytest.mark.pg, pytest.mark.pg_only]


def _init(tmp_path: Path, vendor, name: str, url: str | None, site: bool = True) -> Path:
    data = tmp_path / name
    extra = ("--site-db-url", url) if url else ()
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), *extra, check=True)
    if site:
        run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    return data


def _users(data: Path) -> list[str]:
    import sqlalchemy as sa

    from tether.site.tables import users

    eng = site_database(data).engine()
    try:
        with eng.connect() as c:
            return sorted(r[0] for r in c.execute(sa.select(users.c.username)))
    finally:
        eng.dispose()


CHANGED_BY_A_START = {"audit_log", "change_log", "sessions", "api_tokens", "users"}  # logins: audit, sessions


def _rows(data: Path) -> dict[str, list]:
    """Every row of every site table, read through SQLAlchemy's types (JSON parsed, booleans as bools): what
    must survive a move between databases unchanged."""
    import sqlalchemy as sa

    from tether.site.tables import metadata

    eng = site_database(data).engine()
    try:
        with eng.connect() as c:
            return {t.name: sorted((tuple(r) for r in c.execute(sa.select(t))), key=repr)
                    for t in metadata.sorted_tables}
    finally:
        eng.dispose()


def _serve(data: Path, started: list) -> ApplianceProc:
    a = ApplianceProc(data, ["127.0.0.1:0"]).start()
    started.append(a)
    return a


@pytest.fixture
def started():
    procs: list[ApplianceProc] = []
    yield procs
    for a in procs:
        a.stop()


@pytest.mark.req("BK-06", "BK-01", "OPS-03")
def test_backups_move_between_sqlite_and_postgresql_sites(tmp_path, vendor, pg_server, started):
    pg = _init(tmp_path, vendor, "pg", pg_server.new_database())
    a = _serve(pg, started)
    with a.client() as c:
        first_admin_login(c)
        sh = first_site_login(c)
        assert c.post("/api/users", headers=sh, json={"username": "pat", "password": "Pat-initial-1"}).status_code == 201
        r = c.post("/api/backup", headers=sh, json={"no_password": True, "include_history": True})
        assert r.status_code == 200, r.text
    from_pg = tmp_path / "from-pg.nsb"
    from_pg.write_bytes(r.content)
    a.stop()
    # the backup of a PostgreSQL site verifies and restores onto a SQLite site
    rep = json.loads(run_cli("verify", str(from_pg), "--json", check=True).stdout)
    assert rep["tables"]["users"] == 2 and rep["restorable_here"]
    lite = _init(tmp_path, vendor, "lite", None)
    cp = run_cli("restore", str(from_pg), "--data", str(lite), "--json")
    assert cp.returncode == 0, cp.stderr
    assert site_database(lite).backend == "sqlite" and _users(lite) == ["admin", "pat"]
    # a backup of that SQLite site restores onto another PostgreSQL site (a fresh appliance: no site yet)
    out = tmp_path / "out"
    cp = run_cli("backup", "--data", str(lite), "--out", str(out), "--no-password", "--json")
    assert cp.returncode == 0, cp.stderr
    from_lite = json.loads(cp.stdout)["file"]
    url2 = pg_server.new_database()
    pg2 = _init(tmp_path, vendor, "pg2", url2, site=False)
    cp = run_cli("restore", from_lite, "--data", str(pg2), "--json")
    assert cp.returncode == 0, cp.stderr
    db = site_database(pg2)
    assert db.external and location.our_schemas(url2) == [db.schema] and _users(pg2) == ["admin", "pat"]
    b = _serve(pg2, started)
    with b.client() as c:  # the restored site answers: pat logs in with the password from the first site
        assert c.post("/api/session", json={"username": "pat", "password": "Pat-initial-1"}).status_code == 200


@pytest.mark.req("OPS-03")
def test_move_db_moves_a_site_to_postgresql_and_back_with_a_dry_run(tmp_path, vendor, pg_server, started):
    data = _init(tmp_path, vendor, "appliance", None)
    a = _serve(data, started)
    with a.client() as c:
        first_admin_login(c)
        sh = first_site_login(c)
        assert c.post("/api/users", headers=sh, json={"username": "quinn", "password": "Quinn-initial-1"}).status_code == 201
        assert c.put("/api/files/notes.txt", headers=sh, content=b"moved along\n").status_code in (200, 201)
    # a running appliance holds its data directory: refused
    url = pg_server.new_database()
    cp = run_cli("site", "move-db", "--data", str(data), "--to", url)
    assert cp.returncode == 5 and "is running" in cp.stderr, cp.stderr
    a.stop()
    # generated data of every kind (JSON columns, booleans, floats, binary), to compare row for row after each move
    run_cli("site", "seed", "--data", str(data), "--sessions", "200", "--files", "3", "--recordings", "3",
            "--users", "8", "--jump-clients", "20", "--max-file-mb", "0.1", "--recording-mb", "0.05", check=True)
    rows = _rows(data)
    assert sum(map(len, rows.values())) > 1000
    # bad targets: clear errors, nothing changed
    cp = run_cli("site", "move-db", "--data", str(data), "--to", "mysql://x/y")
    assert cp.returncode == 2 and "postgresql+psycopg://" in cp.stderr, cp.stderr
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{pg_server.port + 1 if pg_server.port < 65535 else 1}/nowhere"
    cp = run_cli("site", "move-db", "--data", str(data), "--to", dead)
    assert cp.returncode != 0 and "cannot reach the PostgreSQL database" in cp.stderr, cp.stderr
    cp = run_cli("site", "move-db", "--data", str(data), "--to", "sqlite")
    assert cp.returncode == 5 and "already on the embedded SQLite" in cp.stderr, cp.stderr
    # the dry run reports and changes nothing
    before = (data / "site").resolve()
    cp = run_cli("site", "move-db", "--data", str(data), "--to", url, "--dry-run", "--json")
    assert cp.returncode == 0, cp.stderr
    plan = json.loads(cp.stdout)
    assert plan["dry_run"] and plan["to"]["backend"] == "postgresql" and plan["rows"]["users"] == len(rows["users"]) == 10
    assert plan["blobs"]["files"] >= 2 and "password" not in cp.stdout
    assert (data / "site").resolve() == before and location.our_schemas(url) == []
    assert site_database(data).backend == "sqlite"
    # the move
    cp = run_cli("site", "move-db", "--data", str(data), "--to", url)
    assert cp.returncode == 0 and "Moved the site to PostgreSQL" in cp.stdout, cp.stderr
    db = site_database(data)
    assert db.external and location.our_schemas(url) == [db.schema]
    assert not (data / "site" / "site.db").exists() and "quinn" in _users(data)
    assert _rows(data) == rows  # row for row (COPY into the new schema)
    # a second database cannot take it while one holds it; a move onto a non-empty database is refused
    cp = run_cli("site", "move-db", "--data", str(data), "--to", url)
    assert cp.returncode == 5 and "already on PostgreSQL" in cp.stderr, cp.stderr
    a.start()
    with a.client() as c:  # sessions moved too: the admin's password is the changed one, the file is there
        h = {"Authorization": "Bearer " + site_token(c)}
        assert c.get("/api/files/notes.txt", headers=h).content == b"moved along\n"
        assert c.post("/api/session", json={"username": "quinn", "password": "Quinn-initial-1"}).status_code == 200
    a.stop()
    # and back to SQLite: the schema is dropped from the server
    cp = run_cli("site", "move-db", "--data", str(data), "--to", "sqlite", "--json")
    assert cp.returncode == 0, cp.stderr
    assert site_database(data).backend == "sqlite" and (data / "site" / "site.db").exists()
    assert location.our_schemas(url) == [] and "quinn" in _users(data)
    moved_back = _rows(data)  # row for row again (a server-side cursor into SQLite), but what the start changed
    assert {t: r for t, r in moved_back.items() if t not in CHANGED_BY_A_START} == \
        {t: r for t, r in rows.items() if t not in CHANGED_BY_A_START}
    a.start()
    with a.client() as c:
        assert c.post("/api/session", json={"username": "quinn", "password": "Quinn-initial-1"}).status_code == 200


@pytest.mark.req("APPL-07", "APPL-06", "OPS-03")
def test_snapshot_holds_a_postgresql_site_and_reset_drops_its_schema(tmp_path, vendor, pg_server, started):
    url = pg_server.new_database()
    data = _init(tmp_path, vendor, "appliance", url)
    a = _serve(data, started)
    with a.client() as c:
        ah = first_admin_login(c)
        sh = first_site_login(c)
        assert c.post("/api/users", headers=sh, json={"username": "ivy", "password": "Ivy-initial-11"}).status_code == 201
    pw = tmp_path / "pw"
    pw.write_text("Snapshot-pass-1")
    env = {**a.cli_env(), "TETHER_PASSWORD": NEW_ADMIN_PASSWORD}
    cp = run_cli("snapshot", "create", "--out", str(tmp_path), "--password-file", str(pw), "--json", env=env)
    assert cp.returncode == 0, cp.stderr
    snap = json.loads(cp.stdout)["file"]
    old_schema = site_database(data).schema
    # the factory reset drops the site's schema and says what it leaves on the server
    with a.client() as c:
        r = c.post("/appliance/api/factory-reset", headers=ah, json={"confirm": "factory reset"})
        assert r.status_code == 200, r.text
        ext = r.json()["external_database"]
    assert ext["dropped"] == [f"schema {old_schema}"] and location.our_schemas(url) == []
    assert ext["database"] == url.rsplit("/", 1)[1] and "leaves them" in ext["left"]
    assert "password" not in json.dumps(ext).lower()
    assert a.stop() == 0
    # the snapshot restores the site's data into a new schema on the server its configuration names
    cp = run_cli("snapshot", "restore", snap, "--data", str(data), "--password-file", str(pw), "--json")
    assert cp.returncode == 0, cp.stderr
    res = json.loads(cp.stdout)
    assert res["site_database"]["backend"] == "postgresql" and res["site_database"]["schema"] != old_schema
    assert location.our_schemas(url) == [res["site_database"]["schema"]]
    a.start()
    with a.client() as c:
        tok = c.post("/api/session", json={"username": "admin", "password": NEW_SITE_PASSWORD}).json()["token"]
        users = [u["username"] for u in c.get("/api/users", headers={"Authorization": f"Bearer {tok}"}).json()]
        assert users == ["admin", "ivy"]
