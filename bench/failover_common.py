"""What the failover benchmarks share (bench/failover_rpo.py, failover_incremental.py, failover_lag.py); not a
benchmark itself.

- ``make_sites``: two appliance data directories with the same site package installed (one vendor key, one
  package), through the real commands; the caller may seed the primary's before it starts.
- ``Pair``: the two appliances as REAL ``tether serve`` processes, the primary on 127.0.0.1, the backup on
  127.0.0.2 (bench/clients_hold.py ``Appliance``: own process group, every wait bounded), the same
  pre-shared key set on both through the API, ``tether failover establish`` run on the primary (the CLI, as an
  administrator would), and the status of either side (``GET /api/failover/status``).
- ``Writers``: a load generator of acknowledged writes: several threads, each with its own keep-alive HTTPS
  client, creating canned messages through the primary's API (``POST /api/config/canned-messages``), paced to a
  total rate (or as fast as they go), recording each acknowledged write's name, the wall-clock time its 2xx
  answer arrived and its latency.
- ``names_in``: which of those names a site database holds (read-only; SQLite's WAL lets a reader in while the
  appliance runs); ``blobs_missing``: the blobs the primary's site refers to that the backup does not hold yet.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sqlite3
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx

from clients_hold import ADMIN_PASSWORD, BIN, Appliance, log, run, site_admin

PSK = "tether bench pre-shared key for the failover pair, 0123456789"
PRIMARY_HOST, BACKUP_HOST = "127.0.0.1", "127.0.0.2"


def make_sites(work: Path) -> tuple[Path, Path]:
    """Data directories ``work/primary/appliance`` and ``work/backup/appliance``, each with the site installed."""
    from tether import __version__

    run(BIN / "tether-vendor", "keygen", "--out", work / "vendor")
    run(BIN / "tether-vendor", "site-package", "build", "--key", work / "vendor" / "vendor.key", "--site-name",
        "bench", "--edition", "remote-support", "--version", __version__, "-o", work / "site.tsp")
    out = []
    for side in ("primary", "backup"):
        data = work / side / "appliance"
        data.parent.mkdir(parents=True, exist_ok=True)
        run(BIN / "tether", "init", "--data", data, "--trust-vendor-key", work / "vendor" / "vendor.pub")
        run(BIN / "tether", "site-package", "install", work / "site.tsp", "--data", data)
        out.append(data)
    return out[0], out[1]


def site_db(data: Path) -> Path:
    from tether.core.paths import DataDir

    return DataDir.at(data).site_db


def names_in(data: Path, names: list[str], table: str = "canned_messages") -> set[str]:
    """The names of ``names`` that the site database of ``data`` holds (read-only look at a live database)."""
    con = sqlite3.connect(f"file:{site_db(data)}?mode=ro", uri=True, timeout=30)
    try:
        found: set[str] = set()
        for i in range(0, len(names), 500):
            chunk = names[i:i + 500]
            q = f"SELECT name FROM {table} WHERE name IN ({','.join('?' * len(chunk))})"
            found.update(r[0] for r in con.execute(q, chunk))
        return found
    finally:
        con.close()


def blobs_missing(primary: Path, backup: Path) -> int:
    """Blobs the primary's site refers to (file store, recordings) that the backup's stores do not hold yet
    (``<store>/<sha[:2]>/<sha[2:4]>/<sha>``, site/blobs.py): the backup's ``blobs_pending`` is only recounted
    when its blob job next scans, so it can read 0 for a moment after new references arrive."""
    from tether.core.paths import DataDir

    con = sqlite3.connect(f"file:{site_db(primary)}?mode=ro", uri=True, timeout=30)
    try:
        refs = [("files", r[0]) for r in con.execute("SELECT sha256 FROM store_files")]
        refs += [("recordings", r[0]) for r in con.execute("SELECT sha256 FROM recordings")]
    finally:
        con.close()
    d = DataDir.at(backup)
    roots = {"files": d.files_dir, "recordings": d.recordings_dir}
    return sum(1 for kind, sha in set(refs) if not (roots[kind] / sha[:2] / sha[2:4] / sha).exists())


def tls_context(cert: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    return ctx


class Pair:
    """The primary and the backup, both serving; ``establish`` pairs them."""

    def __init__(self, work: Path, pdata: Path, bdata: Path):
        self.work = work
        self.primary = Appliance(pdata, pdata.parent, PRIMARY_HOST)
        self.backup = Appliance(bdata, bdata.parent, BACKUP_HOST)
        self.ph: dict = {}
        self.bh: dict = {}

    def start(self) -> "Pair":
        self.primary.start()
        self.backup.start()
        with self.primary.client() as c:
            self.ph = site_admin(c)
            c.put("/api/config/settings/inter-appliance-psk", headers=self.ph, json={"psk": PSK}).raise_for_status()
        with self.backup.client() as c:
            self.bh = site_admin(c)
            c.put("/api/config/settings/inter-appliance-psk", headers=self.bh, json={"psk": PSK}).raise_for_status()
        return self

    def cli(self, a: Appliance, *args: str, timeout: float = 120) -> dict:
        """``tether failover ARGS --json`` against appliance ``a``; its JSON answer."""
        env = {**os.environ, "TETHER_URL": a.url, "TETHER_PIN_CERT": a.info["builtin_cert"], "TETHER_USER": "admin",
               "TETHER_PASSWORD": ADMIN_PASSWORD}
        cp = subprocess.run([str(BIN / "tether"), "failover", *args, "--json"], capture_output=True, text=True,
                            env=env, timeout=timeout)
        if cp.returncode != 0:
            raise SystemExit(f"tether failover {' '.join(args)} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
        return json.loads(cp.stdout)

    def establish(self) -> dict:
        return self.cli(self.primary, "establish", "--peer", self.backup.info["listen"][0])

    def status(self, a: Appliance) -> dict:
        """``GET /api/failover/status`` of ``a`` (logging in again once if its token is refused)."""
        with a.client() as c:
            h = self.ph if a is self.primary else self.bh
            r = c.get("/api/failover/status", headers=h, timeout=10)
            if r.status_code == 401:
                h.update(site_admin(c))
                r = c.get("/api/failover/status", headers=h, timeout=10)
            r.raise_for_status()
            return r.json()

    def wait_caught_up(self, timeout: float, what: str = "the backup to catch up") -> dict:
        """Wait until the backup is connected, holds the primary's head and every blob its site refers to; the
        backup's sync status then."""
        deadline = time.monotonic() + timeout
        last: dict = {}
        while time.monotonic() < deadline:
            try:
                ps = self.status(self.primary)
                bs = self.status(self.backup)
            except (httpx.HTTPError, OSError):
                time.sleep(0.5)
                continue
            last = bs.get("sync") or {}
            head = (ps.get("sync") or {}).get("head")
            if bs.get("role") == "backup" and last.get("connected") and head is not None \
                    and last.get("applied_seq") == head and last.get("blobs_pending") == 0 \
                    and blobs_missing(self.primary.data, self.backup.data) == 0:
                return self.status(self.backup)["sync"]  # read again: the blob counters may have moved
            time.sleep(0.25)
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}; backup sync status: {last}")

    def stop(self) -> None:
        for a in (self.primary, self.backup):
            a.stop()


class Writers:
    """``threads`` writer threads creating canned messages named ``<prefix><n>`` on the primary, at ``rate``
    writes per second in total (0: as fast as they go). ``acks`` lists (name, wall-clock time of the 2xx answer);
    ``on_ack(name, t)`` is called for each. A write whose answer never came is not acknowledged."""

    def __init__(self, url: str, cert: str, headers: dict, prefix: str, threads: int = 4, rate: float = 0,
                 body_chars: int = 200, on_ack=None):
        self.url, self.cert, self.headers, self.prefix = url, cert, dict(headers), prefix
        self.threads, self.rate, self.body = threads, rate, "x" * body_chars
        self.on_ack = on_ack
        self.acks: list[tuple[str, float]] = []
        self.latencies: list[float] = []  # seconds from sending to the 2xx answer, per acknowledged write
        self.errors: dict[str, int] = {}
        self.refused = 0
        self.behind_max = 0.0  # the most a paced write started after its slot, seconds
        self._stop = threading.Event()
        self._slots = itertools.count()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.t0 = 0.0
        self.t_end = 0.0

    def start(self) -> "Writers":
        self.t0 = time.monotonic()
        for k in range(self.threads):
            t = threading.Thread(target=self._run, name=f"writer-{k}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self) -> None:
        ctx = tls_context(self.cert)
        with httpx.Client(base_url=self.url, verify=ctx, timeout=10) as c:
            while not self._stop.is_set():
                n = next(self._slots)
                if self.rate > 0:
                    due = self.t0 + n / self.rate
                    wait = due - time.monotonic()
                    if wait > 0:
                        if self._stop.wait(wait):
                            return
                    elif -wait > self.behind_max:
                        self.behind_max = -wait
                name = f"{self.prefix}{n}"
                t_send = time.monotonic()
                try:
                    r = c.post("/api/config/canned-messages", headers=self.headers,
                               json={"name": name, "category": "bench", "body": self.body})
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
                    self._stop.wait(0.05)
                    continue
                t = time.time()
                if r.status_code == 201:
                    with self._lock:
                        self.acks.append((name, t))
                        self.latencies.append(time.monotonic() - t_send)
                    if self.on_ack:
                        self.on_ack(name, t)
                else:
                    with self._lock:
                        self.refused += 1
                        key = f"HTTP {r.status_code}"
                        self.errors[key] = self.errors.get(key, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)
        self.t_end = time.monotonic()

    def acked_rate(self, since: float | None = None, until: float | None = None) -> float:
        """Acknowledged writes per second between two wall-clock times (default: the whole run)."""
        ts = [t for _, t in self.acks if (since is None or t >= since) and (until is None or t <= until)]
        if len(ts) < 2:
            return 0.0
        span = (until - since) if since is not None and until is not None else ts[-1] - ts[0]
        return len(ts) / span if span > 0 else 0.0


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of ``values`` by nearest rank; None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


__all__ = ["PSK", "Pair", "Writers", "blobs_missing", "log", "make_sites", "names_in", "percentile", "site_admin"]
