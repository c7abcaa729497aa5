"""``tether serve --isolated``, the drill's scratch appliance (DR-02): it
serves its site on its own address but registers no job that reaches
outside (syslog, outbound events and mail, certificate reminders, support
desk, failover peer), and it refuses a data directory that is in a pair."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import TETHER, first_admin_login, pinned_context, run_cli, stop_process, wait_for

import httpx


@pytest.mark.req("DR-02")
def test_an_isolated_appliance_runs_no_outbound_job_and_refuses_a_paired_directory(tmp_path, vendor):
    data = tmp_path / "scratch"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    ready = tmp_path / "ready.json"
    log = open(tmp_path / "serve.log", "ab")
    proc = subprocess.Popen([TETHER, "serve", "--data", str(data), "--listen", "127.0.0.1:0", "--isolated",
                             "--ready-file", str(ready)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(ready.exists, 60, what="the isolated appliance listening")
        info = json.loads(ready.read_text())
        with httpx.Client(base_url=info["urls"][0], verify=pinned_context(info["builtin_cert"]), timeout=30) as c:
            assert c.get("/health").status_code == 200  # it serves its site
            h = first_admin_login(c)
            jobs = {j["name"] for j in c.get("/appliance/api/jobs", headers=h).json()}
        assert jobs == {"client-hub-sweep"}, jobs
    finally:
        stop_process(proc)
        log.close()
    (data / "failover").mkdir(exist_ok=True)
    (data / "failover" / "pair.json").write_text("{}")
    cp = subprocess.run([TETHER, "serve", "--data", str(data), "--listen", "127.0.0.1:0", "--isolated"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 2 and "in a failover pair" in cp.stderr
