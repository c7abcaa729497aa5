#!/usr/bin/env python3
"""PERF-07: one appliance holding many connected jump clients: its memory
per connection against the 64 KB target, and its CPU use at steady state
(heartbeats only), against a baseline measured in the same run: the same
appliance process's RSS with 0 clients.

    .venv/bin/python bench/clients_hold.py [--clients 15000] [--procs 4] [--hold 60] [--heartbeat 30]
                                           [--rate 300] [--ramp S] [--max-opening 50] [--workdir DIR] [--keep]

Makes a fresh data directory with a site (``tether init``,
``tether-vendor site-package build``, ``tether site-package install``),
seeds N jump clients and their identities straight into the site database
(random secrets, written to a JSON file for the load generator), starts
``tether serve``, logs in as the site admin, sets the Jump client settings
(connection rate 300/s, heartbeat 30 s) through the API, measures the
appliance's RSS with 0 clients, then runs N real jump clients
(``python -m tether.clients.loadgen``, several processes on uvloop; their
first attempts spread over N / rate seconds unless ``--ramp`` says otherwise)
until all are connected, and holds a steady-state window measuring the
appliance's CPU (utime+stime from /proc/PID/stat) and RSS. The count is
checked both from the load generators' reports and from the appliance
(``GET /api/site/information``). Every process started here is stopped at
the end (process groups); every wait is bounded. Not part of the test suite.

The helpers here are shared with bench/clients_reconnect.py (PERF-02)."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import secrets
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tether.clients.loadgen import raise_fd_limit

BIN = Path(sys.executable).parent
PYTHON = sys.executable
TARGET_KB = 64  # PERF-07: at most 64 KB of appliance memory per connected client
ADMIN_PASSWORD = "Bench-pass-123"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def finish_workdir(a, work: Path) -> None:
    """Remove the work directory unless it was asked for (--keep / --workdir)."""
    if not a.keep and not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory kept: {work}")


def _preexec() -> None:
    raise_fd_limit()


def exit_on_signals() -> None:
    """SIGTERM / SIGHUP end the driver through its finally blocks (which stop what it started)."""
    def bye(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bye)


def run(*args) -> str:
    cp = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300)
    if cp.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, args))}\n{cp.stdout}\n{cp.stderr}")
    return cp.stdout


# The load generators get a small environment: websockets looks for proxy variables in the whole environment at
# every connection attempt (urllib's getproxies_environment), which costs thousands of clients' CPU for nothing.
LOADGEN_ENV = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the appliance ----------------------------------------------------------------------------------
def make_site(work: Path) -> Path:
    """A fresh appliance data directory with a site installed, through the real commands."""
    from tether import __version__

    data = work / "appliance"
    run(BIN / "tether-vendor", "keygen", "--out", work / "vendor")
    run(BIN / "tether-vendor", "site-package", "build", "--key", work / "vendor" / "vendor.key", "--site-name",
        "bench", "--edition", "remote-support", "--version", __version__, "-o", work / "site.tsp")
    run(BIN / "tether", "init", "--data", data, "--trust-vendor-key", work / "vendor" / "vendor.pub")
    run(BIN / "tether", "site-package", "install", work / "site.tsp", "--data", data)
    return data


def seed_clients(data: Path, n: int, out: Path) -> float:
    """N jump clients and their identities, inserted in bulk into the site database (the appliance is not
    running); the secrets go to ``out`` for the load generators. Returns the seconds it took."""
    from tether.core.paths import DataDir

    t0 = time.monotonic()
    now = time.time()
    idents, jcs, ids = [], [], []
    for i in range(n):
        name = f"bench-{i:05d}"
        cid, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
        idents.append({"client_id": cid, "secret": secret, "name": name})
        jcs.append((name, name, None, "linux", None, "", None, now))
        ids.append((cid, "jump", name, hashlib.sha256(secret.encode()).hexdigest(), now, None, None))
    con = sqlite3.connect(DataDir.at(data).site_db)
    try:
        with con:
            con.executemany("INSERT INTO jump_clients (name, hostname, group_name, os, public_ip, comments, "
                            "last_seen_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", jcs)
            con.executemany("INSERT INTO client_identities (id, kind, name, secret_sha256, created_at, revoked_at, "
                            "revoked_by) VALUES (?, ?, ?, ?, ?, ?, ?)", ids)
        got = con.execute("SELECT count(*) FROM client_identities WHERE kind = 'jump'").fetchone()[0]
        assert got >= n, got
    finally:
        con.close()
    tmp = out.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(idents, f)
    os.replace(tmp, out)
    return time.monotonic() - t0


def proc_stat(pid: int) -> tuple[int, int]:
    """(utime + stime in clock ticks, RSS in KB) of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, rss 24
    return int(fields[11]) + int(fields[12]), int(fields[21]) * PAGE_KB


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine, all CPUs (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    total = sum(v[:8])  # guest time is already inside user
    return total - idle, total


def _ticks(pid: int) -> int:
    try:
        return proc_stat(pid)[0]
    except OSError:
        return 0


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Appliance:
    """``tether serve`` in its own process group, on one loopback address (``host``, 127.0.0.1 unless
    told: a failover pair uses 127.0.0.2 for the backup). Its ready file and logs go to ``work``."""

    def __init__(self, data: Path, work: Path, host: str = "127.0.0.1"):
        self.data, self.work, self.host = data, work, host
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.port = 0
        self.ready_at = 0.0  # time.monotonic() when the ready file was seen
        self.n = 0

    def start(self, port: int = 0, timeout: float = 60) -> "Appliance":
        self.n += 1
        ready = self.work / "ready.json"
        ready.unlink(missing_ok=True)
        logf = open(self.work / f"serve{self.n}.log", "ab")
        try:
            self.proc = subprocess.Popen(
                [BIN / "tether", "serve", "--data", self.data, "--listen", f"{self.host}:{port}", "--ready-file", ready],
                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_preexec)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"appliance exited with {self.proc.returncode}: "
                                 f"{(self.work / f'serve{self.n}.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit("the appliance did not become ready in time")
            time.sleep(0.005)
        self.ready_at = time.monotonic()
        self.info = json.loads(ready.read_text())
        self.port = int(self.info["listen"][0].rsplit(":", 1)[1])
        assert self.info["pid"] == self.proc.pid, (self.info["pid"], self.proc.pid)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return self.info["urls"][0]

    def pin(self) -> str:
        from tether.clients.trust import pin_of_pem

        return pin_of_pem(Path(self.info["builtin_cert"]).read_text())

    def client(self) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=self.info["builtin_cert"])
        ctx.check_hostname = False
        return httpx.Client(base_url=self.url, verify=ctx, timeout=60)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        else:  # reap what its group may have left
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _admin(c: httpx.Client, session: str, change_password: str) -> dict:
    """Log in as ``admin`` at ``session`` (the first time: admin / password, then changed at
    ``change_password``); auth headers."""
    r = c.post(session, json={"username": "admin", "password": ADMIN_PASSWORD})
    if r.status_code != 200:
        r = c.post(session, json={"username": "admin", "password": "password"})
        r.raise_for_status()
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        c.post(change_password, headers=h,
               json={"current_password": "password", "new_password": ADMIN_PASSWORD}).raise_for_status()
        return h
    return {"Authorization": f"Bearer {r.json()['token']}"}


def site_admin(c: httpx.Client) -> dict:
    """The site admin's auth headers."""
    return _admin(c, "/api/session", "/api/session/password")


def allow_one_source(c: httpx.Client, clients: int, admin_headers: dict | None = None) -> int:
    """Let ``clients`` connections (+100) come from one address: the load generators all connect from
    127.0.0.1, as jump clients behind one NAT would (/appliance Security, ``connections.max_per_source``).
    Logs in as the /appliance admin unless ``admin_headers`` are given. Returns the limit set."""
    h = admin_headers or _admin(c, "/appliance/api/session", "/appliance/api/password")
    sec = c.get("/appliance/api/security", headers=h)
    sec.raise_for_status()
    body = sec.json()
    limit = max(body["connections"]["max_per_source"], clients + 100)
    body["connections"]["max_per_source"] = limit
    c.put("/appliance/api/security", headers=h, json=body).raise_for_status()
    return limit


def set_jump_settings(c: httpx.Client, h: dict, rate: int, heartbeat: int) -> dict:
    cur = c.get("/api/config/settings/jump-clients", headers=h)
    cur.raise_for_status()
    body = {**cur.json(), "connection_rate_per_second": rate, "heartbeat_seconds": heartbeat}
    r = c.put("/api/config/settings/jump-clients", headers=h, json=body)
    r.raise_for_status()
    got = c.get("/api/config/settings/jump-clients", headers=h).json()
    assert got["connection_rate_per_second"] == rate and got["heartbeat_seconds"] == heartbeat, got
    return got


def change_log_rows(data: Path) -> int:
    """Rows in the site's change log (read-only look at the live database; WAL lets readers in)."""
    from tether.core.paths import DataDir

    con = sqlite3.connect(f"file:{DataDir.at(data).site_db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM change_log").fetchone()[0]
    finally:
        con.close()


def connected_on_appliance(c: httpx.Client, h: dict) -> int:
    r = c.get("/api/site/information", headers=h)
    r.raise_for_status()
    return r.json()["connected_clients"]["jump_clients"]


# --- the load generators ------------------------------------------------------------------------------
class LoadGens:
    """K ``python -m tether.clients.loadgen`` processes, each in its own process group."""

    def __init__(self, work: Path, ids: Path, n: int, procs: int, ramp: float = 0.0, duration: float = 3600,
                 max_opening: int = 50, host: str = "127.0.0.1", env: dict | None = None):
        self.work, self.ids, self.n, self.k = work, ids, n, procs
        self.ramp, self.duration, self.max_opening = ramp, duration, max_opening
        self.host = host  # the site's address or name (a name is resolved by the clients at every attempt)
        self.env = {**LOADGEN_ENV, **(env or {})}  # e.g. TETHER_DNS_SERVER (bench/failover_time.py)
        self.procs: list[subprocess.Popen] = []
        self.reports = [work / f"loadgen{i}.json" for i in range(procs)]
        self.started_at = 0.0

    def start(self, port: int, pin: str) -> None:
        per = math.ceil(self.n / self.k)
        self.started_at = time.monotonic()
        for i in range(self.k):
            start, count = i * per, min(per, self.n - i * per)
            if count <= 0:
                break
            self.reports[i].unlink(missing_ok=True)
            logf = open(self.work / f"loadgen{i}.log", "ab")
            try:
                self.procs.append(subprocess.Popen(
                    [PYTHON, "-m", "tether.clients.loadgen", "--site", f"{self.host}:{port}", "--pin", pin,
                     "--identities", self.ids, "--start", str(start), "--count", str(count),
                     "--report-file", self.reports[i], "--ramp", str(self.ramp), "--duration", str(self.duration),
                     "--seed", str(i + 1), "--interval", "0.5", "--max-opening", str(self.max_opening)],
                    stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_preexec,
                    env=self.env))
            finally:
                logf.close()
        self.reports = self.reports[:len(self.procs)]

    def read(self) -> list[dict]:
        out = []
        for p, path in zip(self.procs, self.reports):
            if p.poll() is not None and not path.exists():
                raise SystemExit(f"load generator {p.pid} exited with {p.returncode}: "
                                 f"{(self.work / f'loadgen{self.procs.index(p)}.log').read_text()[-3000:]}")
            for _ in range(20):
                try:
                    out.append(json.loads(path.read_text()))
                    break
                except FileNotFoundError:
                    out.append({"connected": 0, "connects": 0, "ever_connected": 0, "ups": [], "downs": [],
                                "log": {}, "rss_kb": 0, "t_mono": 0})
                    break
                except ValueError:
                    time.sleep(0.01)
        return out

    @staticmethod
    def total(reports: list[dict], key: str) -> int:
        return sum(r.get(key, 0) for r in reports)

    @staticmethod
    def logs(reports: list[dict]) -> dict:
        merged: dict[str, int] = {}
        for r in reports:
            for k, v in r.get("log", {}).items():
                merged[k] = merged.get(k, 0) + v
        return merged

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if p.poll() is None:
                p.wait(10)
        self.procs = []


def wait_all_connected(gens: LoadGens, n: int, timeout: float, every: float = 2.0, since: float | None = None,
                       apl: Appliance | None = None, partial: bool = False) -> list[dict]:
    """Wait until the load generators report all N connected at once; their last reports. At the timeout:
    exit with what was seen, or (``partial``) log it and return the reports as they are, so that the caller
    prints what it measured and which clients did not come back."""
    deadline = time.monotonic() + timeout
    last_print = 0.0
    prev = None  # (time, appliance ticks, load generator ticks) for the CPU shown with the progress
    while True:
        reports = gens.read()
        connected = gens.total(reports, "connected")
        now = time.monotonic()
        if connected >= n:
            return reports
        if now - last_print >= every:
            last_print = now
            extra = ""
            if apl is not None and apl.proc is not None:
                cur = (now, _ticks(apl.pid), sum(_ticks(p.pid) for p in gens.procs), machine_ticks()[0])
                if prev is not None:
                    dt = (cur[0] - prev[0]) * CLK_TCK / 100
                    a, g, m = ((cur[i] - prev[i]) / dt for i in (1, 2, 3))
                    extra = f" CPU% appliance {a:.0f} loadgens {g:.0f} others {max(0, m - a - g):.0f},"
                prev = cur
                extra += f" appliance RSS {rss_kb(apl.pid) / 1024:.0f} MB, fds {fd_count(apl.pid)}"
            base = since if since is not None else gens.started_at
            log(f"  t={now - base:6.1f}s connected {connected}/{n} (connects {gens.total(reports, 'connects')}, "
                f"ever {gens.total(reports, 'ever_connected')}){extra}")
        if not gens.alive():
            raise SystemExit("a load generator exited early; see its log in the work directory")
        if apl is not None and apl.proc is not None and apl.proc.poll() is not None:
            raise SystemExit(f"the appliance exited with {apl.proc.returncode}")
        if now > deadline:
            msg = f"timed out after {timeout:.0f} s: {connected}/{n} connected; client log kinds: {gens.logs(reports)}"
            if partial:
                log(msg)
                return reports
            raise SystemExit(msg)
        time.sleep(0.25)


def percentile_times(times: list[float], n: int, fractions=(0.5, 0.9, 1.0)) -> list[float | None]:
    """The time at which ceil(f * n) of the n clients had (re)connected, for each fraction f (None when fewer
    than that many did: print it with ``secs``)."""
    times = sorted(times)
    out = []
    for f in fractions:
        k = max(1, math.ceil(f * n))
        out.append(times[k - 1] if len(times) >= k else None)
    return out


def secs(x: float | None, digits: int = 2) -> str:
    """A time in seconds for a result line, or "n/a" where the clients never got that far."""
    return "n/a" if x is None else f"{x:.{digits}f} s"


def ratio(x: float | None, target: float) -> str:
    return "n/a (not reached)" if x is None else f"{x / target:.2f}"


def clients_missing(reports: list[dict], came_back) -> list[str]:
    """One line per client for which ``came_back(ups)`` is false: its index, how often it connected and lost the
    connection, and the warnings its load generator counted (why it did not come back, as far as it knows)."""
    out = []
    for r in reports:
        for j, ups in enumerate(r["ups"]):
            if not came_back(ups):
                out.append(f"client {r['start'] + j}: connected {len(ups)} times, lost {r['downs'][j]}; its load "
                           f"generator (pid {r['pid']}) counted {r.get('log') or 'no warnings'}")
    return out


# --- PERF-07 ------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description="PERF-07: appliance memory and CPU with many jump clients connected")
    ap.add_argument("--clients", type=int, default=15_000)
    ap.add_argument("--procs", type=int, default=4, help="load generator processes")
    ap.add_argument("--hold", type=float, default=60, help="steady-state window, seconds")
    ap.add_argument("--heartbeat", type=int, default=30)
    ap.add_argument("--rate", type=int, default=300, help="connection_rate_per_second (1..300)")
    ap.add_argument("--ramp", type=float, help="spread the clients' first attempts over this many seconds "
                                                "(default: N / rate, arriving at the admitted rate; 0: at once)")
    ap.add_argument("--max-opening", type=int, default=50, help="connection attempts in flight at once per load "
                                                                "generator process (0: no limit)")
    ap.add_argument("--connect-timeout", type=float, default=900)
    ap.add_argument("--settle", type=float, default=5, help="seconds between all connected and the window")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    exit_on_signals()
    limit = raise_fd_limit()
    if a.ramp is None:
        a.ramp = a.clients / a.rate
    per = math.ceil(a.clients / a.procs)
    if per + 100 > limit:
        raise SystemExit(f"{per} clients per load generator exceed the {limit} file descriptor limit: raise --procs")
    if a.clients + 200 > limit:
        raise SystemExit(f"the appliance would need {a.clients}+ file descriptors, the limit is {limit}")
    work = a.workdir or Path(tempfile.mkdtemp(prefix="tether-bench-hold-"))
    work.mkdir(parents=True, exist_ok=True)
    apl = gens = None
    try:
        log(f"work directory {work}; fd limit {limit}; {os.cpu_count()} CPUs")
        data = make_site(work)
        ids = work / "identities.json"
        took = seed_clients(data, a.clients, ids)
        log(f"seeded {a.clients} jump clients and identities in {took:.1f} s")
        apl = Appliance(data, work).start()
        pin = apl.pin()
        with apl.client() as c:
            h = site_admin(c)
            set_jump_settings(c, h, a.rate, a.heartbeat)
            allow_one_source(c, a.clients)
            assert connected_on_appliance(c, h) == 0
            time.sleep(2)
            rss0 = rss_kb(apl.pid)
            log(f"appliance pid {apl.pid} on port {apl.port}; RSS with 0 clients {rss0 / 1024:.1f} MB; "
                f"rate {a.rate}/s, heartbeat {a.heartbeat} s")
            gens = LoadGens(work, ids, a.clients, a.procs, ramp=a.ramp,
                            duration=a.connect_timeout + a.hold + a.settle + 300, max_opening=a.max_opening)
            gens.start(apl.port, pin)
            t0 = gens.started_at
            reports = wait_all_connected(gens, a.clients, a.connect_timeout, apl=apl)
            t_all_seen = time.monotonic() - t0
            firsts = [u[0] - t0 for r in reports for u in r["ups"] if u]
            p50, p90, p100 = percentile_times(firsts, a.clients)
            t_clients = max(r["started_mono"] for r in reports) - t0  # load generator start-up (imports, ...)
            rss_n_conn = rss_kb(apl.pid)
            log(f"all {a.clients} connected: 50% at {secs(p50, 1)}, 90% at {secs(p90, 1)}, 100% at {secs(p100, 1)} "
                f"(seen at {t_all_seen:.1f} s); appliance RSS {rss_n_conn / 1024:.1f} MB, fds {fd_count(apl.pid)}")
            log(f"  client log kinds during the connect phase: {gens.logs(reports)}")
            time.sleep(a.settle)
            api_before = connected_on_appliance(c, h)
            before = gens.read()
            connects_before = gens.total(before, "connects")
            log0 = change_log_rows(data)
            ticks0, _ = proc_stat(apl.pid)
            gticks0, mticks0 = sum(_ticks(p.pid) for p in gens.procs), machine_ticks()[0]
            w0 = time.monotonic()
            rss_samples, conn_min, cpu_5s, last5 = [], a.clients, [], (w0, ticks0)
            log(f"holding {a.hold:.0f} s (appliance reports {api_before} jump clients connected)")
            while time.monotonic() - w0 < a.hold:
                time.sleep(1)
                rss_samples.append(rss_kb(apl.pid))
                conn_min = min(conn_min, gens.total(gens.read(), "connected"))
                if time.monotonic() - last5[0] >= 5:
                    now_t, now_ticks = time.monotonic(), _ticks(apl.pid)
                    cpu_5s.append((now_t - w0, (now_ticks - last5[1]) / CLK_TCK / (now_t - last5[0]) * 100))
                    last5 = (now_t, now_ticks)
                if apl.proc.poll() is not None:
                    raise SystemExit("the appliance exited during the hold")
            ticks1, _ = proc_stat(apl.pid)
            gticks1, mticks1 = sum(_ticks(p.pid) for p in gens.procs), machine_ticks()[0]
            window = time.monotonic() - w0
            after = gens.read()
            log1 = change_log_rows(data)
            api_after = connected_on_appliance(c, h)
            gen_rss = [r.get("rss_kb", 0) for r in after]
    finally:
        if gens:
            gens.stop()
        if apl:
            apl.stop()
    cpu = (ticks1 - ticks0) / CLK_TCK / window * 100
    gcpu = (gticks1 - gticks0) / CLK_TCK / window * 100
    others = max(0.0, (mticks1 - mticks0) / CLK_TCK / window * 100 - cpu - gcpu)
    rss_n = rss_samples[-1]
    per_client = (rss_n - rss0) / a.clients
    gen_connected = gens.total(after, "connected")
    print()
    print(f"PERF-07  {a.clients} jump clients, heartbeat {a.heartbeat} s, connection rate {a.rate}/s, "
          f"{os.cpu_count()} CPUs (appliance and {a.procs} load generators share them)")
    print(f"clients connected: {gen_connected} (load generators), {api_after} (appliance /api/site/information); "
          f"lowest during the hold {conn_min}; reconnections during the hold "
          f"{gens.total(after, 'connects') - connects_before}")
    first = "all at once" if not a.ramp else f"spread over {a.ramp:.0f} s"
    print(f"time to connect all: {secs(p100, 1)} (50% {secs(p50, 1)}, 90% {secs(p90, 1)}) from starting the load generators "
          f"({t_clients:.1f} s of it their start-up), first attempts {first}, "
          f"at most {a.max_opening or 'unlimited'} attempts in flight per load generator; "
          f"theoretical floor N/rate {a.clients / a.rate:.1f} s")
    print(f"appliance RSS: baseline (same process, 0 clients) {rss0 / 1024:.1f} MB; with {a.clients} clients "
          f"{rss_n / 1024:.1f} MB (max in window {max(rss_samples) / 1024:.1f} MB, right after connecting "
          f"{rss_n_conn / 1024:.1f} MB)")
    print(f"RSS per client: {per_client:.1f} KB vs target {TARGET_KB} KB -> ratio {per_client / TARGET_KB:.2f} "
          f"(<= 1.00 meets the target); RSS at N / RSS at 0 = {rss_n / rss0:.2f}x")
    print(f"appliance CPU at steady state: {cpu:.1f}% of one core over {window:.0f} s "
          f"({a.clients / a.heartbeat:.0f} pings/s expected); meanwhile load generators {gcpu:.1f}%, "
          f"other processes on the machine {others:.1f}%")
    peak_t, peak = max(cpu_5s, key=lambda x: x[1]) if cpu_5s else (0, 0)
    quiet = sorted(x[1] for x in cpu_5s)[len(cpu_5s) // 2] if cpu_5s else 0
    busy = [x for x in cpu_5s if x[1] > quiet + 20]
    print(f"  5 s samples: median {quiet:.0f}%, busiest {peak:.0f}% at +{peak_t:.0f} s, {5 * len(busy)} s above "
          f"median + 20; site change_log grew by {log1 - log0} rows during the window (last-seen writes)")
    print(f"load generators: RSS {', '.join(f'{k / 1024:.0f}' for k in gen_rss)} MB "
          f"({sum(gen_rss) / max(1, gen_connected):.1f} KB per client, client side)")
    finish_workdir(a, work)
    if per_client > TARGET_KB or gen_connected < a.clients:
        sys.exit(1)


if __name__ == "__main__":
    main()
