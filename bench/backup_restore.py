#!/usr/bin/env python3
"""PERF-05 and PERF-06: backup and restore of a large site, against the shell
pipeline an administrator would write for the same data, in the same run.

    .venv/bin/python bench/backup_restore.py [--target-mb 1100] [--runs 3] [--workdir DIR] [--db postgresql [--pg-url URL]]

Seeds a site (``tether site seed``) until its database plus file store reach
the target size, then times:
  baseline  sqlite3 .backup | tar | zstd | age  (to an age recipient)
  backup    tether backup --data D --include-history (password-protected)
  restore   tether restore --data D (the same backup, replacing the site)
baseline and backup ``--runs`` times (each pair back to back, every ratio
printed), restore once, and prints each time, the ratios (backup/baseline,
target <= 1.0 in every run; restore/backup, target <= 1.5) and the peak RSS
of the Tether processes (target <= 256 MB); exits 1 if a target is missed.
Nothing here is part of the test suite.

``--db postgresql``: the site is seeded on SQLite, then moved to PostgreSQL
(``tether site move-db``; a throw-away server from Debian's package as the
tests start it, or ``--pg-url`` for an empty database of your own); the
baseline is then what an administrator would run there:
``pg_dump -Fc -n SCHEMA | age`` and ``tar files | zstd | age``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run_measured(args: list[str], env: dict | None = None, shell: bool = False) -> tuple[float, int]:
    """Run to completion; return (seconds, peak RSS in MB of that process)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, shell=shell, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {args}\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return elapsed, usage.ru_maxrss // 1024


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target-mb", type=float, default=1100)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", help="an empty PostgreSQL database (postgresql+psycopg://...); default: start one")
    ap.add_argument("--runs", type=int, default=3, help="baseline + backup pairs, each ratio printed (default 3)")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tether-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tether, vendor = str(BIN / "tether"), str(BIN / "tether-vendor")
    data = work / "appliance"
    if not data.exists():
        import tether as t

        subprocess.run([vendor, "keygen", "--out", str(work / "vendor")], check=True, capture_output=True)
        pkg = work / "site.tsp"
        subprocess.run([vendor, "site-package", "build", "--key", str(work / "vendor" / "vendor.key"),
                        "--site-name", "bench", "--edition", "remote-support", "--version", t.__version__,
                        "-o", str(pkg)], check=True, capture_output=True)
        subprocess.run([tether, "init", "--data", str(data), "--trust-vendor-key",
                        str(work / "vendor" / "vendor.pub")], check=True, capture_output=True)
        subprocess.run([tether, "site-package", "install", str(pkg), "--data", str(data)], check=True,
                       capture_output=True)
    site = data / "site"
    t0 = time.perf_counter()
    rounds = 0
    per_round = "400000" if args.target_mb >= 400 else "60000"
    while (site / "site.db").exists() and du_mb(site) < args.target_mb:
        rounds += 1
        subprocess.run([tether, "site", "seed", "--data", str(data), "--sessions", per_round, "--files",
                        "50" if not (site / "files").is_dir() or not any((site / "files").iterdir()) else "0", "--max-file-mb", "0.19", "--recordings", "0",
                        "--users", "20", "--jump-clients", "100", "--seed", str(int(time.time()) % 100000 + rounds)], check=True,
                       capture_output=True)
        print(f"seeded round {rounds}: site is {du_mb(site):.0f} MB", flush=True)
    seed_s = time.perf_counter() - t0
    server = None
    if args.db == "postgresql" and (site / "site.db").exists():
        url = args.pg_url
        if url is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.site.pg import PgServer

            server = PgServer.start()
            url = server.new_database()
        t1 = time.perf_counter()
        subprocess.run([tether, "site", "move-db", "--data", str(data), "--to", url], check=True, capture_output=True)
        print(f"moved the site to PostgreSQL in {time.perf_counter() - t1:.0f} s", flush=True)
    try:
        _measure(args, work, tether, data, site, seed_s)
    finally:
        if server is not None:
            server.stop()


def _pg(data: Path):
    """The site's PostgreSQL database (site/location.py), as the appliance reads it."""
    from tether.appliance.store import get_setting
    from tether.core.db import make_engine, sqlite_url
    from tether.core.secretbox import SecretBox
    from tether.site import location

    eng = make_engine(sqlite_url(data / "appliance.db"))
    sealed = get_setting(eng, "site_db_url")
    eng.dispose()
    url = SecretBox.load(data / "secret.key").unseal(sealed, "site_db_url").decode() if sealed else None
    return location.of(data / "site", url)


def _measure(args, work: Path, tether: str, data: Path, site: Path, seed_s: float) -> None:
    import pyrage
    import sqlalchemy as sa

    recipient = str(pyrage.x25519.Identity.generate().to_public())
    base = work / "baseline"  # made afresh in each run
    db = _pg(data)
    if db.external:
        eng = db.engine()
        with eng.connect() as c:
            db_mb = float(c.execute(sa.text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                                      "ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind = 'r'"),
                              {"s": db.schema}).scalar_one()) / 1e6
        eng.dispose()
        u = sa.engine.make_url(db.url)
        conn = f"postgresql://{u.username}@{u.host}:{u.port}/{u.database}"
        label = "pg_dump -Fc | age; tar files | zstd | age"
        pipeline = (f"pg_dump -Fc -n {db.schema} '{conn}' | age -r {recipient} > {base}/site.dump.age && "
                    f"tar -cf - -C {site} files | zstd -q -3 | age -r {recipient} > {base}/files.tar.zst.age")
    else:
        db_mb = (site / "site.db").stat().st_size / 1e6
        label = "sqlite3 .backup | tar | zstd | age"
        pipeline = (f"sqlite3 {site}/site.db '.backup {base}/site.db' && "
                    f"tar -cf - -C {base} site.db -C {site} files | zstd -q -3 | age -r {recipient} > {base}/site.tar.zst.age")
    files_mb = du_mb(site / "files") if (site / "files").is_dir() else 0
    print(f"site: {db_mb + files_mb:.0f} MB on {db.backend} (database {db_mb:.0f} MB), seeding took {seed_s:.0f} s")
    out = work / "out"
    pw = work / "pw"
    pw.write_text("Bench-password-1")
    ratios, rss, backups = [], [], []
    for run in range(1, args.runs + 1):  # baseline, then backup, in each run: both see the same machine
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir()
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        os.sync()
        t_base, _ = run_measured(["bash", "-c", pipeline])
        base_size = sum(p.stat().st_size for p in base.iterdir()) / 1e6
        shutil.rmtree(base, ignore_errors=True)  # its dirty pages are not written back during the backup
        os.sync()
        t_backup, rss_backup = run_measured([tether, "backup", "--data", str(data), "--out", str(out),
                                             "--include-history", "--password-file", str(pw)])
        nsb = next(out.glob("*.nsb"))
        ratios.append(t_backup / t_base)
        rss.append(rss_backup)
        backups.append(t_backup)
        print(f"run {run}: baseline pipeline ({label}) {t_base:.1f} s, {base_size:.0f} MB; "
              f"tether backup {t_backup:.1f} s, {nsb.stat().st_size / 1e6:.0f} MB, peak RSS {rss_backup} MB; "
              f"PERF-05 ratio {t_backup / t_base:.2f}", flush=True)
    os.sync()
    t_restore, rss_restore = run_measured([tether, "restore", str(nsb), "--data", str(data),
                                           "--password-file", str(pw)])
    shutil.rmtree(out, ignore_errors=True)
    peak = max(rss + [rss_restore])
    print(f"tether restore: {t_restore:.1f} s, peak RSS {rss_restore} MB")
    print(f"PERF-05 ratio backup/baseline = {', '.join(f'{r:.2f}' for r in ratios)} (target <= 1.00 in every run); "
          f"peak RSS {peak} MB (target <= 256)")
    print(f"PERF-06 ratio restore/backup = {t_restore / backups[-1]:.2f} (target <= 1.50)")
    missed = [name for name, bad in (("PERF-05 speed", max(ratios) > 1.0), ("PERF-05 memory", peak > 256),
                                     ("PERF-06", t_restore / backups[-1] > 1.5)) if bad]
    if missed:
        print(f"missed: {', '.join(missed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
