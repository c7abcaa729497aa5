"""The readiness audit (DR-01) on a real appliance: each check made to fail,
then to pass by the real action that mends it (change the default passwords,
take a backup, have an API account pull one, take a snapshot, export the
configuration and the certificates, show the copies of the site package and
vendor key), through `tether readiness` (exit 9 while a check fails), the API
and the Status > Readiness page. One appliance for the module; the checks that
follow each other share its state, so the tests run in file order.

Failover and the connectivity test addresses are checked here on a standalone
appliance only (they pass as "not in a failover pair")."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from tests.certs.conftest import Pki
from tests.helpers import (NEW_ADMIN_PASSWORD, VENDOR, ApplianceProc, ClockFile, admin_token,
                           api_token, first_admin_login, first_site_login, ok, pinned_context, run_cli, site_token)

pytestmark = pytest.mark.req("DR-01")


@pytest.fixture(scope="module")
def env(tmp_path_factory, vendor):
    d = tmp_path_factory.mktemp("ready")
    clock = ClockFile(d / "clock-offset")
    data = d / "appliance"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    a = ApplianceProc(data, ["127.0.0.1:0"], env=clock.env).start()
    c = a.client()
    env = {"a": a, "c": c, "clock": clock, "vendor": vendor, "dir": d}
    yield env
    env["c"].close()
    a.stop()


def checks(report: dict) -> dict:
    return {c["name"]: c for c in report["checks"]}


def cli(env, *args, password=NEW_ADMIN_PASSWORD):
    return run_cli("readiness", *args, env={**env["a"].cli_env(), **env.get("trust", {}), "TETHER_PASSWORD": password})


def admin(env) -> dict:
    return {"Authorization": f"Bearer {admin_token(env['c'])}"}


def site(env) -> dict:
    return {"Authorization": f"Bearer {site_token(env['c'])}"}


def audit(env) -> dict:
    return checks(ok(env["c"].get("/appliance/api/readiness", headers=admin(env))))


def test_default_passwords_then_changed_and_cli_exit_code(env):
    c = env["c"]
    # with the default /appliance password, only the password change is allowed: the CLI says so
    cp = cli(env, "--json", password="password")
    assert cp.returncode == 3 and "change the default password" in cp.stderr, cp.stderr
    first_admin_login(c)
    cp = cli(env, "--json")
    assert cp.returncode == 9, cp.stdout + cp.stderr
    report = json.loads(cp.stdout)
    assert report["status"] == "fail"
    dp = checks(report)["default_passwords"]
    assert dp["status"] == "fail" and dp["data"] == {"appliance": [], "site": ["admin"]}
    assert "/login/password" in dp["mend"]
    assert "/login: admin" in dp["detail"]
    first_site_login(c)
    # a user an admin creates with the default password (to be changed at first login) is found too
    ok(c.post("/api/users", headers=site(env), json={"username": "rep1", "password": "password"}), 201)
    assert audit(env)["default_passwords"]["data"]["site"] == ["rep1"]
    tok = site_token(c, "rep1", "password")
    ok(c.post("/api/session/password", headers={"Authorization": f"Bearer {tok}"},
              json={"current_password": "password", "new_password": "Rep-one-pass-1"}))
    got = audit(env)
    assert got["default_passwords"]["status"] == "pass"
    # standalone: failover and the connectivity test addresses have nothing to check; the jobs run
    assert got["failover_in_sync"]["status"] == "pass" and got["failover_in_sync"]["data"] == {"paired": False}
    assert got["connectivity_tests"]["status"] == "pass"
    assert got["background_jobs"]["status"] == "pass" and got["background_jobs"]["data"]["jobs"] > 3


def test_backups_snapshot_and_integration_client(env):
    c = env["c"]
    got = audit(env)
    for name in ("site_backup_recent", "backup_since_update", "integration_client", "snapshot_recent"):
        assert got[name]["status"] == "fail", (name, got[name])
    assert "tether backup" in got["site_backup_recent"]["mend"]
    assert "site software became" in got["backup_since_update"]["detail"]
    # a backup a user downloads
    r = c.post("/api/backup", headers=site(env), json={"no_password": True})
    assert r.status_code == 200, r.text
    got = audit(env)
    assert got["site_backup_recent"]["status"] == "pass"
    assert got["backup_since_update"]["status"] == "pass"
    assert got["integration_client"]["status"] == "fail"  # a person's backup is not the integration client's
    # too old once a day has passed; the threshold is a setting
    env["clock"].advance(25 * 3600)
    try:
        got = audit(env)
        assert got["site_backup_recent"]["status"] == "fail"
        assert "more than 24 h ago" in got["site_backup_recent"]["detail"]
        h = admin(env)
        mon = ok(c.get("/appliance/api/monitoring", headers=h))
        mon["readiness"]["backup_max_age_hours"] = 48
        ok(c.put("/appliance/api/monitoring", headers=h, json=mon))
        assert audit(env)["site_backup_recent"]["status"] == "pass"
        mon["readiness"]["backup_max_age_hours"] = 0
        r = c.put("/appliance/api/monitoring", headers=h, json=mon)
        assert r.status_code == 422 and "backup_max_age_hours" in r.text
    finally:
        env["clock"].set(0)
    # an integration client: an API account with the backup permission pulls one
    acct = ok(c.post("/api/api-accounts", headers=site(env), json={"name": "nightly", "permissions": ["backup"]}),
              201)
    tok = api_token(c, acct["client_id"], acct["client_secret"])
    r = c.post("/api/backup", headers={"Authorization": f"Bearer {tok}"}, json={"no_password": True})
    assert r.status_code == 200 and r.content[:4]
    got = audit(env)
    assert got["integration_client"]["status"] == "pass" and got["integration_client"]["data"]["account"] == "nightly"
    # a whole-appliance snapshot
    r = c.post("/appliance/api/snapshot", headers=admin(env), json={"password": "Snapshot-pass-1"})
    assert r.status_code == 200, r.text
    assert audit(env)["snapshot_recent"]["status"] == "pass"


def test_configuration_export_follows_changes(env):
    c = env["c"]
    h = admin(env)
    assert audit(env)["config_exported"]["status"] == "fail"
    assert c.get("/appliance/api/config/export", headers=h).status_code == 200
    assert audit(env)["config_exported"]["status"] == "pass"
    sec = ok(c.get("/appliance/api/security", headers=h))
    sec["login_agreement"]["title"] = "Authorised use only"
    ok(c.put("/appliance/api/security", headers=h, json=sec))
    got = audit(env)["config_exported"]
    assert got["status"] == "fail" and "changed after its last export" in got["detail"]
    assert "tether settings export" in got["mend"] and "tether kit export" in got["mend"]
    assert c.get("/appliance/api/config/export", headers=h).status_code == 200
    assert audit(env)["config_exported"]["status"] == "pass"


def test_copies_of_package_and_vendor_key(env, tmp_path):
    c, vendor = env["c"], env["vendor"]
    h = admin(env)
    got = audit(env)["copies_kept"]
    assert got["status"] == "fail" and "tether readiness copies" in got["mend"]
    # a package that is not the one installed is refused, and nothing is recorded
    other = vendor["package"](name="other")
    r = c.post("/appliance/api/readiness/copies", headers=h,
               files={"package": ("o.tsp", other.read_bytes()), "vendor_key": ("v.pub", vendor["pub"].read_bytes())})
    assert r.status_code == 422 and "not the site package installed here" in r.json()["message"]
    # the right package with a key that did not sign it
    wrong_key = tmp_path / "wrong.pub"
    subprocess.run([VENDOR, "keygen", "--out", str(tmp_path / "k")], check=True, capture_output=True)
    wrong_key.write_bytes((tmp_path / "k" / "vendor.pub").read_bytes())
    r = c.post("/appliance/api/readiness/copies", headers=h,
               files={"package": ("p.tsp", vendor["package"]().read_bytes()), "vendor_key": ("v.pub", wrong_key.read_bytes())})
    assert r.status_code == 422 and r.json()["field"] == "vendor_key"
    assert audit(env)["copies_kept"]["status"] == "fail"
    cp = cli(env, "copies", "--package", str(vendor["package"]()), "--vendor-key", str(vendor["pub"]))
    assert cp.returncode == 0, cp.stderr
    assert audit(env)["copies_kept"]["status"] == "pass"


def _p12(leaf, chain) -> bytes:
    return pkcs12.serialize_key_and_certificates(b"site", leaf.key, leaf.cert, [n.cert for n in chain],
                                                 BestAvailableEncryption(b"P12-pass-1"))


def _import(c, h, name, data) -> int:
    return ok(c.post("/appliance/api/certificates/import", headers=h, files={"file": ("c.p12", data)},
                     data={"password": "P12-pass-1", "name": name}), 201)["id"]


def test_certificates_exported_chained_and_not_expiring(env):
    c = env["c"]
    h = admin(env)
    got = audit(env)
    assert got["certificates_exported"]["status"] == "warn"  # only the built-in certificate is presented
    pki = Pki(start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    root = pki.root()
    inter = pki.intermediate(root)
    leaf = pki.leaf(inter, "support.example.com", ips=("127.0.0.1",), days=10)
    # a certificate without its chain, expiring in 10 days
    short = _import(c, h, "short", _p12(leaf, []))
    ok(c.put("/appliance/api/certificate-assignments/127.0.0.1", headers=h, json={"id": short}))
    # 127.0.0.1 now presents it: the test trusts the CA from here on (the built-in pin no longer matches; the
    # intermediate is in the bundle because this certificate's chain lacks it, which is what the audit reports)
    (env["dir"] / "root.pem").write_text(root.pem + inter.pem)
    env["trust"] = {"TETHER_PIN_CERT": "", "TETHER_CACERT": str(env["dir"] / "root.pem")}
    c.close()
    c = env["c"] = httpx.Client(base_url=env["a"].url, verify=pinned_context(env["dir"] / "root.pem"), timeout=30)
    got = audit(env)
    assert got["certificates_exported"]["status"] == "fail"
    assert f"--id {short}" in got["certificates_exported"]["mend"]
    assert got["certificate_chains"]["status"] == "fail" and "root" in got["certificate_chains"]["detail"]
    assert got["certificate_expiry"]["status"] == "fail"
    assert got["certificate_expiry"]["data"]["expiring"][0]["id"] == short
    # exported without its key: not enough
    r = c.post(f"/appliance/api/certificates/{short}/export", headers=h,
               json={"passphrase": "Export-pass-1", "include_key": False})
    assert r.status_code == 200, r.text
    assert audit(env)["certificates_exported"]["status"] == "fail"
    # the renewed certificate with its whole chain, assigned and exported with key and chain
    renewed = pki.leaf(inter, "support.example.com", ips=("127.0.0.1",), days=365)
    good = _import(c, h, "renewed", _p12(renewed, [inter, root]))
    ok(c.put("/appliance/api/certificate-assignments/127.0.0.1", headers=h, json={"id": good}))
    got = audit(env)
    assert got["certificate_chains"]["status"] == "pass"
    assert got["certificate_expiry"]["status"] == "pass"
    assert got["certificates_exported"]["status"] == "fail"  # this one was never exported
    r = c.post(f"/appliance/api/certificates/{good}/export", headers=h, json={"passphrase": "Export-pass-1"})
    assert r.status_code == 200
    got = audit(env)
    assert got["certificates_exported"]["status"] == "pass", got["certificates_exported"]


def test_all_mended_cli_exit_zero_and_page(env):
    cp = cli(env, "--json")
    report = json.loads(cp.stdout)
    assert cp.returncode == 0, [c for c in report["checks"] if c["status"] != "pass"]
    assert report["counts"]["fail"] == 0
    assert [c["name"] for c in report["checks"] if c["status"] == "warn"] == []
    text = cli(env).stdout
    assert "[ok  ] No default password on either face" in text and text.rstrip().endswith("0 failing, 0 warning, 13 passing")
    # the page shows the same checks (a browser-free look: the HTML the admin reads)
    c = env["c"]
    tok = admin_token(c)
    c.cookies.clear()
    page = c.get("/appliance/status/readiness", headers={"Authorization": f"Bearer {tok}"})
    assert page.status_code == 200
    for check in report["checks"]:
        row = re.search(rf'<tr id="check-{check["name"]}">.*?</tr>', page.text, re.S)
        assert row and f'class="status-{check["status"]}"' in row.group(0), check["name"]
