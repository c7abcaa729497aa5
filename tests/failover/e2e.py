"""Helpers for the failover robustness tests (ROB-01, ROB-04, FO-02/03,
SEC-04) with real appliance processes, on top of pairs.py:

- ``Pair`` / ``make_pair``: two appliances with a site each and the same
  pre-shared key; ``establish`` pairs them with ``tether failover establish``;
  ``restart`` starts an appliance again on the same address (e.g. after a
  SIGKILL), ``converged`` says when the backup holds all of the primary's
  data and blobs.
- ``SiteState`` / ``read_state`` / ``live_state``: the content of a site
  database, hashed, read from a copy (``changelog.dump``: the synced data
  without this appliance's own failover, pre-shared key and cluster rows,
  and the change log apart), so that two appliances' copies compare by hash.
- ``blob_problems``: any blob in a store whose bytes do not hash to its name.
- ``Proxy``: a TCP proxy (asyncio, in a thread of its own) between the
  backup and the primary that can be cut, stalled, slowed and pointed at
  another upstream.
- ``FakePrimary``: an HTTPS peer that authenticates like the primary (the
  pre-shared key, the primary's certificate) and streams what the test says.
- ``mount_tmpfs`` / ``mount`` / ``umount`` / ``fill``: small disks that fill up.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tether.appliance.settings import Tls
from tether.certs.tls import ListenerContext
from tether.failover import peer_auth
from tether.failover.errors import PeerAuthError
from tether.site import changelog
from tether.site.locality import NOT_SYNCED_SETTINGS
from tests.failover.pairs import PSK, _site, cli, peer_addr, set_psk, status
from tests.tcpproxy import Proxy  # noqa: F401  (re-exported: the failover tests import it from here)
from tests.helpers import ApplianceProc, wait_for

__all__ = ["PSK", "FakePrimary", "Pair", "Proxy", "SiteState", "blob_problems", "cli", "converged", "db_state",
           "establish", "live_state", "make_pair", "peer_addr", "read_state", "restart", "set_psk",
           "status", "visible_blobs", "mount_tmpfs", "mount", "umount", "free_bytes", "fill"]


# --- the pair --------------------------------------------------------------------------------------------
@dataclass
class Pair:
    p: ApplianceProc
    pc: httpx.Client
    psh: dict
    b: ApplianceProc
    bc: httpx.Client
    bsh: dict

    def close(self) -> None:
        self.pc.close()
        self.bc.close()

    def restart_backup(self, env: dict | None = None) -> None:
        """Start the backup again on its address (``env``: e.g. TETHER_CRASH_AT); it may die before it is
        ready (a crash point), which is left for the caller to see in ``b.proc``."""
        self.bc.close()
        try:
            self.bc = restart(self.b, env)
        except RuntimeError:
            self.bc = self.b.client()

    @property
    def backup_site(self) -> Path:
        return (self.b.data / "site").resolve()

    @property
    def primary_site(self) -> Path:
        return (self.p.data / "site").resolve()


def make_pair(make_appliance) -> Pair:
    """Two appliances (127.0.0.1, 127.0.0.2) with the same site and pre-shared key, not yet paired."""
    p, pc, psh = _site(make_appliance, "127.0.0.1")
    b, bc, bsh = _site(make_appliance, "127.0.0.2")
    set_psk(pc, psh, PSK)
    set_psk(bc, bsh, PSK)
    return Pair(p, pc, psh, b, bc, bsh)


def establish(pair: Pair, self_address: str | None = None) -> dict:
    args = ["establish", "--peer", peer_addr(pair.b), "--json"]
    if self_address:
        args += ["--self-address", self_address]
    out = json.loads(cli(pair.p, *args).stdout)
    wait_for(lambda: status(pair.bc, pair.bsh)["role"] == "backup", 15, what="the backup role")
    return out


def converged(pair: Pair) -> bool:
    """The backup has applied the primary's whole log and holds every blob the primary holds (its status
    says nothing is pending, and its stores say so too: the status counts blobs a moment after a batch)."""
    head = status(pair.pc, pair.psh)["sync"]["head"]
    s = status(pair.bc, pair.bsh).get("sync") or {}
    return (s.get("applied_seq") == head and s.get("blobs_pending") == 0 and s.get("lag_entries") == 0
            and visible_blobs(pair.backup_site) >= visible_blobs(pair.primary_site))


def restart(a: ApplianceProc, env: dict | None = None, *, timeout: float = 60) -> httpx.Client:
    """Start ``a`` again on the address it had (its clients and peer keep working); a fresh client."""
    a.stop()
    a.listen = list(a.info["listen"])
    a.env = dict(env or {})
    a.start(timeout=timeout)
    return a.client()


# --- site content by hash ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteState:
    position: int  # the last change-log seq
    data: str  # SHA-256 of the synced data: every logged table, this appliance's own settings rows left out
    full: str  # the same with the change log
    seqs: tuple[int, ...]  # the change log's sequence numbers

    def short(self) -> str:
        return f"at {self.position}, data {self.data[:12]}, full {self.full[:12]}"


def _hash(conn: sa.Connection) -> SiteState:
    data, full = hashlib.sha256(), hashlib.sha256()
    table, seqs = None, []
    for line in changelog.dump(conn, include_log=True):
        obj = json.loads(line)
        if list(obj) == ["table"]:
            table = obj["table"]
        elif table == "site_settings" and obj["key"] in NOT_SYNCED_SETTINGS:
            continue
        elif table == "change_log":
            seqs.append(obj["seq"])
            full.update(line)
            continue
        data.update(line)
        full.update(line)
    return SiteState(max(seqs, default=0), data.hexdigest(), full.hexdigest(), tuple(seqs))


def db_state(db: Path) -> SiteState:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as c:
            return _hash(c)
    finally:
        engine.dispose()


def read_state(site_dir: Path, work: Path) -> SiteState:
    """The state of a stopped (or killed) appliance's site database, read from a copy of its files in ``work``:
    opening the copy recovers it from its write-ahead log as the next start would."""
    work.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (work / f"site.db{suffix}").unlink(missing_ok=True)
    for suffix in ("", "-wal"):
        src = site_dir / f"site.db{suffix}"
        if src.exists():
            shutil.copyfile(src, work / f"site.db{suffix}")
    return db_state(work / "site.db")


def live_state(site_dir: Path, work: Path) -> SiteState:
    """The state of a running appliance's site database, from a consistent copy (SQLite's backup API)."""
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "live.db"
    copy.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{site_dir / 'site.db'}?mode=ro", uri=True)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return db_state(copy)


def blob_problems(site_dir: Path) -> list[str]:
    """Blobs visible in the stores (files, recordings) whose content does not hash to their name."""
    bad = []
    for sub in ("files", "recordings"):
        root = site_dir / sub
        for p in root.rglob("*") if root.exists() else ():
            if p.is_file() and ".tmp" not in p.relative_to(root).parts:
                if hashlib.sha256(p.read_bytes()).hexdigest() != p.name:
                    bad.append(f"{sub}/{p.name}")
    return bad


def visible_blobs(site_dir: Path, sub: str = "files") -> set[str]:
    root = site_dir / sub
    return {p.name for p in root.rglob("*") if p.is_file() and ".tmp" not in p.relative_to(root).parts} \
        if root.exists() else set()


# the TCP proxy that can be cut: tests/tcpproxy.py (Proxy, re-exported here for the failover tests)


# --- a fake primary: the peer authentication right, the stream what the test says -------------------------
class _FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: "FakePrimary"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str, nonce: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        if nonce is not None and status < 300:
            self.send_header(peer_auth.H_SIGNATURE, peer_auth.sign_response(self.fake.key, nonce, status, body))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        self.close_connection = True
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        try:
            self.fake.verifier.verify(self.command, self.path, body, self.headers, self.client_address[0])
        except PeerAuthError as exc:
            self.fake.seen.append((self.command, path, exc.status))
            return self._send(exc.status, json.dumps(exc.to_dict()).encode(), "application/json")
        self.fake.seen.append((self.command, path, 200))
        nonce = self.headers[peer_auth.H_NONCE]
        if path == "/peer/v1/changes":
            return self._send(200, b"".join(self.fake.changes), "application/x-ndjson")
        if path == "/peer/v1/snapshot":
            return self._send(200, b"".join(self.fake.snapshot), "application/x-ndjson")
        if path == "/peer/v1/ack":
            return self._send(200, b'{"ok":true}', "application/json", nonce)
        self._send(404, b'{"error":"not_found","message":"no such endpoint"}', "application/json")

    do_GET = do_POST = _handle


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that refuses the answer and closes is expected here


class FakePrimary:
    """An HTTPS peer on 127.0.0.1 that authenticates requests with the pair's pre-shared key as the primary
    ``own_id`` would, presents ``cert`` (an ``Issued``: the primary's own certificate and key, so the backup's
    pin holds), signs its answers, and answers ``/peer/v1/changes`` and ``/peer/v1/snapshot`` with the lines
    in ``changes`` and ``snapshot``, which the test sets. ``seen`` lists (method, path, status)."""

    def __init__(self, key: bytes, own_id: str, cert, runtime_dir: Path):
        self.key = key
        self.verifier = peer_auth.PeerVerifier(lambda: key, own_id=own_id)
        self.changes: list[bytes] = []
        self.snapshot: list[bytes] = []
        self.seen: list[tuple[str, str, int]] = []
        context = ListenerContext(Tls())
        context.present(cert.cert_pem, cert.chain_pem, cert.key_der, runtime_dir)
        handler = type("Handler", (_FakeHandler,), {"fake": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.address = ("127.0.0.1", self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-primary",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# --- small disks ----------------------------------------------------------------------------------------------
def mount_tmpfs(path: Path, size: str) -> None:
    """A size-limited tmpfs at ``path`` (root only: skipped elsewhere, failed in CI)."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI: {r.stderr}")
        pytest.skip(f"mounting a size-limited tmpfs needs root ({r.stderr.strip()})")


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def umount(path: Path) -> None:
    for _ in range(50):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def fill(path: Path, leave: int = 0) -> int:
    """Write ``path`` until its file system has at most ``leave`` bytes free (or is full); the bytes written."""
    n = 0
    with open(path, "wb") as f:
        try:
            while (room := free_bytes(path.parent) - leave) > 0:
                f.write(b"\0" * min(room, 1 << 20))
                f.flush()
                n += min(room, 1 << 20)
        except OSError:
            pass
    return n
