"""Test helpers: start real appliance processes (``tether serve``) on
loopback, talk HTTPS to them pinned to their built-in certificate, and run
the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
TETHER = str(BIN / "tether")
VENDOR = str(BIN / "tether-vendor")
NEW_ADMIN_PASSWORD = "Appliance-pass-1"
NEW_SITE_PASSWORD = "Site-admin-pass-1"


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    cp = subprocess.run([TETHER, *args], capture_output=True, text=True, env=full_env, input=input, timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(f"tether {' '.join(args)} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
    return cp


def pinned_context(cert_path: str | Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert_path))
    ctx.check_hostname = False
    return ctx


@dataclass
class ApplianceProc:
    data: Path
    listen: list[str]
    proc: subprocess.Popen | None = None
    info: dict = field(default_factory=dict)
    log_path: Path | None = None
    env: dict = field(default_factory=dict)  # extra environment for the next start (e.g. TETHER_CRASH_AT)

    def start(self, timeout: float = 30) -> "ApplianceProc":
        ready = self.data.parent / f"{self.data.name}.ready.json"
        ready.unlink(missing_ok=True)
        self.log_path = self.data.parent / f"{self.data.name}.log"
        args = [TETHER, "serve", "--data", str(self.data), "--ready-file", str(ready)]
        for x in self.listen:
            args += ["--listen", x]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"appliance exited with {self.proc.returncode}: {self.log_path.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"appliance did not start: {self.log_path.read_text()}")
            time.sleep(0.05)
        self.info = json.loads(ready.read_text())
        return self

    @property
    def url(self) -> str:
        return self.info["urls"][0]

    def url_at(self, i: int) -> str:
        return self.info["urls"][i]

    @property
    def cert_path(self) -> str:
        return self.info["builtin_cert"]

    def client(self, base: str | None = None, **kw) -> httpx.Client:
        return httpx.Client(base_url=base or self.url, verify=pinned_context(self.cert_path), timeout=30, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def cli_env(self) -> dict:
        return {"TETHER_URL": self.url, "TETHER_PIN_CERT": self.cert_path}


def admin_token(c: httpx.Client, password: str = NEW_ADMIN_PASSWORD, accept: bool = False) -> str:
    r = c.post("/appliance/api/session", json={"username": "admin", "password": password, "accept_agreement": accept})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def first_admin_login(c: httpx.Client) -> dict:
    """Log in with admin / password, set the new password, return auth headers."""
    tok = admin_token(c, "password")
    h = {"Authorization": f"Bearer {tok}"}
    r = c.post("/appliance/api/password", headers=h,
               json={"current_password": "password", "new_password": NEW_ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return h


def site_token(c: httpx.Client, user: str = "admin", password: str = NEW_SITE_PASSWORD) -> str:
    r = c.post("/api/session", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def first_site_login(c: httpx.Client) -> dict:
    tok = site_token(c, "admin", "password")
    h = {"Authorization": f"Bearer {tok}"}
    r = c.post("/api/session/password", headers=h,
               json={"current_password": "password", "new_password": NEW_SITE_PASSWORD})
    assert r.status_code == 200, r.text
    return h


def api_token(c: httpx.Client, client_id: str, secret: str) -> str:
    r = c.post("/api/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                         "client_secret": secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def wait_for(pred, timeout: float = 30, every: float = 0.1, what: str = "condition"):
    """Poll ``pred`` until it returns something true (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def ok(r: httpx.Response, status: int = 200):
    """Assert the status (the body is the message when it differs); the JSON body, None when empty."""
    assert r.status_code == status, r.text
    return r.json() if r.content else None
