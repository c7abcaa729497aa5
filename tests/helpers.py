"""Test helpers: start real appliance processes (``tether serve``) on
loopback, talk HTTPS to them pinned to their built-in certificate, and run
the CLI as a subprocess, move their clock (``ClockFile``); the one
``free_port``, the one ``wait_for`` and the one loopback SMTP sink
(``SmtpSink``) every test folder uses."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

import httpx
from aiosmtpd.controller import Controller

from tether.core.clock import ENV_CLOCK_FILE

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
class ClockFile:
    """The offset file ``tether.core.clock`` reads (TETHER_CLOCK_FILE) in the processes given ``env``:
    ``advance(seconds)`` moves their wall clock forward at once, instead of sleeping a lifetime out."""

    path: Path
    offset: float = 0.0

    @property
    def env(self) -> dict:
        return {ENV_CLOCK_FILE: str(self.path)}

    def set(self, offset: float) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(f"{offset!r}\n")
        tmp.replace(self.path)  # a new inode: the reader notices even within one mtime tick
        self.offset = offset

    def advance(self, seconds: float) -> None:
        self.set(self.offset + seconds)


@dataclass
class ApplianceProc:
    data: Path
    listen: list[str]
    env: dict = field(default_factory=dict)  # on top of os.environ at start()
    proc: subprocess.Popen | None = None
    info: dict = field(default_factory=dict)
    log_path: Path | None = None
    env: dict = field(default_factory=dict)  # extra environment for the next start (e.g. TETHER_CRASH_AT)
    prefix: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", NS] (it execs: same pid)

    def start(self, timeout: float = 30) -> "ApplianceProc":
        ready = self.data.parent / f"{self.data.name}.ready.json"
        ready.unlink(missing_ok=True)
        self.log_path = self.data.parent / f"{self.data.name}.log"
        args = [*self.prefix, TETHER, "serve", "--data", str(self.data), "--ready-file", str(ready)]
        for x in self.listen:
            args += ["--listen", x]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env})
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


def wait_for(pred, timeout: float = 30, every: float = 0.1, what: str | Callable[[], str] = "condition"):
    """Poll ``pred`` until it returns something true (returned), or fail after ``timeout`` seconds.
    ``what`` names the condition in the failure; a callable is asked only then (to show what was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
        time.sleep(every)


def stop_process(proc: subprocess.Popen | None, timeout: float = 10) -> int | None:
    """End a process the tests started: SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds.
    Its return code (None when there was no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class SmtpSink:
    """A loopback SMTP server (aiosmtpd) that keeps every message it accepts.

    ``envelopes`` are aiosmtpd envelopes (``mail_from``, ``rcpt_tos``,
    ``content``), ``mails()`` the same parsed. ``fail`` > 0 refuses that many
    DATA commands with 451. Keyword arguments go to aiosmtpd's ``Controller``
    (``tls_context``, ``require_starttls``, ``authenticator``, ``ssl_context``,
    ...). Use it as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, **controller_kw):
        self.envelopes: list = []
        self.fail = 0
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **controller_kw)

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fail > 0:
                self.fail -= 1
                return "451 4.3.0 relay busy, try later"
            self.envelopes.append(envelope)
        return "250 OK"

    def start(self) -> "SmtpSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def mails(self) -> list[EmailMessage]:
        with self._lock:
            return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]

    def count(self, pred: Callable[[EmailMessage], bool] = lambda m: True) -> int:
        return sum(1 for m in self.mails() if pred(m))

    def wait_for(self, pred: Callable[[EmailMessage], bool], timeout: float = 15) -> EmailMessage:
        """The first message for which ``pred`` is true, waiting up to ``timeout`` seconds for it."""
        return wait_for(lambda: next((m for m in self.mails() if pred(m)), None), timeout, every=0.05,
                        what=lambda: f"a matching mail; got {[(m['To'], m['Subject']) for m in self.mails()]}")

    def find(self, to: str, contains: str, timeout: float = 15) -> EmailMessage:
        """A message to ``to`` whose subject or body contains ``contains``."""
        return self.wait_for(lambda m: m["To"] == to and contains in str(m["Subject"]) + m.get_content(), timeout)


def ok(r: httpx.Response, status: int = 200):
    """Assert the status (the body is the message when it differs); the JSON body, None when empty."""
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def browser_login(page, login_url: str, password: str, user: str = "admin") -> None:
    """Log in through a face's login form in the browser (``login_url``: .../login or .../appliance/login)."""
    page.goto(login_url)
    page.fill("#username", user)
    page.fill("#password", password)
    with page.expect_navigation():  # the form posts: wait for the page it leads to (the next page,
        page.click("#login-submit")  # or the form again with its error), not just for the click
