#!/usr/bin/env python3
"""ROB-01 for role changes (issue 14): every role change of a real pair
killed with SIGKILL at each of its crash points, in the appliance that
performs it, then restarted on the same data directory; the pair must
settle with one primary and its backup at the same generation, never both
serving at one 100 ms tick, every role.json and orphan file valid, and no
write acknowledged before the change lost. The harness is
tests/failover/rolecrash.py (shared with tests/failover/test_role_crash.py,
which plays a seeded sample); this script plays every point (or every
``--every``-th) of every scenario and prints the figures.

    .venv/bin/python bench/failover_role_crash.py [--scenarios takeover,swap,...] [--every 1]
                                                  [--jobs 2] [--workdir DIR] [--keep]

Each scenario is first traced (crashtrace.py lists the points the performer
passes); its kill points are the points after the trigger (all of them for
``return``, whose start is the change). A kill run costs about 10-15 s (two
appliance starts, the settle, the checks); ``--jobs 2`` plays two labs at
once, each on its own loopback addresses (127.0.6.x, 127.0.7.x). Every
process started here is stopped at the end. Not part of the test suite."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.failover.rolecrash import SCENARIOS, Lab, Outcome  # noqa: E402

_print_lock = threading.Lock()


def log(msg: str) -> None:
    with _print_lock:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def play(lab_no: int, names: list[str], work: Path, every: int, results: dict) -> None:
    lab = Lab(work / f"lab{lab_no}", (f"127.0.{6 + lab_no}.3", f"127.0.{6 + lab_no}.2"), f"127.0.{6 + lab_no}.4")
    try:
        t0 = time.monotonic()
        bases = tuple(dict.fromkeys(SCENARIOS[n].base for n in names))
        lab.build(("manual",) if bases == ("manual",) else ("manual", "auto", "return"))
        log(f"lab {lab_no}: bases built in {time.monotonic() - t0:.0f} s")
        for name in names:
            scen = SCENARIOS[name]
            t0 = time.monotonic()
            labels, before, traced = lab.trace(scen)
            points = list(range(before + 1, len(labels) + 1))
            log(f"{name}: traced {len(labels)} points, {len(points)} after the trigger "
                f"({traced.seconds:.0f} s{'; PROBLEMS ' + str(traced.problems) if traced.problems else ''})")
            outs: list[Outcome] = [traced]
            for k in points[::every]:
                out = lab.run(scen, k)
                outs.append(out)
                match = "" if out.label == labels[k - 1] else f" (traced there: {labels[k - 1]!r})"
                log(f"{name} k={k}: {'killed at ' + repr(out.label) if out.killed else 'not reached'}{match}"
                    f"{' (before the trigger)' if out.early else ''}"
                    f"{', no primary until become-primary --force' if out.no_primary else ''} -> {out.final}"
                    f" in {out.seconds:.0f} s{'; PROBLEMS ' + str(out.problems) if out.problems else ''}")
            results[name] = {"labels": labels, "points": points, "outs": outs, "seconds": time.monotonic() - t0}
    except Exception as exc:  # noqa: BLE001 - reported, the other lab goes on
        log(f"lab {lab_no}: stopped: {type(exc).__name__}: {exc}")
    finally:
        lab.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--every", type=int, default=1, help="kill at every N-th point after the trigger")
    ap.add_argument("--jobs", type=int, default=1, choices=(1, 2))
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    names = [n for n in args.scenarios.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tether-role-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results: dict = {}
    shares = [names[i::args.jobs] for i in range(args.jobs)]
    threads = [threading.Thread(target=play, args=(i, share, work, args.every, results)) for i, share in
               enumerate(shares) if share]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"\n{'scenario':<15} {'points':>6} {'kills':>6} {'not hit':>7} {'label≠':>6} {'no prim':>7} "
          f"{'failed':>6} {'time':>7}")
    totals = Counter()
    for name in names:
        r = results.get(name)
        if r is None:
            print(f"{name:<15} (not played)")
            totals["failed"] += 1
            continue
        kills = [o for o in r["outs"] if o.k is not None]
        row = Counter(points=len(r["points"]), kills=sum(o.killed for o in kills),
                      missed=sum(not o.killed for o in kills),
                      mismatch=sum(o.killed and o.label != r["labels"][o.k - 1] for o in kills),
                      no_primary=sum(o.no_primary for o in r["outs"]),
                      failed=sum(bool(o.problems) for o in r["outs"]))
        totals.update(row)
        print(f"{name:<15} {row['points']:>6} {row['kills']:>6} {row['missed']:>7} {row['mismatch']:>6} "
              f"{row['no_primary']:>7} {row['failed']:>6} {r['seconds']:>6.0f}s")
        for o in r["outs"]:
            if o.problems:
                print(f"    k={o.k} ({o.label}): {o.problems}")
    print(f"{'total':<15} {totals['points']:>6} {totals['kills']:>6} {totals['missed']:>7} {totals['mismatch']:>6} "
          f"{totals['no_primary']:>7} {totals['failed']:>6} {time.monotonic() - t0:>6.0f}s")
    kinds = Counter(o.label for r in results.values() for o in r["outs"] if o.killed)
    print(f"\n{len(kinds)} kinds of point killed at: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory: {work}")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
