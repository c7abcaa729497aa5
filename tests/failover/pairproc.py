"""Two real appliance processes as a failover pair, driven from outside:
the helpers bench/failover_time.py, bench/failover_partitions.py and
tests/failover/test_partitions.py share (the benches import them with the
repository root on sys.path). It owns making the data directories through
the real commands, starting, killing, pausing and restarting ``tether
serve`` (each in its own process group, on the same ports every time),
logging in, and pairing; it decides nothing about failover itself.

Each member listens on 127.0.0.1:ADMIN_PORT (the built-in certificate: the
driver's own requests, never cut) and on ADDRESS:PORT (the site's address:
clients and the peer link, which leaves from that address)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.helpers import NEW_ADMIN_PASSWORD, NEW_SITE_PASSWORD, pinned_context

BIN = Path(sys.executable).parent
TETHER = str(BIN / "tether")
PSK = "a pre-shared key for the failover benches and tests, long enough"
SITE_HOST = "support.tether.test"
P12_PASS = "Export-pass-1"


def run(*args, env: dict | None = None, timeout: float = 300) -> str:
    cp = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                        env={**os.environ, **(env or {})})
    if cp.returncode != 0:
        raise RuntimeError(f"failed: {' '.join(map(str, args))}\n{cp.stdout}\n{cp.stderr}")
    return cp.stdout


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def common_port(*hosts: str) -> int:
    """A port free on every one of ``hosts`` (a pair listens on the same port at both addresses)."""
    for _ in range(50):
        port = free_port(hosts[0])
        try:
            for h in hosts[1:]:
                with socket.socket() as s:
                    s.bind((h, port))
            return port
        except OSError:
            continue
    raise RuntimeError(f"no common free port on {hosts}")


@dataclass
class Vendor:
    """A vendor key and one site package, made once per work directory."""

    dir: Path

    @classmethod
    def make(cls, work: Path) -> "Vendor":
        from tether import __version__

        v = cls(work / "vendor")
        if not (v.dir / "site.tsp").exists():
            run(BIN / "tether-vendor", "keygen", "--out", v.dir)
            run(BIN / "tether-vendor", "site-package", "build", "--key", v.dir / "vendor.key", "--site-name", "bench",
                "--edition", "remote-support", "--version", __version__, "-o", v.dir / "site.tsp")
        return v

    def new_data(self, data: Path) -> Path:
        run(TETHER, "init", "--data", data, "--trust-vendor-key", self.dir / "vendor.pub")
        run(TETHER, "site-package", "install", self.dir / "site.tsp", "--data", data)
        return data


@dataclass
class Member:
    """One appliance of the pair: ``tether serve`` in its own process group."""

    name: str
    data: Path
    address: str
    port: int
    admin_port: int
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    info: dict = field(default_factory=dict)
    ready_at: float = 0.0  # time.monotonic() when the ready file was seen
    starts: int = 0
    site_headers: dict | None = None
    admin_headers: dict | None = None
    paused: bool = False
    command: list[str] | None = None  # instead of ``tether`` (e.g. crashtrace.py, which traces crash points)
    retired: bool = False  # stopped for good (``stop(final=True)``): a restart still in flight does not launch
    _launching: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def peer_address(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.admin_port}"

    @property
    def cert_path(self) -> str:
        return str(self.data / "builtin-cert.pem")

    @property
    def log_path(self) -> Path:
        return self.data.parent / f"{self.name}.log"

    # --- the process -----------------------------------------------------------------------------
    def launch(self) -> None:
        """Start ``tether serve`` without waiting (``wait_ready`` waits)."""
        with self._launching:
            if self.retired:
                raise RuntimeError(f"{self.name} was stopped for good")
            self.starts += 1
            ready = self.data.parent / f"{self.name}.ready.json"
            ready.unlink(missing_ok=True)
            with open(self.log_path, "ab") as logf:
                logf.write(f"\n=== start {self.starts} at {time.strftime('%H:%M:%S')} ===\n".encode())
                logf.flush()
                self.proc = subprocess.Popen(
                    [*(self.command or [TETHER]), "serve", "--data", str(self.data),
                     "--listen", f"127.0.0.1:{self.admin_port}",
                     "--listen", self.peer_address, "--ready-file", str(ready)],
                    stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **self.env})
            self.paused = False

    def wait_ready(self, timeout: float = 120) -> "Member":
        ready = self.data.parent / f"{self.name}.ready.json"
        deadline = time.monotonic() + timeout
        while not ready.exists():
            p = self.proc
            if p is None or p.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {p and p.returncode} (or was stopped): "
                                   f"{self.log_path.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"{self.name} did not start within {timeout:.0f} s")
            time.sleep(0.01)
        self.ready_at = time.monotonic()
        self.info = json.loads(ready.read_text())
        return self

    def start(self, timeout: float = 120) -> "Member":
        self.launch()
        return self.wait_ready(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL (the whole process group), and reap it."""
        p = self.proc
        if p is None:
            return
        self.signal(signal.SIGKILL)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            pass
        self.paused = False

    def stop(self, timeout: float = 20, final: bool = False) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; ``final``: and never launch again (a restart in flight in
        another thread then fails instead of leaving a process behind)."""
        if final:
            with self._launching:
                self.retired = True
        p = self.proc
        if p is None:
            return
        if self.paused:
            self.cont()
        if p.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.signal(signal.SIGKILL)  # whatever its group may have left
        self.proc = None

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def cont(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    # --- HTTP ------------------------------------------------------------------------------------
    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=pinned_context(self.cert_path), timeout=timeout)

    def login(self, c: httpx.Client, first: bool = False) -> dict:
        """Site admin headers (the first time: from admin / password, changing it)."""
        if first:
            r = c.post("/api/session", json={"username": "admin", "password": "password"})
            r.raise_for_status()
            h = {"Authorization": f"Bearer {r.json()['token']}"}
            c.post("/api/session/password", headers=h, json={"current_password": "password",
                                                              "new_password": NEW_SITE_PASSWORD}).raise_for_status()
        else:
            r = c.post("/api/session", json={"username": "admin", "password": NEW_SITE_PASSWORD})
            r.raise_for_status()
            h = {"Authorization": f"Bearer {r.json()['token']}"}
        self.site_headers = h
        return h

    def admin_login(self, c: httpx.Client) -> dict:
        r = c.post("/appliance/api/session", json={"username": "admin", "password": "password"})
        r.raise_for_status()
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        c.post("/appliance/api/password", headers=h, json={"current_password": "password",
                                                            "new_password": NEW_ADMIN_PASSWORD}).raise_for_status()
        self.admin_headers = h
        return h

    def api(self, method: str, path: str, timeout: float = 30, **kw) -> httpx.Response:
        with self.client(timeout) as c:
            r = c.request(method, path, headers=self.site_headers, **kw)
            if r.status_code == 401:
                self.login(c)
                r = c.request(method, path, headers=self.site_headers, **kw)
            return r

    def ok(self, method: str, path: str, status: int = 200, **kw):
        r = self.api(method, path, **kw)
        if r.status_code != status:
            raise RuntimeError(f"{self.name} {method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def status(self, timeout: float = 10) -> dict:
        return self.ok("GET", "/api/failover/status", timeout=timeout)

    def health(self, timeout: float = 1.0) -> tuple[int | None, str]:
        try:
            with httpx.Client(base_url=self.url, verify=pinned_context(self.cert_path), timeout=timeout) as c:
                r = c.get("/health")
            return r.status_code, r.text.strip()
        except (httpx.HTTPError, OSError) as exc:
            return None, type(exc).__name__

    def set_failover(self, **changes) -> dict:
        fs = {**self.ok("GET", "/api/config/settings/failover"), **changes}
        fs.pop("dns_tsig_secret_set", None)
        return self.ok("PUT", "/api/config/settings/failover", json=fs)


def start_all(*members: Member, timeout: float = 120) -> None:
    for m in members:
        m.launch()
    for m in members:
        m.wait_ready(timeout)


def stop_all(*members: Member, timeout: float = 20, final: bool = False) -> None:
    """Stop every member, in parallel (SIGTERM to all, then each waited for)."""
    for m in members:
        if final:
            with m._launching:
                m.retired = True
        if m.paused:
            m.cont()
        if m.running:
            m.signal(signal.SIGTERM)
    for m in members:
        m.stop(timeout)


def wait_until(pred, timeout: float, every: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = pred()
        except (httpx.HTTPError, OSError, RuntimeError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def site_certificate(a: Member, b: Member) -> str:
    """The site's certificate (for SITE_HOST) made on ``a``, exported as .p12, imported on ``b``, presented on
    both site addresses; returns the pin clients trust."""
    from tether.clients.trust import pin_of_pem
    import ssl

    with a.client() as ac, b.client() as bc:
        cert = ac.post("/appliance/api/certificates/self-signed", headers=a.admin_headers,
                       json={"name": "site", "fqdn": SITE_HOST, "days": 365})
        cert.raise_for_status()
        cid = cert.json()["id"]
        ac.put(f"/appliance/api/certificate-assignments/{a.address}", headers=a.admin_headers,
               json={"id": cid}).raise_for_status()
        p12 = ac.post(f"/appliance/api/certificates/{cid}/export", headers=a.admin_headers,
                      json={"passphrase": P12_PASS, "include_key": True})
        p12.raise_for_status()
        imp = bc.post("/appliance/api/certificates/import", headers=b.admin_headers,
                      files={"file": ("site.p12", p12.content)}, data={"password": P12_PASS, "name": "site"})
        imp.raise_for_status()
        bc.put(f"/appliance/api/certificate-assignments/{b.address}", headers=b.admin_headers,
               json={"id": imp.json()["id"]}).raise_for_status()
    pins = {pin_of_pem(ssl.get_server_certificate((m.address, m.port))) for m in (a, b)}
    if len(pins) != 1:
        raise RuntimeError(f"the two site addresses present different keys: {pins}")
    return pins.pop()


def make_members(work: Path, vendor: Vendor, addresses: tuple[str, str], names=("a", "b"),
                 env: dict | None = None) -> tuple[Member, Member]:
    """Two fresh appliances with the site installed (not started), on one common site port."""
    port = common_port(*addresses)
    out = []
    for name, addr in zip(names, addresses):
        data = vendor.new_data(work / name)
        out.append(Member(name, data, addr, port, free_port("127.0.0.1"), env=dict(env or {})))
    return out[0], out[1]


def pair(a: Member, b: Member, *, site_cert: bool = False) -> str | None:
    """Log in on both (first logins), optionally give both the site's certificate, set the pre-shared key on
    both and establish failover from ``a`` (primary); waits until ``b`` is a backup in sync. Returns the site
    certificate's pin (or None)."""
    for m in (a, b):
        with m.client() as c:
            m.admin_login(c)
            m.login(c, first=True)
    pin = site_certificate(a, b) if site_cert else None
    for m in (a, b):
        m.ok("PUT", "/api/config/settings/inter-appliance-psk", json={"psk": PSK})
    a.ok("POST", "/api/failover/establish", json={"peer": b.peer_address, "self_address": a.peer_address})
    wait_until(lambda: b.status()["role"] == "backup", 30, what=f"{b.name} the backup")
    wait_in_sync(b, 60)
    return pin


def wait_in_sync(backup: Member, timeout: float) -> dict:
    def synced():
        s = backup.status()
        sync = s.get("sync") or {}
        return s if s["role"] == "backup" and sync.get("connected") and sync.get("lag_entries") == 0 else None

    return wait_until(synced, timeout, what=f"{backup.name} in sync")


def automatic_failover(m: Member, timeout: int, test_ip: str, test_port: int, **extra) -> dict:
    return m.set_failover(automatic_failover=True, primary_timeout_seconds=timeout, connectivity_test_ips=[test_ip],
                          connectivity_test_method="tcp", connectivity_test_port=test_port, **extra)


class Probe:
    """A TCP listener standing for a connectivity test address (connects are answered)."""

    def __init__(self, ip: str, port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(64)
        self.ip, self.port = ip, self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True, name=f"probe-{ip}:{self.port}")
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.5)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self._stop = True
        self.sock.close()
