"""Benchmark: one filtered, paginated page of session records through the
real HTTPS API of a running appliance whose site holds 1,000,000 session
records, against a baseline measured in the same run: the same query run
directly with sqlite3 on the site database file.

    .venv/bin/python bench/site_listing.py [--sessions 1000000] [--rounds 50] [--keep DIR]

Prints the seed time, the median and p95 of each side and the ratio
API / baseline, and the HTTPS round-trip floor (GET /health) for context. Not part of the test suite."""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
QUERY = {"since": None, "until": None, "user": None, "limit": 50}


def run(*args: str) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--keep", type=Path, help="reuse/keep this work directory")
    a = ap.parse_args()
    work = a.keep or Path(tempfile.mkdtemp(prefix="tether-bench-"))
    data = work / "appliance"
    if not (data / "site").exists():
        work.mkdir(parents=True, exist_ok=True)
        run(BIN / "tether-vendor", "keygen", "--out", work / "vendor")
        from tether import __version__

        run(BIN / "tether-vendor", "site-package", "build", "--key", work / "vendor" / "vendor.key", "--site-name",
            "bench", "--edition", "remote-support", "--version", __version__, "-o", work / "site.tsp")
        run(BIN / "tether", "init", "--data", data, "--trust-vendor-key", work / "vendor" / "vendor.pub")
        run(BIN / "tether", "site-package", "install", work / "site.tsp", "--data", data)
        t0 = time.monotonic()
        out = run(BIN / "tether", "site", "seed", "--data", data, "--sessions", str(a.sessions), "--files", "0",
                  "--recordings", "0", "--events-per-session", "1", "--json")
        print(f"seed: {a.sessions} sessions in {time.monotonic() - t0:.1f} s  {json.loads(out)}")
    db = data / "site" / "site.db"
    print(f"site.db: {db.stat().st_size / 1e6:.0f} MB")
    # a realistic filter: one representative, a 90-day window in the middle of the year, 50 per page
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM session_records").fetchone()[0]
    if n == 0:
        sys.exit("the site holds no session records to list")
    rep = con.execute("SELECT rep FROM session_records ORDER BY id LIMIT 1 OFFSET ?", (min(12344, n // 2),)).fetchone()[0]
    t_hi = con.execute("SELECT max(started_at) FROM session_records").fetchone()[0]
    since, until = t_hi - 200 * 86400, t_hi - 110 * 86400
    QUERY.update(since=since, until=until, user=rep)
    sql = ("SELECT * FROM session_records WHERE started_at >= ? AND started_at < ? AND rep = ? "
           "ORDER BY started_at DESC, id DESC LIMIT 51")

    def baseline() -> list:
        return con.execute(sql, (since, until, rep)).fetchall()

    proc = None
    ready = work / "ready.json"
    ready.unlink(missing_ok=True)
    log = open(work / "serve.log", "ab")
    try:
        proc = subprocess.Popen([BIN / "tether", "serve", "--data", data, "--listen", "127.0.0.1:0", "--ready-file",
                                 ready], stdout=log, stderr=subprocess.STDOUT)
        while not ready.exists():
            if proc.poll() is not None:
                sys.exit(f"appliance exited: {(work / 'serve.log').read_text()}")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        ctx = ssl.create_default_context(cafile=info["builtin_cert"])
        ctx.check_hostname = False
        with httpx.Client(base_url=info["urls"][0], verify=ctx, timeout=60) as c:
            r = c.post("/api/session", json={"username": "admin", "password": "Bench-pass-123"})
            if r.status_code != 200:  # first run: the default password must be changed first
                tok = c.post("/api/session", json={"username": "admin", "password": "password"}).json()["token"]
                c.post("/api/session/password", headers={"Authorization": f"Bearer {tok}"},
                       json={"current_password": "password", "new_password": "Bench-pass-123"})
                r = c.post("/api/session", json={"username": "admin", "password": "Bench-pass-123"})
            h = {"Authorization": f"Bearer {r.json()['token']}"}

            def api() -> dict:
                r = c.get("/api/reporting/sessions", headers=h, params=QUERY)
                r.raise_for_status()
                return r.json()

            first = api()
            assert len(first["items"]) == len(baseline()[:50]), "API and baseline disagree"
            for _ in range(3):
                api(), baseline()
            t_api, t_base, t_floor = [], [], []
            for _ in range(a.rounds):
                t = time.perf_counter()
                c.get("/health")
                t_floor.append(time.perf_counter() - t)
                t = time.perf_counter()
                api()
                t_api.append(time.perf_counter() - t)
                t = time.perf_counter()
                baseline()
                t_base.append(time.perf_counter() - t)
    finally:
        if proc:
            proc.terminate()
            proc.wait(15)
        log.close()
        con.close()

    def fmt(xs):
        xs = sorted(xs)
        return statistics.median(xs) * 1000, xs[int(len(xs) * 0.95) - 1] * 1000

    (am, ap95), (bm, bp95), (fm, _) = fmt(t_api), fmt(t_base), fmt(t_floor)
    print(f"filtered page (user={rep}, 90 days, 50 rows) over HTTPS API: median {am:.2f} ms, p95 {ap95:.2f} ms")
    print(f"baseline sqlite3 same query:                               median {bm:.3f} ms, p95 {bp95:.3f} ms")
    print(f"ratio API / baseline (median): {am / bm:.1f}x")
    print(f"transport floor: GET /health (no auth, no database) median {fm:.2f} ms; "
          f"API minus floor {am - fm:.2f} ms = {(am - fm) / bm:.1f}x baseline")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
