"""APPL-07: a whole-appliance snapshot of a running appliance, restored as
the equivalent of a VM snapshot: /appliance and /login as they were."""

import json

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, first_admin_login, first_site_login, run_cli


@pytest.mark.req("APPL-07", "OPS-02")
def test_snapshot_of_a_running_appliance_restores_everything(make_appliance, tmp_path):
    a = make_appliance(site=True)
    with a.client() as c:
        ah = first_admin_login(c)
        sh = first_site_login(c)
        c.post("/api/users", headers=sh, json={"username": "ivy", "password": "Ivy-initial-11"})
        net = c.get("/appliance/api/networking", headers=ah).json()
        net["dns_servers"] = ["192.0.2.53"]
        c.put("/appliance/api/networking", headers=ah, json=net)
        basics = c.get("/appliance/api/status", headers=ah).json()
    cert = (a.data / "builtin-cert.pem").read_text()
    pw = tmp_path / "pw"
    pw.write_text("Snapshot-pass-1")
    env = {**a.cli_env(), "TETHER_PASSWORD": NEW_ADMIN_PASSWORD}
    cp = run_cli("snapshot", "create", "--out", str(tmp_path), "--password-file", str(pw), "--json", env=env)
    assert cp.returncode == 0, cp.stderr
    snap = json.loads(cp.stdout)["file"]
    assert snap.endswith(".tsnap") and basics["serial_number"] in snap
    # afterwards everything changes: a factory reset even
    with a.client() as c:
        assert c.post("/appliance/api/factory-reset", headers=ah, json={"confirm": "factory reset"}).status_code == 200
    assert a.stop() == 0
    bad = tmp_path / "bad"
    bad.write_text("Wrong-password-1")
    cp = run_cli("snapshot", "restore", snap, "--data", str(a.data), "--password-file", str(bad))
    assert cp.returncode == 7 and "wrong password" in cp.stderr
    cp = run_cli("snapshot", "restore", snap, "--data", str(a.data), "--password-file", str(pw), "--json")
    assert cp.returncode == 0, cp.stderr
    a.start()
    assert (a.data / "builtin-cert.pem").read_text() == cert  # the same built-in certificate and key
    assert b'"tether-site-package/1"' in (a.data / "site-package.tsp").read_bytes()  # kept for a recovery kit
    with a.client() as c:  # pinned to the certificate from before the snapshot
        h = {"Authorization": "Bearer " + c.post("/appliance/api/session", json={
            "username": "admin", "password": NEW_ADMIN_PASSWORD}).json()["token"]}
        b2 = c.get("/appliance/api/status", headers=h).json()
        assert (b2["serial_number"], b2["appliance_id"]) == (basics["serial_number"], basics["appliance_id"])
        assert c.get("/appliance/api/networking", headers=h).json()["dns_servers"] == ["192.0.2.53"]
        tok = c.post("/api/session", json={"username": "admin", "password": NEW_SITE_PASSWORD}).json()["token"]
        users = [u["username"] for u in c.get("/api/users", headers={"Authorization": f"Bearer {tok}"}).json()]
        assert users == ["admin", "ivy"]
