"""Fixtures for ``tether-integration`` tests: one real appliance per module with
a site, an API account holding exactly the permissions docs/integration.md
lists (``backup``, ``reporting``), and a way to run the program as a user
would (a subprocess, with a config file)."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import BIN, ApplianceProc, first_admin_login, first_site_login, free_port, ok, run_cli
from tests.s3server import s3_server  # noqa: F401  (the fixture, for the modules here)

INTEGRATION = str(BIN / "tether-integration")
_counter = itertools.count()
HOST = "127.0.34.2"


@dataclass
class Env:
    proc: ApplianceProc
    c: object
    ah: dict
    sh: dict
    client_id: str
    secret_file: Path
    password_file: Path

    def config(self, path: Path, *, dest: str, extra: str = "", state: Path | None = None,
               secret_file: Path | None = None) -> Path:
        """A config file for this site and ``dest`` (a TOML [destination] body)."""
        path.write_text(f"""
[site]
url = "{self.proc.url}"
pinned_cert = "{self.proc.cert_path}"
client_id = "{self.client_id}"
client_secret_file = "{secret_file or self.secret_file}"

[destination]
{dest}

[state]
dir = "{state or path.parent / 'state'}"

[backups]
every = "24h"
password_file = "{self.password_file}"

[sessions]
every = "1h"

[recordings]
every = "1h"
{extra}
""")
        return path

    def session(self, **kw) -> dict:
        return ok(self.c.post("/api/command/sessions", headers=self.sh,
                              json={"rep": "ann", "customer_host": "pc.example", **kw}), 201)

    def end(self, lsid: str) -> None:
        ok(self.c.post(f"/api/command/sessions/{lsid}/end", headers=self.sh, json={"reason": "rep_closed"}))

    def recording(self, lsid: str, kind: str, size: int) -> tuple[dict, str]:
        body = os.urandom(size)
        rec = ok(self.c.put(f"/api/command/sessions/{lsid}/recordings/{kind}", headers=self.sh, content=body), 201)
        return rec, hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def site_env(tmp_path_factory, vendor):
    d = tmp_path_factory.mktemp("integration-site")
    data = d / f"appliance{next(_counter)}"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    # a fixed address from this area's loopback range: the URL stays the same when a test restarts it
    proc = ApplianceProc(data, [f"{HOST}:{free_port(HOST)}"]).start()
    c = proc.client()
    try:
        ah = first_admin_login(c)
        sh = first_site_login(c)
        acct = ok(c.post("/api/api-accounts", headers=sh, json={"name": "integration",
                                                                 "permissions": ["backup", "reporting"]}), 201)
        secret = d / "client-secret"
        secret.write_text(acct["client_secret"] + "\n")
        pw = d / "backup-password"
        pw.write_text("Backup-pass-1\n")
        env = Env(proc, c, ah, sh, acct["client_id"], secret, pw)
        yield env
        c = env.c  # a test that restarted the appliance made a new client
    finally:
        c.close()
        proc.stop()


def integration(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``tether-integration ARGS`` as a user runs it (not a terminal: plain progress lines)."""
    return subprocess.run([INTEGRATION, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def files(root: Path) -> list[str]:
    """Every file in the destination folder (the state directory the tests keep beside it excluded)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
