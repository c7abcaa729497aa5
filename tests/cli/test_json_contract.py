"""OPS-02, the --json contract (README, docs/cli.md): every command of every
entry point (tether, tether-vendor, tether-desk, tether-jump,
tether-jumpoint, tether-rep) accepts --json, and what the commands that did
not before print with it parses as JSON."""

import json
import select
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import pytest
import typer

from tests.helpers import (BIN, NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, TETHER, ApplianceProc, first_admin_login,
                           first_site_login, run_cli)

ROOT = Path(__file__).resolve().parents[2]


def _leaves(cmd, path):
    if hasattr(cmd, "commands"):  # a group (Typer's own click)
        for name, sub in cmd.commands.items():
            yield from _leaves(sub, [*path, name])
    else:
        yield " ".join(path), cmd


@pytest.mark.req("OPS-02")
def test_every_command_of_every_entry_point_accepts_json():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"tether", "tether-desk", "tether-jump", "tether-rep"} <= set(scripts)
    seen, missing = [], []
    for prog, target in scripts.items():
        module, attr = target.split(":")
        entry = getattr(import_module(module), attr)
        if not isinstance(entry, typer.Typer):  # a main() that sets up the process, then calls the module's app
            entry = import_module(module).app
        for path, cmd in _leaves(typer.main.get_command(entry), [prog]):
            seen.append(path)
            if "--json" not in [o for p in cmd.params for o in getattr(p, "opts", [])]:
                missing.append(path)
    assert len(seen) > 60 and "tether failover orphans apply" in seen
    assert missing == [], f"commands without --json: {missing}"


def _json(cp: subprocess.CompletedProcess):
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


@pytest.mark.req("OPS-02")
def test_the_json_of_the_commands_that_lacked_it_parses(tmp_path, vendor):
    from tether import __version__

    assert _json(run_cli("version", "--json")) == {"version": __version__}
    data = tmp_path / "a"
    init = _json(run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), "--json"))
    assert init["serial_number"].startswith("TTH") and init["data"] == str(data.resolve())
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    # serve --json: one JSON line on stdout once it listens
    proc = subprocess.Popen([TETHER, "serve", "--data", str(data), "--listen", "127.0.0.1:0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "tether serve --json printed nothing in 60 s"
        info = json.loads(proc.stdout.readline())
        assert info["appliance"] == info["urls"][0] + "/appliance" and info["builtin_cert_sha256"]
        a = ApplianceProc(data, [], info=info)
        with a.client() as c:
            first_admin_login(c)
            first_site_login(c)
        env = {**a.cli_env(), "TETHER_USER": "admin"}
        for section in ("networking", "security"):
            got = _json(run_cli("settings", f"get-{section}", "--json",
                                env={**env, "TETHER_PASSWORD": NEW_ADMIN_PASSWORD}))
            assert isinstance(got, dict) and got
        got = _json(run_cli("config", "get", "settings/failover", "--json",
                            env={**env, "TETHER_PASSWORD": NEW_SITE_PASSWORD}))
        assert "automatic_failover" in got
    finally:
        proc.terminate()
        proc.wait(15)
        proc.stdout.close()
    # the jump client's status, from a kept identity
    from tether.clients.agent import Identity

    state = tmp_path / "jump"
    Identity("site.example", 443, "jump", "c-1", "s3cret", "web-01", {"pin": "sha256/x"}).save(state)
    st = _json(subprocess.run([str(BIN / "tether-jump"), "status", "--state", str(state), "--json"],
                              capture_output=True, text=True, timeout=60))
    assert st["name"] == "web-01" and "s3cret" not in json.dumps(st)
    # the desk's token create (the one desk command that printed bare text)
    desk = [sys.executable, "-m", "tether.desk"]
    dd = tmp_path / "desk"
    cust = _json(subprocess.run([*desk, "customer", "add", "Acme", "--rep", "Ops <ops@acme.test>",
                                 "--data", str(dd), "--json"],
                                capture_output=True, text=True, timeout=60))
    tok = _json(subprocess.run([*desk, "token", "create", "a1", "--customer", str(cust["id"]), "--contact",
                                "ops@acme.test", "--data", str(dd), "--json"], capture_output=True, text=True,
                               timeout=60))
    assert tok["name"] == "a1" and tok["token"]
