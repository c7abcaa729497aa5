#!/usr/bin/env python3
"""ROB-01 for role changes (issue 14): every role change killed with SIGKILL
at each of its crash points, then checked. Two variants, both every point a
real SIGKILL of a real process:

- ``--variant fork`` (default; tests/failover/rolefork.py): the change runs
  in a forked child over a real data directory opened offline (against a
  real peer ``tether serve`` for the planned swaps and the return), killed at
  point k; the directory is opened offline again and checked (role.json,
  generations, the pair as it stands, orphan files, acknowledged writes).
  About a second a point: every point of every scenario (>= 200) in minutes.
- ``--variant pair`` (tests/failover/rolecrash.py): the performer a real
  ``tether serve`` (TETHER_CRASH_AT, counted from the change's first point),
  restarted, the pair settled with /health sampled every 100 ms. 15-70 s a
  point on a loaded machine: use ``--every``/``--scenarios``.

    .venv/bin/python bench/failover_role_crash.py [--variant fork|pair] [--scenarios a,b,...]
        [--every 1] [--expect-recovery] [--workdir DIR] [--keep]

A failed point is reported and the next one played; the table at the end
gives, per scenario, the points, the kills, how many passed and failed (with
reasons), the planned swaps that left no primary (the known gap:
docs/operations.md's runbook is applied unless ``--expect-recovery``), and
the time. Every process started here is stopped at the end. Not part of the
test suite."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.failover import rolecrash, rolefork  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def play(args, names: list[str], work: Path) -> dict:
    mod = rolefork if args.variant == "fork" else rolecrash
    if args.variant == "fork":
        lab = rolefork.ForkLab(work, expect_recovery=args.expect_recovery)
    else:
        lab = rolecrash.Lab(work, expect_recovery=args.expect_recovery)
    results: dict = {}
    try:
        t0 = time.monotonic()
        bases = tuple(dict.fromkeys(mod.SCENARIOS[n].base for n in names))
        lab.build(("manual",) if bases == ("manual",) else ("manual", "auto", "return"))
        log(f"bases built in {time.monotonic() - t0:.0f} s")
        for name in names:
            scen = mod.SCENARIOS[name]
            t0 = time.monotonic()
            r = results[name] = {"labels": [], "outs": [], "seconds": 0.0, "error": None}
            try:
                if args.variant == "fork":
                    labels, traced = lab.trace(scen)
                else:
                    labels, _before, traced = lab.trace(scen)
            except Exception as exc:  # noqa: BLE001 - reported; the next scenario is played
                r["error"] = f"trace: {type(exc).__name__}: {exc}"
                log(f"{name}: {r['error']}")
                continue
            r["labels"] = labels
            log(f"{name}: traced {len(labels)} points in {traced.seconds:.1f} s"
                f"{'; PROBLEMS ' + str(traced.problems) if traced.problems else ''}")
            r["traced"] = traced
            for k in range(1, len(labels) + 1)[::args.every]:
                out = lab.run(scen, k)
                r["outs"].append(out)
                match = "" if out.label == labels[k - 1] else f" (traced there: {labels[k - 1]!r})"
                final = getattr(out, "state", "") or getattr(out, "final", "")
                log(f"{name} k={k}: {'killed at ' + repr(out.label) if out.killed else 'NOT KILLED'}{match}"
                    f"{', no primary' if out.no_primary else ''} -> {final} in {out.seconds:.1f} s"
                    f"{'; PROBLEMS ' + str(out.problems) if out.problems else ''}")
            r["seconds"] = time.monotonic() - t0
    except Exception as exc:  # noqa: BLE001 - the bases could not be built
        log(f"stopped: {type(exc).__name__}: {exc}")
    finally:
        lab.close()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=("fork", "pair"), default="fork")
    ap.add_argument("--scenarios")
    ap.add_argument("--every", type=int, default=1, help="kill at every N-th point")
    ap.add_argument("--expect-recovery", action="store_true",
                    help="an interrupted planned swap must recover by itself (no runbook): a failure otherwise")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    known = (rolefork if args.variant == "fork" else rolecrash).SCENARIOS
    names = [n for n in (args.scenarios or ",".join(known)).split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        ap.error(f"unknown scenarios {unknown}; known: {', '.join(known)}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tether-role-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results = play(args, names, work)
    print(f"\nvariant {args.variant}{', expecting recovery' if args.expect_recovery else ''}")
    print(f"{'scenario':<14} {'points':>6} {'killed':>6} {'passed':>6} {'failed':>6} {'label≠':>6} {'no prim':>7} "
          f"{'time':>7}")
    totals: Counter = Counter()
    reasons: list[str] = []
    for name in names:
        r = results.get(name)
        if r is None or r["error"]:
            print(f"{name:<14} not played: {r['error'] if r else 'the bases were not built'}")
            totals["failed"] += 1
            continue
        outs = r["outs"]
        row = Counter(points=len(r["labels"]), killed=sum(o.killed for o in outs),
                      passed=sum(not o.problems for o in outs), failed=sum(bool(o.problems) for o in outs),
                      mismatch=sum(o.killed and o.label != r["labels"][o.k - 1] for o in outs),
                      no_primary=sum(o.no_primary for o in outs))
        if r["traced"].problems:
            reasons.append(f"{name} trace run: {r['traced'].problems}")
            row["failed"] += 1
        totals.update(row)
        print(f"{name:<14} {row['points']:>6} {row['killed']:>6} {row['passed']:>6} {row['failed']:>6} "
              f"{row['mismatch']:>6} {row['no_primary']:>7} {r['seconds']:>6.0f}s")
        reasons += [f"{name} k={o.k} ({o.label}): {'; '.join(o.problems)}" for o in outs if o.problems]
    print(f"{'total':<14} {totals['points']:>6} {totals['killed']:>6} {totals['passed']:>6} {totals['failed']:>6} "
          f"{totals['mismatch']:>6} {totals['no_primary']:>7} {time.monotonic() - t0:>6.0f}s")
    if reasons:
        print("\nfailures:")
        for x in reasons:
            print(f"  {x}")
    kinds = Counter(o.label for r in results.values() for o in r["outs"] if o.killed)
    print(f"\n{len(kinds)} kinds of point killed at: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory: {work}")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
