"""OPS-02: the `tether` command line against a running appliance: --json on
stdout, clear errors on stderr with documented exit codes."""

import json

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, run_cli


@pytest.mark.req("OPS-02", "APPL-05", "APPL-01")
def test_cli_first_login_status_and_settings(appliance, tmp_path):
    env = appliance.cli_env()
    cp = run_cli("status", "--json", env={**env, "TETHER_PASSWORD": "password"})
    assert cp.returncode == 3 and "change the default password" in cp.stderr and cp.stdout == ""
    cp = run_cli("password", "--face", "appliance", env={**env, "TETHER_PASSWORD": "password",
                                                         "TETHER_NEW_PASSWORD": NEW_ADMIN_PASSWORD})
    assert cp.returncode == 0, cp.stderr
    env["TETHER_PASSWORD"] = NEW_ADMIN_PASSWORD
    cp = run_cli("status", "--json", env=env)
    assert cp.returncode == 0, cp.stderr
    basics = json.loads(cp.stdout)
    assert basics["serial_number"].startswith("TTH")
    cp = run_cli("settings", "get-networking", env=env)
    net = json.loads(cp.stdout)
    net["dns_servers"] = ["192.0.2.53"]
    f = tmp_path / "net.json"
    f.write_text(json.dumps(net))
    assert run_cli("settings", "set-networking", str(f), env=env).returncode == 0
    assert json.loads(run_cli("settings", "get-networking", env=env).stdout)["dns_servers"] == ["192.0.2.53"]
    net["dns_servers"] = ["192.0.2.999"]
    f.write_text(json.dumps(net))
    cp = run_cli("settings", "set-networking", str(f), env=env)
    assert cp.returncode == 2 and "dns_servers.0" in cp.stderr
    f.write_text("{not json")
    cp = run_cli("settings", "set-networking", str(f), env=env)
    assert cp.returncode == 2 and "not JSON" in cp.stderr
    assert json.loads(run_cli("settings", "get-networking", env=env).stdout)["dns_servers"] == ["192.0.2.53"]
    cp = run_cli("audit", "--json", env=env)
    actions = [e["action"] for e in json.loads(cp.stdout)]
    assert "settings.networking.update" in actions and "password.change" in actions


@pytest.mark.req("OPS-02", "SITE-06", "SITE-05")
def test_cli_site_users_and_api_accounts(make_appliance):
    a = make_appliance(site=True)
    env = {**a.cli_env(), "TETHER_USER": "admin"}
    cp = run_cli("password", "--face", "site", env={**env, "TETHER_PASSWORD": "password",
                                                    "TETHER_NEW_PASSWORD": NEW_SITE_PASSWORD})
    assert cp.returncode == 0, cp.stderr
    env["TETHER_PASSWORD"] = NEW_SITE_PASSWORD
    info = json.loads(run_cli("site", "info", "--json", env=env, check=True).stdout)
    assert info["site_name"] == "demo" and info["connected_clients"]["total"] == 0
    cp = run_cli("users", "create", "dave", "--permission", "reporting", "--json",
                 env={**env, "TETHER_INITIAL_PASSWORD": "Dave-initial-1"})
    assert cp.returncode == 0 and json.loads(cp.stdout)["permissions"] == ["reporting"]
    cp = run_cli("users", "create", "dave", env={**env, "TETHER_INITIAL_PASSWORD": "Dave-initial-1"})
    assert cp.returncode == 5 and "already exists" in cp.stderr
    cp = run_cli("api", "create-account", "backup-bot", "--permission", "backup", "--json", env=env, check=True)
    acct = json.loads(cp.stdout)
    cp = run_cli("api", "token", "--json", env={**a.cli_env(), "TETHER_CLIENT_ID": acct["client_id"],
                                                "TETHER_CLIENT_SECRET": acct["client_secret"]}, check=True)
    token = json.loads(cp.stdout)["access_token"]
    # the backup-only token cannot list users: a clear permission error, exit 3
    cp = run_cli("users", "list", env={**a.cli_env(), "TETHER_TOKEN": token})
    assert cp.returncode == 3 and "users:manage" in cp.stderr
    cp = run_cli("api", "list-accounts", "--json", env=env, check=True)
    assert [x["name"] for x in json.loads(cp.stdout)] == ["backup-bot"]
    assert "client_secret" not in cp.stdout


@pytest.mark.req("OPS-02")
def test_cli_errors_have_exit_codes_and_hints(appliance, tmp_path):
    cp = run_cli("status", "--json", env={"TETHER_URL": "https://127.0.0.1:1", "TETHER_PASSWORD": "x",
                                          "TETHER_PIN_CERT": appliance.cert_path})
    err = json.loads(cp.stderr)  # with --json, the error is JSON too
    assert cp.returncode == 8 and err["message"].startswith("cannot reach") and err["hint"] and err["exit_code"] == 8
    cp = run_cli("status", env={"TETHER_PASSWORD": "x", "TETHER_URL": ""})
    assert cp.returncode == 2 and "TETHER_URL" in cp.stderr
    # a certificate we do not trust is refused (no pinning, system CAs only)
    cp = run_cli("status", env={"TETHER_URL": appliance.url, "TETHER_PASSWORD": "password"})
    assert cp.returncode == 8 and "CERTIFICATE_VERIFY_FAILED" in cp.stderr
    cp = run_cli("serve", "--data", str(tmp_path / "d"), "--listen", "nonsense")
    assert cp.returncode == 2 and "HOST:PORT" in cp.stderr
    cp = run_cli("init", "--data", str(appliance.data), "--trust-vendor-key", __file__)
    assert cp.returncode == 2 and "only when the appliance is initialised" in cp.stderr


@pytest.mark.req("OPS-02")
def test_serve_stops_cleanly_on_sigterm(appliance):
    with appliance.client() as c:
        assert c.get("/health").status_code == 503
    assert appliance.stop() == 0
