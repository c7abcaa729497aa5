"""BK-01..09, IC-01, DR-03, DR-04, SEC-02 through the real interfaces: the
backup API, the CLI, and standard tools (tar, zstd, age, sqlite3). Every test
runs on the run's site database backend (TETHER_TEST_DB; the PostgreSQL pass of
scripts/test runs them against a real server, OPS-03): the backup is the same
SQLite payload whichever database the site lives on."""

import json
import os
import re
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest

from tether import __version__ as CURRENT
from tests.backup.util import age_decrypt_with_passphrase, backup_as_release, logical_dump, site_engine
from tests.helpers import NEW_SITE_PASSWORD, api_token, run_cli, site_token

BACKUP_PW = "Backup-password-1"
EPHEMERAL = frozenset({"sessions", "api_tokens", "audit_log", "change_log"})
pytestmark = pytest.mark.pg


def _query(data: Path, sql: str, params: dict | None = None, write: bool = False) -> list[tuple]:
    """Rows of ``sql`` on the site database of the appliance at ``data`` (SQLite or PostgreSQL)."""
    import sqlalchemy as sa

    eng = site_engine(data)
    try:
        with (eng.begin() if write else eng.connect()) as c:
            res = c.execute(sa.text(sql), params or {})
            return [tuple(r) for r in res] if res.returns_rows else []
    finally:
        eng.dispose()


def _backup_account(c, sh, perms=("backup",)):
    r = c.post("/api/api-accounts", headers=sh, json={"name": "-".join(perms).replace(":", "") + "-bot",
                                                      "permissions": list(perms)})
    assert r.status_code == 201, r.text
    acct = r.json()
    return {"Authorization": "Bearer " + api_token(c, acct["client_id"], acct["client_secret"])}


def _download(c, h, tmp_path, **body):
    r = c.post("/api/backup", headers=h, json=body)
    assert r.status_code == 200, r.text
    name = re.search(r'filename="([^"]+)"', r.headers["content-disposition"]).group(1)
    path = tmp_path / name
    path.write_bytes(r.content)
    return path


@pytest.mark.req("BK-01", "BK-05", "IC-01", "SEC-02", "DR-03")
def test_backup_api_download_is_named_protected_and_verifiable(ready_site, tmp_path):
    a, c, _ah, sh = ready_site
    bh = _backup_account(c, sh)
    # the password travels in the body; a backup-only token may not read users
    assert c.get("/api/users", headers=bh).status_code == 403
    path = _download(c, bh, tmp_path, password=BACKUP_PW, include_history=False)
    assert re.fullmatch(rf"tether-{re.escape(CURRENT)}-demo-\d{{8}}-[0-9a-f]{{8}}\.nsb", path.name)
    with tarfile.open(path) as t:
        assert t.getnames() == ["nsb.json", "identity.age", "payload.tar.zst.age"]
        header = json.loads(t.extractfile("nsb.json").read())
    assert header["protected"] and header["product_version"] == CURRENT
    assert BACKUP_PW.encode() not in path.read_bytes()
    # tokens lacking the backup permission are refused
    rh = _backup_account(c, sh, ("reporting",))
    assert c.post("/api/backup", headers=rh, json={"password": BACKUP_PW}).status_code == 403
    # verify through the CLI: right password, wrong password, no password
    pw = tmp_path / "pw"
    pw.write_text(BACKUP_PW + "\n")
    cp = run_cli("verify", str(path), "--password-file", str(pw), "--json")
    assert cp.returncode == 0, cp.stderr
    report = json.loads(cp.stdout)
    assert report["restorable_here"] and report["tables"]["users"] == 1 and not report["include_history"]
    assert {x["what"] for x in report["left_out"]} >= {"recordings", "table"}
    pw.write_text("not-the-password")
    cp = run_cli("verify", str(path), "--password-file", str(pw))
    assert cp.returncode == 7 and "wrong password" in cp.stderr
    cp = run_cli("verify", str(path))
    assert cp.returncode == 2 and "password-protected" in cp.stderr
    # weak passwords are refused
    r = c.post("/api/backup", headers=bh, json={"password": "short"})
    assert r.status_code == 422 and r.json()["field"] == "password"


@pytest.mark.req("DR-04", "BK-02", "BK-03", "BK-04", "SEC-02")
def test_backup_opens_with_standard_tools(ready_site, tmp_path):
    a, c, ah, sh = ready_site
    c.post("/api/users", headers=sh, json={"username": "erin", "password": "Erin-initial-1"})
    path = _download(c, sh, tmp_path, password=BACKUP_PW, include_history=True)
    out = tmp_path / "open"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(path), "-C", str(out)], check=True)
    age_decrypt_with_passphrase(out / "identity.age", out / "identity.txt", BACKUP_PW)
    subprocess.run("age -d -i identity.txt payload.tar.zst.age | zstd -d | tar -x", shell=True, check=True, cwd=out)
    manifest = json.loads((out / "manifest.json").read_text())
    sha = subprocess.run(["sha256sum", "site.db"], cwd=out, capture_output=True, text=True).stdout.split()[0]
    assert manifest["members"][0] == {"name": "site.db", "size": (out / "site.db").stat().st_size, "sha256": sha}
    users = subprocess.run(["sqlite3", str(out / "site.db"), "SELECT username FROM users ORDER BY username"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert users == ["admin", "erin"]
    con = sqlite3.connect(out / "site.db")
    assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0  # never included
    con.close()
    # nothing of /appliance: not the built-in certificate, not the appliance's settings
    cert = (a.data / "builtin-cert.pem").read_text()
    body = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert cert.split("\n")[1].encode() not in body
    assert b"appliance.db" not in body and b"builtin" not in body.lower()


@pytest.mark.req("BK-06", "BK-09")
def test_restore_through_the_api_brings_back_every_user(ready_site, tmp_path):
    a, c, ah, sh = ready_site
    c.post("/api/users", headers=sh, json={"username": "frank", "password": "Frank-initial-1"})
    path = _download(c, sh, tmp_path, password=BACKUP_PW, include_history=True)
    site_dir = a.data / "site"
    before = logical_dump(site_dir, EPHEMERAL)
    # changes after the backup: a new user, the admin's password changed
    c.post("/api/users", headers=sh, json={"username": "grace", "password": "Grace-initial-1"})
    r = c.post("/api/session/password", headers=sh, json={"current_password": NEW_SITE_PASSWORD,
                                                           "new_password": "Changed-later-1"})
    assert r.status_code == 200
    sh2 = {"Authorization": "Bearer " + site_token(c, "admin", "Changed-later-1")}
    # bad input first: each refused, the site exactly as it was
    state = logical_dump(site_dir)
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    cases = {"wrong password": (data, "Wrong-password-9", 400, "wrong password"),
             "no password": (data, "", 422, "password-protected"),
             "truncated": (data[: len(data) - 700], BACKUP_PW, 400, "damaged"),
             "corrupted": (bytes(flipped), BACKUP_PW, 400, ""),
             "another kind": (b"%PDF-1.7 not a backup" * 40, BACKUP_PW, 400, "not a Tether site backup"),
             "empty": (b"", BACKUP_PW, 422, "upload the backup")}
    for label, (blob, pw, status, msg) in cases.items():
        r = c.post("/api/restore", headers=sh2, files={"file": ("b.nsb", blob)}, data={"password": pw})
        assert r.status_code == status, (label, r.text)
        assert msg in r.json()["message"], (label, r.json())
        assert logical_dump(site_dir) == state, label
    assert not (a.data / "site.restore").exists()
    # the real restore
    r = c.post("/api/restore", headers=sh2, files={"file": (path.name, data)}, data={"password": BACKUP_PW})
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "same" and r.json()["backup_version"] == CURRENT
    # content identical to the site at backup time (but for logins, audit and change records)
    assert logical_dump(site_dir, EPHEMERAL) == before
    users = [u["username"] for u in c.get("/api/users", headers={"Authorization": "Bearer " + site_token(c)}).json()]
    assert users == ["admin", "frank"]  # grace is gone, admin's old password is back
    assert c.post("/api/session", json={"username": "admin", "password": "Changed-later-1"}).status_code == 401


@pytest.mark.req("BK-07", "BK-06")
def test_version_rules(make_appliance, tmp_path):
    a = make_appliance(site=True)
    env = a.cli_env()
    a.stop()
    data = str(a.data)
    pw = tmp_path / "pw"
    pw.write_text(BACKUP_PW)
    # an older supported release (1.1) restores and is migrated up
    old = backup_as_release(tmp_path, "1.1.0", users=("olivia",), password=BACKUP_PW)
    cp = run_cli("verify", str(old), "--password-file", str(pw), "--json")
    assert cp.returncode == 0 and json.loads(cp.stdout)["restorable_here"]
    cp = run_cli("restore", str(old), "--data", data, "--password-file", str(pw), "--json")
    assert cp.returncode == 0, cp.stderr
    res = json.loads(cp.stdout)
    assert res["action"] == "migrate" and res["backup_version"] == "1.1.0" and res["version"] == CURRENT
    assert [r[0] for r in _query(a.data, "SELECT username FROM users ORDER BY 1")] == ["admin", "olivia"]
    from tether.site import schema
    assert _query(a.data, "SELECT version_num FROM alembic_version")[0][0] == schema.head_revision()
    state = logical_dump(a.data / "site")
    # an unsupported older release (0.9 beta) is refused unless forced, and the refusal names the risk
    beta = backup_as_release(tmp_path, "0.9.0", users=("bert",))
    cp = run_cli("restore", str(beta), "--data", data)
    assert cp.returncode == 5 and "not a supported upgrade source" in cp.stderr and "--force" in cp.stderr
    cp = run_cli("verify", str(beta))
    assert cp.returncode == 5 and "Restorable here: NO" in cp.stdout
    assert logical_dump(a.data / "site") == state
    cp = run_cli("restore", str(beta), "--data", data, "--force", "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["warnings"][0].startswith("FORCED: version 0.9.0 is not a supported")
    # a newer release is always refused, even forced
    from tether.core.releases import CATALOG, Release, Version
    import datetime
    CATALOG.releases.append(Release(Version.parse("9.0.0"), datetime.date(2030, 1, 1), (),
                                    schema_revision=CATALOG.get(CURRENT).schema_revision))
    try:
        newer = backup_as_release(tmp_path, "9.0.0")
    finally:
        CATALOG.releases.pop()
    state = logical_dump(a.data / "site")
    for extra in ((), ("--force",)):
        cp = run_cli("restore", str(newer), "--data", data, *extra)
        assert cp.returncode == 5 and "newer than this appliance" in cp.stderr
    assert logical_dump(a.data / "site") == state
    # the running appliance answers with the restored site (backups move between appliances)
    a.start()
    with a.client() as c:
        assert c.post("/api/session", json={"username": "bert", "password": "bert-Password-1"}).status_code == 200
    assert env


@pytest.mark.req("BK-01", "OPS-02")
def test_cli_backup_offline_and_over_the_api(make_appliance, tmp_path):
    a = make_appliance(site=True)
    with a.client() as c:
        from tests.helpers import first_site_login
        first_site_login(c)
    pw = tmp_path / "pw"
    pw.write_text(BACKUP_PW)
    out = tmp_path / "out"
    out.mkdir()
    env = {**a.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_SITE_PASSWORD}
    cp = run_cli("backup", "--out", str(out), "--password-file", str(pw), "--include-history", "--json", env=env)
    assert cp.returncode == 0, cp.stderr
    f = json.loads(cp.stdout)["file"]
    assert os.path.basename(f).startswith(f"tether-{CURRENT}-demo-") and os.path.getsize(f) > 0
    # a directory that does not exist yet (trailing slash or not) is created, never written as a file
    cp = run_cli("backup", "--out", f"{tmp_path}/new/", "--no-password", "--json", env=env)
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "new").is_dir() and Path(json.loads(cp.stdout)["file"]).parent == tmp_path / "new"
    # offline commands refuse a data directory a running appliance holds
    cp = run_cli("backup", "--data", str(a.data), "--out", str(out), "--no-password")
    assert cp.returncode == 5 and "is running" in cp.stderr
    a.stop()
    cp = run_cli("backup", "--data", str(a.data), "--out", str(out / "offline.nsb"), "--no-password", "--json")
    assert cp.returncode == 0, cp.stderr
    assert (out / "offline.nsb").exists()
    cp = run_cli("backup", "--data", str(a.data), "--out", str(tmp_path / "deep" / "newdir"), "--no-password", "--json")
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "deep" / "newdir").is_dir() and Path(json.loads(cp.stdout)["file"]).suffix == ".nsb"
    cp = run_cli("backup", "--data", str(a.data), "--out", str(tmp_path / "missing" / "x.nsb"), "--no-password")
    assert cp.returncode == 2 and "does not exist" in cp.stderr and not (tmp_path / "missing").exists(), cp.stderr
    cp = run_cli("backup", "--data", str(a.data), "--out", f"{out}/offline.nsb/", "--no-password")
    assert cp.returncode == 2 and "not a directory" in cp.stderr, cp.stderr
    cp = run_cli("verify", str(out / "offline.nsb"), "--json")
    assert cp.returncode == 0 and json.loads(cp.stdout)["protected"] is False


@pytest.mark.req("BK-08", "BK-06")
def test_restore_replaces_failover_settings_and_psk_but_keeps_cluster_config(ready_site, tmp_path):
    a, c, ah, sh = ready_site
    psk_then, psk_now = "A" * 40, "B" * 40
    failover_then = {"enabled": False, "role": "none", "peer_host": "backup-then.example.com"}
    assert c.put("/api/config/settings/failover", headers=sh, json=failover_then).status_code == 200
    assert c.put("/api/config/settings/inter-appliance-psk", headers=sh, json={"psk": psk_then}).status_code == 200
    path = _download(c, sh, tmp_path, password=BACKUP_PW)
    # later: the appliance joins a failover pair with another key, and a cluster
    failover_now = {"enabled": True, "role": "primary", "peer_host": "backup-now.example.com"}
    assert c.put("/api/config/settings/failover", headers=sh, json=failover_now).status_code == 200
    assert c.put("/api/config/settings/inter-appliance-psk", headers=sh, json={"psk": psk_now}).status_code == 200
    # the cluster (Atlas) configuration has no page yet: it is stored as the site setting 'cluster'
    _query(a.data, "INSERT INTO site_settings (key, value, updated_at) VALUES ('cluster', :v, 0)",
           {"v": json.dumps({"role": "master", "peers": ["10.9.9.9"]})}, write=True)
    r = c.post("/api/restore", headers=sh, files={"file": (path.name, path.read_bytes())},
               data={"password": BACKUP_PW})
    assert r.status_code == 200, r.text
    assert any("failover relationship" in w and "break failover" in w for w in r.json()["warnings"])
    sh = {"Authorization": "Bearer " + site_token(c)}
    f = c.get("/api/config/settings/failover", headers=sh).json()
    assert f["enabled"] is False and f["peer_host"] == "backup-then.example.com"
    def setting(key):
        v = _query(a.data, "SELECT value FROM site_settings WHERE key = :k", {"k": key})[0][0]
        return json.loads(v) if isinstance(v, str) else v

    psk, cluster = setting("inter_appliance_psk"), setting("cluster")
    assert psk["psk"] == psk_then
    assert cluster == {"role": "master", "peers": ["10.9.9.9"]}


@pytest.mark.req("BK-02", "BK-04", "BK-03")
def test_file_store_limits_and_history_in_backups(make_appliance, tmp_path):
    a = make_appliance(site=True)
    from tests.helpers import first_site_login

    with a.client() as c:
        sh = first_site_login(c)
        big = b"B" * (200 * 1024 + 1)
        assert c.put("/api/files/big.iso", headers=sh, content=big).status_code in (200, 201)
        for i in range(52):
            r = c.put(f"/api/files/doc{i:02d}.txt", headers=sh, content=f"document {i}\n".encode() * 100)
            assert r.status_code in (200, 201), r.text
        without = _download(c, sh, tmp_path, password=BACKUP_PW, include_history=False)
        with_history = _download(c, sh, tmp_path, password=BACKUP_PW, include_history=True)
    pw = tmp_path / "pw"
    pw.write_text(BACKUP_PW)
    report = json.loads(run_cli("verify", str(without), "--password-file", str(pw), "--json", check=True).stdout)
    files_out = {x["name"]: x["reason"] for x in report["left_out"] if x["what"] == "file"}
    assert files_out["big.iso"].startswith("larger than 204800")
    assert files_out == {"big.iso": files_out["big.iso"], "doc50.txt": "beyond the first 50 files",
                         "doc51.txt": "beyond the first 50 files"}
    assert report["members"] == 1 + 50
    tables_out = {x["name"] for x in report["left_out"] if x["what"] == "table"}
    assert {"session_records", "session_events", "license_usage", "team_activity"} <= tables_out
    report2 = json.loads(run_cli("verify", str(with_history), "--password-file", str(pw), "--json",
                                 check=True).stdout)
    assert "session_records" not in {x["name"] for x in report2["left_out"] if x["what"] == "table"}
    assert report2["include_history"] is True
    # onto a fresh appliance: the first 50 small files come back, the rest are gone (as the manifest said)
    b = make_appliance()
    b.stop()
    cp = run_cli("restore", str(without), "--data", str(b.data), "--password-file", str(pw), "--json")
    assert cp.returncode == 0, cp.stderr
    b.start()
    with b.client() as c:
        h = {"Authorization": "Bearer " + site_token(c)}
        assert c.get("/api/files/doc07.txt", headers=h).content == b"document 7\n" * 100
        assert c.get("/api/files/doc51.txt", headers=h).status_code in (404, 410)
