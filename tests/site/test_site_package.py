"""SITE-04: signed site packages, installed through /appliance/api and the
CLI; tampered, unsigned and foreign packages are refused and change nothing;
a newer package is the update path (Alembic migrations run)."""

import base64
import json
import subprocess

import pytest

from tether import __version__ as CURRENT
import sqlalchemy as sa

from tests.helpers import VENDOR, ApplianceProc, first_admin_login, run_cli, site_token


def _install(c, h, data: bytes, name="site.tsp"):
    return c.post("/appliance/api/site-package", headers=h, files={"file": (name, data)})


@pytest.mark.req("SITE-04")
def test_new_appliance_has_no_site_until_a_package_is_installed(appliance, vendor):
    with appliance.client() as c:
        h = first_admin_login(c)
        assert c.get("/appliance/api/site", headers=h).json() == {"installed": False}
        assert c.get("/health").status_code == 503
        r = c.post("/api/session", json={"username": "admin", "password": "password"})
        assert r.status_code == 404 and "no site is installed" in r.json()["message"]
        r = _install(c, h, vendor["package"]("acme", "remote-support", CURRENT).read_bytes())
        assert r.status_code == 200, r.text
        assert r.json() == {"action": "install", "site_name": "acme", "edition": "remote-support",
                            "version": CURRENT}
        site = c.get("/appliance/api/site", headers=h).json()
        assert site["installed"] and site["name"] == "acme"
        # /login answers admin / password and forces the change
        tok = site_token(c, "admin", "password")
        r = c.get("/api/site/information", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 403 and r.json()["error"] == "password_change_required"
        assert c.get("/health").status_code == 200
        # installing the same version again changes nothing, and says so (200: nothing more is needed)
        r = _install(c, h, vendor["package"]("acme", "remote-support", CURRENT).read_bytes())
        assert r.status_code == 200 and r.json()["action"] == "none" and "already installed" in r.json()["message"]
        audit = c.get("/appliance/api/audit", headers=h).json()
        assert any(e["action"] == "site.install" and e["target"] == "acme" for e in audit)


@pytest.mark.req("SITE-04")
def test_tampered_unsigned_and_foreign_packages_are_refused(appliance, vendor, tmp_path):
    good = vendor["package"]("acme", "remote-support", CURRENT).read_bytes()
    doc = json.loads(good)
    tampered = dict(doc, manifest=dict(doc["manifest"], site_name="evil"))
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    bad_sig = dict(doc, signature=base64.b64encode(b"\0" * 64).decode())
    other = tmp_path / "other"
    subprocess.run([VENDOR, "keygen", "--out", str(other)], check=True, capture_output=True)
    subprocess.run([VENDOR, "site-package", "build", "--key", str(other / "vendor.key"), "--site-name", "acme",
                    "--edition", "remote-support", "--version", CURRENT, "-o", str(tmp_path / "f.tsp")], check=True,
                   capture_output=True)
    cases = {
        "tampered": (json.dumps(tampered).encode(), "does not verify"),
        "unsigned": (json.dumps(unsigned).encode(), "unsigned"),
        "bad signature": (json.dumps(bad_sig).encode(), "does not verify"),
        "other vendor": ((tmp_path / "f.tsp").read_bytes(), "does not verify"),
        "not a package": (b"PK\x03\x04 this is a zip", "not a Tether site package"),
        "empty": (b"", "upload the site package"),
    }
    with appliance.client() as c:
        h = first_admin_login(c)
        for label, (data, msg) in cases.items():
            r = _install(c, h, data)
            assert 400 <= r.status_code < 500, label
            assert msg in r.json()["message"], (label, r.json())
        assert c.get("/appliance/api/site", headers=h).json() == {"installed": False}
    assert not (appliance.data / "site").exists()
    assert not (appliance.data / "site.staging").exists()


@pytest.mark.req("SITE-04")
def test_unknown_or_old_release_packages_are_refused(appliance, vendor):
    with appliance.client() as c:
        h = first_admin_login(c)
        r = _install(c, h, vendor["package"]("acme", "remote-support", "9.0.0").read_bytes())
        assert r.status_code == 422 and "not a release this appliance software knows" in r.json()["message"]
        r = _install(c, h, vendor["package"]("acme", "remote-support", "1.0.0").read_bytes())
        assert r.status_code == 422 and "older software line" in r.json()["message"]
        assert c.get("/appliance/api/site", headers=h).json() == {"installed": False}


@pytest.mark.req("SITE-04", "OPS-02", "BK-10")
def test_update_path_runs_migrations_and_keeps_data(tmp_path, vendor):
    """A site left at schema 0001 by release 1.0 software is brought to the
    current schema by installing the newer package, keeping its users."""
    from tether.core.db import make_engine, sqlite_url
    from tether.site import schema
    from tether.site.tables import site_info, users

    data = tmp_path / "old"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    site_dir = data / "site"
    site_dir.mkdir()
    engine = make_engine(sqlite_url(site_dir / "site.db"))
    schema.upgrade(engine, "0001")  # what release 1.0 software created
    with engine.begin() as c:
        c.execute(site_info.insert().values(id=1, name="acme", edition="remote-support", version="1.0.1",
                                            installed_at=0, updated_at=0))
        c.execute(sa.insert(sa.table("users", *[sa.column(n) for n in (
            "username", "display_name", "password_hash", "must_change_password", "is_admin", "permissions",
            "enabled", "created_at")])).values(
            username="alice", display_name="Alice", password_hash="x", must_change_password=False, is_admin=False,
            permissions="[]", enabled=True, created_at=0))
    assert schema.current_revision(engine) == "0001"
    engine.dispose()
    pkg = vendor["package"]("acme", "remote-support", CURRENT)
    cp = run_cli("site-package", "install", str(pkg), "--data", str(data), "--json", check=True)
    result = json.loads(cp.stdout)
    assert result["action"] == "update"
    # BK-10: the appliance took a backup of the old site first, and kept it
    pre = result["pre_update_backup"]
    assert pre.startswith(str(data / "backups")) and "tether-1.0.1-acme-" in pre
    cp = run_cli("verify", pre, "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["product_version"] == "1.0.1"
    engine = make_engine(sqlite_url(site_dir / "site.db"))
    assert schema.current_revision(engine) == schema.head_revision()
    with engine.connect() as c:
        assert c.execute(sa.select(site_info.c.version)).scalar() == CURRENT
        assert c.execute(sa.select(users.c.username, users.c.timezone)).all() == [("alice", None)]
    engine.dispose()
    # a downgrade is refused, nothing changes
    cp = run_cli("site-package", "install", str(vendor["package"]("acme", "remote-support", "1.0.0")),
                 "--data", str(data))
    assert cp.returncode == 2 and "Error:" in cp.stderr
    a = ApplianceProc(data, ["127.0.0.1:0"]).start()
    try:
        with a.client() as c:
            h = first_admin_login(c)
            assert c.get("/appliance/api/site", headers=h).json()["version"] == CURRENT
    finally:
        a.stop()


@pytest.mark.req("SITE-04", "OPS-02")
def test_cli_installs_on_a_running_appliance(appliance, vendor):
    env = appliance.cli_env()
    with appliance.client() as c:
        first_admin_login(c)
    pkg = vendor["package"]("beta", "privileged-remote-access", CURRENT)
    cp = run_cli("site-package", "install", str(pkg), "--user", "admin", "--json",
                 env={**env, "TETHER_PASSWORD": "wrong-password"})
    assert cp.returncode == 3 and "wrong user name or password" in cp.stderr
    cp = run_cli("site-package", "install", str(pkg), "--json", env={**env, "TETHER_PASSWORD": "Appliance-pass-1"})
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["edition"] == "privileged-remote-access"
