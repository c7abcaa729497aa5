"""OPS-01: the README's first command sets up and starts an appliance with a
site on the embedded default (SQLite, local disk), printing its URLs and the
first-login credentials."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import pinned_context

ROOT = Path(__file__).resolve().parent.parent


def test_readme_starts_with_the_two_commands():
    lines = [ln.strip() for ln in (ROOT / "README.md").read_text().splitlines()]
    commands = [ln for ln in lines if ln.startswith("./scripts/")]
    assert commands[:2] == ["./scripts/start", "./scripts/test"]
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.req("OPS-01", "SITE-04")
def test_start_script_serves_a_site_with_first_login_credentials(tmp_path):
    import httpx

    proc = subprocess.Popen([str(ROOT / "scripts" / "start"), "--var", str(tmp_path / "var"), "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=str(ROOT), start_new_session=True)
    out = []
    try:
        deadline = time.monotonic() + 120
        login_url = None
        while time.monotonic() < deadline and login_url is None:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            m = re.search(r"/login\s+(https://\S+/login)", line)
            if m:
                login_url = m.group(1)
        text = "".join(out)
        assert login_url, text
        assert "/appliance  admin / password" in text and "/login      admin / password" in text
        assert re.search(r"/appliance\s+https://127\.0\.0\.1:\d+/appliance", text)
        data = tmp_path / "var" / "appliance"
        assert (data / "appliance.db").exists() and (data / "site" / "site.db").exists()
        base = login_url.rsplit("/login", 1)[0]
        with httpx.Client(base_url=base, verify=pinned_context(data / "builtin-cert.pem")) as c:
            assert c.get("/health").status_code == 200
            r = c.post("/api/session", json={"username": "admin", "password": "password"})
            assert r.status_code == 200 and r.json()["must_change_password"] is True
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        proc.stdout.close()
