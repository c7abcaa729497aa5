"""Fixtures for the client tests: a site reached by a hostname the test
controls (a hosts-format file the clients re-read at every attempt), real
`tether-jump` / `tether-jumpoint` / `tether-rep` processes, and helpers to
deploy, wait and read the appliance's view of its clients."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.helpers import BIN, ok, stop_process, wait_for  # noqa: F401  (re-exported for the client tests)

JUMP = str(BIN / "tether-jump")
JUMPOINT = str(BIN / "tether-jumpoint")
REP = str(BIN / "tether-rep")
SITE_HOST = "support.tether.test"


@dataclass
class Hosts:
    """The hosts-format file the clients consult before DNS (TETHER_HOSTS_FILE)."""

    path: Path

    def point(self, address: str) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"# written by the test\n{address} {SITE_HOST}\n")
        tmp.replace(self.path)


@dataclass
class ClientProc:
    args: list[str]
    log: Path
    env: dict
    proc: subprocess.Popen | None = None

    def start(self) -> "ClientProc":
        self._f = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self._f, stderr=subprocess.STDOUT, env=self.env)
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = stop_process(self.proc)
        self._f.close()
        return code


@dataclass
class Clients:
    tmp: Path
    hosts: Hosts
    procs: list[ClientProc] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", NS]: clients run there

    @property
    def env(self) -> dict:
        return {**os.environ, "TETHER_HOSTS_FILE": str(self.hosts.path)}

    def deploy(self, c: httpx.Client, h: dict, kind: str = "jump", target: str | None = None, **extra) -> dict:
        return ok(c.post("/api/clients/deployments", headers=h, json={"kind": kind, "target": target, **extra}), 201)

    def install(self, kind: str, port: int, token: str, name: str, check: bool = True) -> subprocess.CompletedProcess:
        program = JUMP if kind == "jump" else JUMPOINT
        r = subprocess.run([*self.prefix, program, "install", "--site", f"{SITE_HOST}:{port}", "--token", token,
                            "--state", str(self.tmp / name), "--hostname", name],
                           capture_output=True, text=True, env=self.env, timeout=60)
        if check:
            assert r.returncode == 0, r.stdout + r.stderr
        return r

    def run(self, kind: str, name: str, *extra: str) -> ClientProc:
        program = JUMP if kind == "jump" else JUMPOINT
        p = ClientProc([*self.prefix, program, "run", "--state", str(self.tmp / name), *extra],
                       self.tmp / f"{name}.out", self.env).start()
        self.procs.append(p)
        return p

    def rep(self, port: int, pin: str, user: str, password: str, *args: str, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([REP, "--site", f"{SITE_HOST}:{port}", "--user", user, "--pin", pin, *args],
                              capture_output=True, text=True, input=input, timeout=timeout,
                              env={**self.env, "TETHER_PASSWORD": password})

    def rep_proc(self, port: int, pin: str, user: str, password: str, *args: str, name: str = "rep") -> ClientProc:
        p = ClientProc([REP, "--site", f"{SITE_HOST}:{port}", "--user", user, "--pin", pin, *args],
                       self.tmp / f"{name}.out", {**self.env, "TETHER_PASSWORD": password}).start()
        self.procs.append(p)
        return p


@pytest.fixture
def clients(tmp_path):
    hosts = Hosts(tmp_path / "hosts")
    hosts.point("127.0.0.1")
    cl = Clients(tmp_path / "clients", hosts)
    cl.tmp.mkdir()
    yield cl
    for p in cl.procs:
        p.stop()


def overview(c: httpx.Client, h: dict) -> dict:
    return ok(c.get("/api/clients", headers=h))


def online(c: httpx.Client, h: dict, kind: str, name: str) -> bool:
    ov = overview(c, h)
    items = ov["jump_clients"] if kind == "jump" else ov["jumpoints"]
    return any(i["name"] == name and i["online"] for i in items)


@pytest.fixture
def ws_loop():
    """An event loop thread for tests/wsclient.py's blocking WebSocket connections."""
    from tests.wsclient import Loop

    loop = Loop()
    yield loop
    loop.close()
