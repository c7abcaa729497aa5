"""OPS-02 with APPL-04 and APPL-06: `tether settings export` / `settings
import`, a refused `tether kit export`, `tether factory-reset` and `tether shutdown` on a running appliance,
through the same /appliance/api routes as the Maintenance page; the
destructive ones do nothing unless the typed confirmation is given."""

import pytest
import yaml

from tests.helpers import NEW_ADMIN_PASSWORD, first_admin_login, first_site_login, ok, run_cli, wait_for


@pytest.mark.req("OPS-02", "APPL-04", "APPL-06")
def test_settings_export_import_factory_reset_and_shutdown(make_appliance, tmp_path):
    a = make_appliance(site=True)
    with a.client() as c:
        ah = first_admin_login(c)
        first_site_login(c)
    env = {**a.cli_env(), "TETHER_PASSWORD": NEW_ADMIN_PASSWORD}

    r = run_cli("settings", "export", "--out", str(tmp_path / "cfg.yaml"), "--json", env=env, check=True)
    doc = yaml.safe_load((tmp_path / "cfg.yaml").read_text())
    assert doc["format"] == "tether-appliance-config/1" and "networking" in doc["sections"]
    doc["sections"]["networking"]["hostname"] = "cli-imported.example.test"
    doc["sections"]["security"]["syslog"]["port"] = 99999  # refused, the rest applied
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(doc))
    r = run_cli("settings", "import", str(tmp_path / "cfg.yaml"), env=env)
    assert r.returncode == 2 and "networking" in r.stdout.split("Applied:")[1].splitlines()[0] and "Refused: security" in r.stdout, r.stdout
    with a.client() as c:
        assert ok(c.get("/appliance/api/networking", headers=ah))["hostname"] == "cli-imported.example.test"
        assert ok(c.get("/appliance/api/security", headers=ah))["syslog"]["port"] == 514

    # a recovery kit needs a password of 8 characters at least; nothing is written without one
    r = run_cli("kit", "export", "--out", str(tmp_path / "kits"), env={**env, "TETHER_KIT_PASSWORD": "short"})
    assert r.returncode == 2 and "at least 8 characters" in r.stderr, r.stderr
    assert not list((tmp_path / "kits").glob("*.tkit*"))

    # factory reset: not confirmed, nothing happens; confirmed at the prompt, the site is gone
    r = run_cli("factory-reset", env=env, input="no\n")
    assert r.returncode == 1 and "not confirmed" in r.stderr
    with a.client() as c:
        assert ok(c.get("/appliance/api/site", headers=ah))["installed"] is True
    r = run_cli("factory-reset", env=env, input="factory reset\n")
    assert r.returncode == 0 and "factory state" in r.stdout, r.stderr
    with a.client() as c:
        ah = first_admin_login(c)  # a fresh appliance: admin / password, changed at first login
        assert ok(c.get("/appliance/api/site", headers=ah))["installed"] is False

    # shut down: --yes for scripts; the process ends cleanly
    r = run_cli("shutdown", "--yes", env=env, check=True)
    assert "shutting down" in r.stdout
    wait_for(lambda: a.proc.poll() is not None, timeout=20, what="the appliance process to exit")
    assert a.proc.returncode == 0
