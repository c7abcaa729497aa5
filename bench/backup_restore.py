#!/usr/bin/env python3
"""PERF-05 and PERF-06: backup and restore of a large site, against the shell
pipeline an administrator would write for the same data, in the same run.

    .venv/bin/python bench/backup_restore.py [--target-mb 1100] [--workdir DIR]

Seeds a site (``tether site seed``) until its database plus file store reach
the target size, then times:
  baseline  sqlite3 .backup | tar | zstd | age  (to an age recipient)
  backup    tether backup --data D --include-history (password-protected)
  restore   tether restore --data D (the same backup, replacing the site)
and prints each time, the ratios (backup/baseline, target <= 1.0;
restore/backup, target <= 1.5) and the peak RSS of the Tether processes
(target <= 256 MB). Nothing here is part of the test suite.
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
    while du_mb(site) < args.target_mb:
        rounds += 1
        subprocess.run([tether, "site", "seed", "--data", str(data), "--sessions", "400000", "--files",
                        "50" if not (site / "files").is_dir() or not any((site / "files").iterdir()) else "0", "--max-file-mb", "0.19", "--recordings", "0",
                        "--users", "20", "--jump-clients", "100", "--seed", str(int(time.time()) % 100000 + rounds)], check=True,
                       capture_output=True)
        print(f"seeded round {rounds}: site is {du_mb(site):.0f} MB", flush=True)
    seed_s = time.perf_counter() - t0
    db_mb = (site / "site.db").stat().st_size / 1e6
    print(f"site: {du_mb(site):.0f} MB (database {db_mb:.0f} MB), seeding took {seed_s:.0f} s")

    # baseline: what an administrator would script for the same data
    import pyrage

    recipient = str(pyrage.x25519.Identity.generate().to_public())
    base = work / "baseline"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    os.sync()
    pipeline = (f"sqlite3 {site}/site.db '.backup {base}/site.db' && "
                f"tar -cf - -C {base} site.db -C {site} files | zstd -q -3 | age -r {recipient} > {base}/site.tar.zst.age")
    t_base, _ = run_measured(["bash", "-c", pipeline])
    base_size = (base / "site.tar.zst.age").stat().st_size / 1e6

    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    pw = work / "pw"
    pw.write_text("Bench-password-1")
    os.sync()
    t_backup, rss_backup = run_measured([tether, "backup", "--data", str(data), "--out", str(out),
                                         "--include-history", "--password-file", str(pw)])
    nsb = next(out.glob("*.nsb"))
    os.sync()
    t_restore, rss_restore = run_measured([tether, "restore", str(nsb), "--data", str(data),
                                           "--password-file", str(pw)])
    print(f"baseline pipeline (sqlite3 .backup | tar | zstd | age): {t_base:.1f} s, {base_size:.0f} MB")
    print(f"tether backup:  {t_backup:.1f} s, {nsb.stat().st_size / 1e6:.0f} MB, peak RSS {rss_backup} MB")
    print(f"tether restore: {t_restore:.1f} s, peak RSS {rss_restore} MB")
    print(f"PERF-05 ratio backup/baseline = {t_backup / t_base:.2f} (target <= 1.00); "
          f"peak RSS {max(rss_backup, rss_restore)} MB (target <= 256)")
    print(f"PERF-06 ratio restore/backup = {t_restore / t_backup:.2f} (target <= 1.50)")
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
