"""BK-01: one rule for a new backup's password on every face (the API, the
/login Software page and the CLI, online and offline): an empty or missing
password is refused with the same clear message; an unprotected backup is
written only when asked for explicitly."""

import json
import re
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import NEW_SITE_PASSWORD, run_cli
from tests.site.test_site_data_pages import html_login

REFUSAL = "give a backup password, or choose not to protect the backup"


def _protected(content: bytes, tmp_path) -> bool:
    path = tmp_path / "probe.nsb"
    path.write_bytes(content)
    with tarfile.open(path) as t:
        return json.loads(t.extractfile("nsb.json").read())["protected"]


@pytest.mark.req("BK-01")
def test_an_empty_backup_password_is_refused_everywhere_and_none_must_be_asked_for(ready_site, tmp_path):
    a, c, _ah, sh = ready_site
    # the API
    for body in ({"password": ""}, {"password": None}, {}, {"include_history": True}):
        r = c.post("/api/backup", headers=sh, json=body)
        assert r.status_code == 422, (body, r.status_code)
        assert r.json()["field"] == "password" and REFUSAL in r.json()["message"], r.json()
        assert "no_password" in r.json()["hint"]
    r = c.post("/api/backup", headers=sh, json={"no_password": True})
    assert r.status_code == 200 and not _protected(r.content, tmp_path)
    r = c.post("/api/backup", headers=sh, json={"password": "Backup-password-1"})
    assert r.status_code == 200 and _protected(r.content, tmp_path)
    # the /login Software page
    page = html_login(SimpleNamespace(proc=a))
    try:
        tok = re.search(r'name="csrf_token" value="([^"]+)"', page.get("/login/software").text).group(1)
        r = page.post("/login/software/backup", data={"csrf_token": tok, "password": "", "confirm_password": ""})
        assert r.status_code == 422 and REFUSAL in r.text
        r = page.post("/login/software/backup", data={"csrf_token": tok, "no_password": "on"})
        assert r.status_code == 200 and not _protected(r.content, tmp_path)
    finally:
        page.close()
    # the CLI, through the API and offline
    empty = tmp_path / "empty-pw"
    empty.write_text("\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {**a.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_SITE_PASSWORD}
    cp = run_cli("backup", "--out", str(out), "--password-file", str(empty), env=env)
    assert cp.returncode == 2 and REFUSAL in cp.stderr and "--no-password" in cp.stderr, cp.stderr
    cp = run_cli("backup", "--out", str(out), env={**env, "TETHER_BACKUP_PASSWORD": ""})
    assert cp.returncode == 2 and REFUSAL in cp.stderr, cp.stderr
    cp = run_cli("backup", "--out", str(out), "--no-password", "--json", env=env)
    assert cp.returncode == 0, cp.stderr
    assert not _protected(Path(json.loads(cp.stdout)["file"]).read_bytes(), tmp_path)
    a.stop()
    cp = run_cli("backup", "--data", str(a.data), "--out", str(out), "--password-file", str(empty))
    assert cp.returncode == 2 and REFUSAL in cp.stderr, cp.stderr
    assert not list(out.glob("*.partial"))
