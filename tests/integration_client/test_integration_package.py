"""IC-03 without an appliance: tether-integration is domain-clean (it imports
no domain package: it can only reach a site over HTTPS), and a bad
configuration is refused naming the setting, before anything runs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import tether.integration
from tests.integration_client.conftest import integration

ALLOWED = ("tether", "tether.core.errors", "tether.core.clock", "tether.core.crashpoints", "tether.cli.output")


@pytest.mark.req("IC-03")
def test_the_package_imports_no_domain_package():
    root = Path(tether.integration.__file__).parent
    seen = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.startswith("tether"):
                if node.module in ("tether", "tether.core"):  # from tether.core import clock
                    seen.update(f"{node.module}.{a.name}" if node.module == "tether.core" else node.module
                                for a in node.names)
                else:
                    seen.add(node.module)
            elif isinstance(node, ast.Import):
                seen.update(a.name for a in node.names if a.name.startswith("tether"))
    assert seen and seen <= set(ALLOWED), sorted(seen - set(ALLOWED))


@pytest.mark.req("IC-03")
def test_a_bad_configuration_is_refused_naming_the_setting(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[site]\nurl = "https://127.0.0.1:1"\nclient_id = "x"\nclient_secret_file = "{secret}"\n'
                   f'[destination]\npath = "{tmp_path / "out"}"\n[sessions]\nevery = "often"\n')
    r = integration("--config", str(cfg), "sync", "--once")
    assert r.returncode == 2 and "sessions.every: 'often' is not an interval" in r.stderr, r.stderr
    r = integration("--config", str(cfg), "--site-url", "http://plain.example", "sync", "--once")
    assert r.returncode == 2 and "site.url" in r.stderr and "Try:" in r.stderr
    cfg.write_text(cfg.read_text().replace('every = "often"', 'every = "1h"').replace(
        "[sessions]", '[backups]\nevery = "24h"\n[sessions]'))
    r = integration("--config", str(cfg), "sync", "--once")
    assert r.returncode == 2 and "backups: give password_file or password_env, or no_password = true" in r.stderr
    # nothing listens there: exit 8, and the state says so
    cfg.write_text(cfg.read_text().replace('[backups]\nevery = "24h"', "[backups]"))
    r = integration("--config", str(cfg), "--state-dir", str(tmp_path / "st"), "sync", "--once")
    assert r.returncode == 8 and "Error: cannot reach https://127.0.0.1:1" in r.stderr, r.stderr
    r = integration("--state-dir", str(tmp_path / "st"), "status", "--json")
    assert "cannot reach" in json.loads(r.stdout)["kinds"]["sessions"]["last_error"]["message"]


@pytest.mark.req("IC-03")
def test_run_retries_a_failed_kind_after_five_minutes_at_most(tmp_path):
    from tether.integration import config as C
    from tether.integration.cli import _due
    from tether.integration.state import State

    cfg = C.Config()
    cfg.schedules = {"backups": C.KindSchedule(86400.0), "sessions": C.KindSchedule(3600.0),
                     "recordings": C.KindSchedule(None)}
    st = State(tmp_path)
    t0 = 1_767_225_600.0
    assert _due(cfg, st, t0)[0] == ["backups", "sessions"]  # never pulled: due at once
    for kind in ("backups", "sessions"):
        st.kind(kind).update(last_attempt=t0, last_success=t0)
    assert _due(cfg, st, t0 + 60) == ([], t0 + 3600)
    st.kind("sessions").update(last_attempt=t0 + 3600, last_error={"at": t0 + 3600, "message": "down"})
    assert _due(cfg, st, t0 + 3601) == ([], t0 + 3900)  # not hammering a site that is down
    assert _due(cfg, st, t0 + 3900)[0] == ["sessions"]
