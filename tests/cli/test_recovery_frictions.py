"""Issue 17, the frictions of the recovery path as a newcomer walks it: hints that name the command that
fixes the problem, the CLI's output (ISO times, tables, JSON errors, kind suggestions, the backup and login
passwords apart, one variable per admin, progress on a terminal), the audit log (one login per session;
failed restores and imports on record) and the install command of a jump-client deployment (the host
name, the hosts file kept, the name that does not resolve). One appliance with a site and one without,
shared by the module; everything through the real CLI and HTTPS."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import stat
import subprocess
import time

import httpx
import pytest
import yaml

from tests.helpers import (BIN, NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, ApplianceProc, first_admin_login,
                           first_site_login, ok, run_cli, site_token, stop_process, wait_for)

BACKUP_PW = "Backup-pass-17"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


@pytest.fixture(scope="module")
def env_base(tmp_path_factory):
    """No TETHER_* variable of the caller leaks in; the session cache is this module's own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    cache = tmp_path_factory.mktemp("cache") / "sessions.json"
    return {**clean, "TETHER_SESSION_CACHE": str(cache), "COLUMNS": "200"}, cache


def _proc(data, env_base) -> ApplianceProc:
    return ApplianceProc(data, ["127.0.0.1:0"], env={}).start()


@pytest.fixture(scope="module")
def site_app(tmp_path_factory, vendor, env_base):
    """(appliance, client, /appliance headers, site headers): a site installed, both first logins done."""
    data = tmp_path_factory.mktemp("a") / "data"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    a = _proc(data, env_base)
    c = a.client()
    ah, sh = first_admin_login(c), first_site_login(c)
    yield a, c, ah, sh
    c.close()
    a.stop()


@pytest.fixture(scope="module")
def bare_app(tmp_path_factory, vendor, env_base):
    """A fresh appliance: no site, the /appliance admin still on the default password."""
    data = tmp_path_factory.mktemp("b") / "data"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    a = _proc(data, env_base)
    yield a
    a.stop()


def cli(a: ApplianceProc, env_base, *args, **extra_env):
    env, _ = env_base
    return subprocess.run([str(BIN / "tether"), *args], capture_output=True, text=True, timeout=120,
                          env={**env, **a.cli_env(), **extra_env})


def site_env(**more):
    return {"TETHER_USER": "admin", "TETHER_SITE_PASSWORD": NEW_SITE_PASSWORD, **more}


def _backup(site_app, env_base, tmp_path) -> str:
    a = site_app[0]
    cp = cli(a, env_base, "backup", "--out", str(tmp_path), "--json", **site_env(TETHER_BACKUP_PASSWORD=BACKUP_PW))
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)["file"]


# --- 5: hints that name the fixing command ------------------------------------------------------------------
@pytest.mark.req("OPS-02")
def test_agreement_and_default_password_errors_name_the_command(site_app, bare_app, env_base):
    a, c, ah, _sh = site_app
    sec = ok(c.get("/appliance/api/security", headers=ah))
    sec["login_agreement"] = {"enabled": True, "title": "Terms", "text": "Be nice."}
    ok(c.put("/appliance/api/security", headers=ah, json=sec))
    try:
        cp = cli(a, env_base, "status", TETHER_APPLIANCE_PASSWORD=NEW_ADMIN_PASSWORD)
        assert cp.returncode == 2 and "accept the login agreement" in cp.stderr, cp.stderr
        assert "Try:" in cp.stderr and "--accept-agreement" in cp.stderr
        cp = cli(a, env_base, "status", "--accept-agreement", TETHER_APPLIANCE_PASSWORD=NEW_ADMIN_PASSWORD)
        assert cp.returncode == 0, cp.stderr
    finally:
        sec["login_agreement"]["enabled"] = False
        tok = c.post("/appliance/api/session", json={"username": "admin", "password": NEW_ADMIN_PASSWORD,
                                                     "accept_agreement": True}).json()["token"]
        ok(c.put("/appliance/api/security", headers={"Authorization": f"Bearer {tok}"}, json=sec))
    # the default password: the command that changes it
    cp = cli(bare_app, env_base, "status", TETHER_APPLIANCE_PASSWORD="password")
    assert cp.returncode == 3 and "change the default password" in cp.stderr, cp.stderr
    assert "Try: tether password --face appliance" in cp.stderr


@pytest.mark.req("OPS-02")
def test_restore_hints_wrong_password_and_no_site(site_app, bare_app, env_base, tmp_path, vendor):
    a = site_app[0]
    nsb = _backup(site_app, env_base, tmp_path)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    cp = cli(a, env_base, "verify", nsb, "--backup-password-file", str(wrong))
    assert cp.returncode == 7 and "wrong password for this backup" in cp.stderr, cp.stderr
    hint = cp.stderr.split("Try:", 1)[1]
    assert hint.index("check the password") < hint.index("cannot be recovered"), hint
    # online onto an appliance with no site: says so, with what to do, and not as an authentication failure
    cp = cli(bare_app, env_base, "restore", nsb, "--user", "admin", TETHER_SITE_PASSWORD="password",
             TETHER_BACKUP_PASSWORD=BACKUP_PW)
    assert cp.returncode == 4 and "no site is installed" in cp.stderr, cp.stderr
    assert "Try:" in cp.stderr and "tether site-package install" in cp.stderr
    # offline, restore first and install the package after (the order a rebuild may take): the install says
    # the site is in place already and that nothing more is needed, and succeeds
    data = tmp_path / "fresh"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    env = {"TETHER_BACKUP_PASSWORD": BACKUP_PW}
    run_cli("restore", nsb, "--data", str(data), env=env, check=True)
    cp = run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data))
    assert cp.returncode == 0, cp.stderr
    assert "already installed" in cp.stdout and "nothing more to do" in cp.stdout, cp.stdout
    cp = run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), "--json")
    assert json.loads(cp.stdout)["action"] == "none"


# --- 7: CLI polish ----------------------------------------------------------------------------------------
@pytest.mark.req("OPS-02")
def test_audit_times_site_table_json_errors_and_kind_suggestion(site_app, env_base):
    a = site_app[0]
    env = {"TETHER_APPLIANCE_PASSWORD": NEW_ADMIN_PASSWORD, **site_env()}
    # the two admins' passwords side by side, each in its own variable (no TETHER_PASSWORD)
    cp = cli(a, env_base, "audit", "--limit", "5", **env)
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert lines and all(ISO.match(x) for x in lines), lines
    cp = cli(a, env_base, "audit", "--face", "site", "--limit", "5", **env)
    assert cp.returncode == 0 and all(ISO.match(x) for x in cp.stdout.splitlines()), cp.stdout
    cp = cli(a, env_base, "site", "info", **env)
    assert cp.returncode == 0, cp.stderr
    assert "{" not in cp.stdout and "'" not in cp.stdout, cp.stdout
    rows = dict(re.split(r"\s{2,}", x.strip(), maxsplit=1) for x in cp.stdout.splitlines() if x.strip())
    assert rows["site_name"] == "demo", rows
    # with --json, an error is JSON on stderr, with the exit code
    cp = cli(a, env_base, "status", "--json", TETHER_APPLIANCE_PASSWORD="Wrong-password-1")
    assert cp.returncode == 3 and cp.stdout == ""
    err = json.loads(cp.stderr)
    assert err["error"] == "unauthorized" and err["exit_code"] == 3 and err["message"], err
    cp = cli(a, env_base, "config", "list", "settings/jump_clients", "--json", **env)
    assert cp.returncode == 2 and json.loads(cp.stderr)["hint"].startswith("did you mean settings/jump-clients?")
    cp = cli(a, env_base, "config", "get", "jump_client_groups", **env)
    assert cp.returncode == 2 and "Try: did you mean jump-client-groups?" in cp.stderr, cp.stderr
    assert cli(a, env_base, "config", "get", "settings/jump-clients", **env).returncode == 0


@pytest.mark.req("OPS-02")
def test_backup_help_keeps_the_two_passwords_apart(env_base):
    env, _ = env_base
    for cmd in ("backup", "restore"):
        out = subprocess.run([str(BIN / "tether"), cmd, "--help"], capture_output=True, text=True,
                             env=env, timeout=60).stdout
        flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", out).split())
        assert "TETHER_BACKUP_PASSWORD" in flat and "--backup-password-file" in flat, out
        assert "--login-password" in flat and "LOGIN password, not the backup's" in flat, out


def _on_terminal(args: list[str], env: dict) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe); what the terminal showed."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif p.poll() is not None:
            break
    p.wait(10)
    p.stdout.close()
    os.close(master)
    return p.returncode, seen.decode(errors="replace")


@pytest.mark.req("OPS-02")
def test_progress_on_a_terminal_only(site_app, env_base, tmp_path, vendor):
    a = site_app[0]
    env, _ = env_base
    nsb = _backup(site_app, env_base, tmp_path)
    penv = {**env, "TETHER_BACKUP_PASSWORD": BACKUP_PW, "TERM": "xterm"}
    rc, shown = _on_terminal([str(BIN / "tether"), "verify", nsb], penv)
    assert rc == 0 and "Verifying" in shown and "0:00:0" in shown, shown
    cp = subprocess.run([str(BIN / "tether"), "verify", nsb], capture_output=True, text=True, env=penv, timeout=60)
    assert cp.returncode == 0 and cp.stderr == "", cp.stderr  # not a terminal: no progress
    # seed (offline) and an online restore show theirs too
    data = tmp_path / "seeded"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    rc, shown = _on_terminal([str(BIN / "tether"), "site", "seed", "--data", str(data), "--sessions", "20",
                              "--files", "1", "--recordings", "0", "--users", "3", "--teams", "1",
                              "--jump-clients", "2", "--max-file-mb", "0.01"], penv)
    assert rc == 0 and "Seeding" in shown and "1/1" in shown, shown
    rc, shown = _on_terminal([str(BIN / "tether"), "restore", nsb], {**penv, **a.cli_env(), **site_env()})
    assert rc == 0 and "Restoring" in shown, shown


# --- 8: audit ---------------------------------------------------------------------------------------------
def _site_h(c) -> dict:
    """Site headers for now (a restore earlier in the module logged everyone out)."""
    return {"Authorization": "Bearer " + site_token(c)}


def _logins(c, h, path) -> int:
    return sum(1 for e in ok(c.get(path, headers=h, params={"limit": 500})) if e["action"] == "login")


@pytest.mark.req("OPS-02")
def test_cli_commands_reuse_one_session(site_app, env_base):
    a, c, ah, _ = site_app
    sh = _site_h(c)
    _, cache = env_base
    env = {"TETHER_APPLIANCE_PASSWORD": NEW_ADMIN_PASSWORD, **site_env()}
    before_a = _logins(c, ah, "/appliance/api/audit")
    before_s = _logins(c, sh, "/api/reporting/audit")
    for _ in range(3):
        assert cli(a, env_base, "status", **env).returncode == 0
        assert cli(a, env_base, "users", "list", **env).returncode == 0
    assert _logins(c, ah, "/appliance/api/audit") - before_a <= 1
    assert _logins(c, sh, "/api/reporting/audit") - before_s <= 1
    # the cache at rest: 0600, no token in clear
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    doc = json.loads(cache.read_text())
    assert doc and all(v["token"].startswith("tsb1:") and v["expires_at"] > time.time() for v in doc.values())
    # a wrong password does not ride on the cached session
    cp = cli(a, env_base, "status", TETHER_APPLIANCE_PASSWORD="Wrong-password-1")
    assert cp.returncode == 3 and "Error:" in cp.stderr
    # a session the appliance ended is replaced by a new login, not an error
    for v in doc.values():
        v["token"] = v["token"][:-6] + "AAAAAA"  # damaged: does not open, a fresh login replaces it
    cache.write_text(json.dumps(doc))
    assert cli(a, env_base, "status", **env).returncode == 0
    ok(c.delete("/appliance/api/session", headers={"Authorization": "Bearer " + _cached_token(cache)}))
    assert cli(a, env_base, "status", **env).returncode == 0


def _cached_token(cache) -> str:
    from tether.cli.credentials import SessionCache

    c = SessionCache(cache)
    key = next(k for k in json.loads(cache.read_text()) if k.startswith("appliance "))
    _, url, user = key.split(" ")
    return c.get("appliance", url, user, NEW_ADMIN_PASSWORD)


@pytest.mark.req("OPS-02")
def test_failed_restore_and_import_are_on_record(site_app, env_base, tmp_path):
    a, c, ah, _ = site_app
    sh = _site_h(c)
    nsb = _backup(site_app, env_base, tmp_path)
    cp = cli(a, env_base, "restore", nsb, **site_env(TETHER_BACKUP_PASSWORD="not-the-password"))
    assert cp.returncode == 7
    entry = next(e for e in ok(c.get("/appliance/api/audit", headers=ah)) if e["action"] == "site.restore.failed")
    assert "wrong password" in json.dumps(entry["details"])
    # the site itself is left exactly as it was: not even an audit row of its own
    assert not [e for e in ok(c.get("/api/reporting/audit", headers=sh)) if e["action"] == "site.restore.failed"]
    r = c.post("/appliance/api/config/import", headers=ah, files={"file": ("x.yaml", b"format: nope\n")})
    assert r.status_code == 400
    entry = next(e for e in ok(c.get("/appliance/api/audit", headers=ah)) if e["action"] == "config.import.failed")
    assert "not an /appliance configuration export" in json.dumps(entry["details"])
    # an export from a machine with other addresses: imported, with a warning naming them
    doc = yaml.safe_load(c.get("/appliance/api/config/export", headers=ah).text)
    doc["sections"]["networking"]["interfaces"] = [{"name": "eth0", "addresses": [
        {"address": "10.99.0.5", "netmask": "24"}]}]
    doc["sections"] = {"networking": doc["sections"]["networking"]}
    r = ok(c.post("/appliance/api/config/import", headers=ah,
                  files={"file": ("c.yaml", yaml.safe_dump(doc).encode())}))
    assert r["applied"] == ["networking"] and "10.99.0.5" in r["warnings"][0] and "127.0.0.1" in r["warnings"][0]


# --- 4: the jump-client deployment ------------------------------------------------------------------------
@pytest.mark.req("CL-03", "OPS-05")
def test_deployment_names_the_host_name_and_the_client_keeps_its_hosts_file(site_app, env_base, tmp_path, page):
    a, c, ah, _ = site_app
    sh = _site_h(c)
    port = httpx.URL(a.url).port
    net = ok(c.get("/appliance/api/networking", headers=ah))
    dep = ok(c.post("/api/clients/deployments", headers=sh, json={"kind": "jump"}), 201)
    assert dep["site_source"] == "address" and dep["command"].startswith(f"tether-jump install --site 127.0.0.1:{port} ")
    assert "Networking > Hostname" in dep["site_note"]
    net["hostname"] = "support.frictions.test"
    ok(c.put("/appliance/api/networking", headers=ah, json=net))
    dep = ok(c.post("/api/clients/deployments", headers=sh, json={"kind": "jump"}), 201)
    assert dep["site_source"] == "hostname"
    assert dep["command"] == f"tether-jump install --site support.frictions.test:{port} --token {dep['token']}"
    # the page shows the same command, and says where the name comes from
    page.goto(a.url + "/login")
    page.fill("#username", "admin")
    page.fill("#password", NEW_SITE_PASSWORD)
    page.click("#login-submit")
    page.goto(a.url + "/login/clients")
    page.click("#create-jump-deployment")
    assert page.input_value("#deployment-command").startswith(f"tether-jump install --site support.frictions.test:{port} ")
    assert "host name support.frictions.test" in page.inner_text("#deployment-site")
    # install through a hosts file; the printed next command is the whole command: run finds the hosts file
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 support.frictions.test\n")
    state = tmp_path / "jc"
    env, _ = env_base
    jump = str(BIN / "tether-jump")
    cp = subprocess.run([jump, "install", "--site", f"support.frictions.test:{port}", "--token", dep["token"],
                         "--state", str(state), "--hostname", "fr-01", "--hosts-file", str(hosts), "--json"],
                        capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    assert out["run"] == f"tether-jump run --state {state}" and out["hosts_file"] == str(hosts)
    run = subprocess.Popen([jump, *out["run"].split(" ")[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=env)
    try:
        wait_for(lambda: any(j["name"] == "fr-01" and j["online"]
                             for j in ok(c.get("/api/clients", headers=sh))["jump_clients"]), 20,
                 what="the client online through its kept hosts file")
    finally:
        stop_process(run)
    # a host name that does not resolve: the error names it
    dep2 = ok(c.post("/api/clients/deployments", headers=sh, json={"kind": "jump"}), 201)
    cp = subprocess.run([jump, "install", "--site", f"nowhere.frictions.invalid:{port}", "--token", dep2["token"],
                         "--state", str(tmp_path / "jc2")], capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode != 0 and "nowhere.frictions.invalid" in cp.stderr, cp.stderr
    net["hostname"] = "tether.local"
    ok(c.put("/appliance/api/networking", headers=ah, json=net))
