#!/usr/bin/env python3
"""The backup's apply delay under a steady write load on the primary (FO-02 "lag"; issue 13): at 500 writes/s
(paced, several client threads), the median and p99 in ms of the time from a write on the primary to its being
applied on the backup, against a baseline measured in the same run at a light load (10 writes/s).

    .venv/bin/python bench/failover_lag.py [--rate 500] [--threads 16] [--duration 30] [--warmup 3]
                                           [--baseline-rate 10] [--baseline-duration 10] [--sample-every 10]
                                           [--workdir DIR] [--keep]

Two REAL appliance processes (bench/failover_common.py: primary 127.0.0.1, backup 127.0.0.2, the pre-shared
key on both, ``tether failover establish``). The load generator creates canned messages through the primary's
API (``POST /api/config/canned-messages``), paced to ``--rate`` writes/s in total over ``--threads`` keep-alive
HTTPS clients (a thread that falls behind its slots sends at once: the achieved rate is printed, and when the
target is out of reach on this machine the output says what was reached). Two measures of the delay:
  inside   the backup's own ``sync.apply_delay_ms`` (``tether failover status --json``): p50 / p99 over its last
           2000 applied change-log entries, apply time minus the entry's time on the primary (same clock here);
           read at the end of the measured window, and every 2 s during it;
  outside  every ``--sample-every``-th acknowledged write is watched on the backup: the time from its 2xx
           answer on the primary to the row being committed in the backup's site database (polled read-only
           every 5 ms, so up to ~5 ms of resolution), for the samples acknowledged in the measured window,
           followed after the load stops until each is seen (a sample is never dropped for being late).
Also printed: the primary's write latency, the primary's own view of the backup's lag (entries and seconds,
from the backup's acknowledgements) at the end of the window, the rates at which the primary logged and the
backup applied change-log entries, and the time the backup took to drain once the load stopped.

The machine's other load matters (2 CPUs shared by both appliances, the load generator and whatever else runs):
the figures are this machine's at that moment. Every process started here is stopped at the end; every wait is
bounded. Not part of the test suite."""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients_hold import exit_on_signals, finish_workdir, log, machine_ticks  # noqa: E402
from failover_common import Pair, Writers, make_sites, percentile, site_db  # noqa: E402

POLL_S = 0.005


class Visibility:
    """Watches sampled names appear in the backup's site database; ``delays_ms`` of those seen."""

    def __init__(self, backup_data: Path):
        self.db = site_db(backup_data)
        self.pending: dict[str, float] = {}
        self.delays: list[tuple[float, float]] = []  # (t_ack, delay ms)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility", daemon=True)

    def add(self, name: str, t_ack: float) -> None:
        with self._lock:
            self.pending[name] = t_ack

    def start(self) -> "Visibility":
        self._thread.start()
        return self

    def _run(self) -> None:
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        try:
            while not self._stop.is_set():
                with self._lock:
                    names = list(self.pending)
                if names:
                    q = f"SELECT name FROM canned_messages WHERE name IN ({','.join('?' * len(names))})"
                    found = [r[0] for r in con.execute(q, names).fetchall()]
                    now = time.time()
                    with self._lock:
                        for n in found:
                            t = self.pending.pop(n)
                            self.delays.append((t, (now - t) * 1000))
                self._stop.wait(POLL_S)
        finally:
            con.close()

    def wait_empty(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.pending)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def phase(pair: Pair, name: str, rate: float, threads: int, duration: float, warmup: float, every: int) -> dict:
    """One paced load: warm-up, then the measured window; returns its figures."""
    vis = Visibility(pair.backup.data).start()
    counter = [0]
    window = [None, None]  # wall-clock start / end of the measured window

    def on_ack(n: str, t: float) -> None:
        counter[0] += 1
        if counter[0] % every == 0 and window[0] is not None and (window[1] is None or t <= window[1]):
            vis.add(n, t)

    w = Writers(pair.primary.url, pair.primary.info["builtin_cert"], pair.ph, f"lag-{name}-", threads=threads,
                rate=rate, on_ack=on_ack)
    w.start()
    time.sleep(warmup)
    p0 = pair.status(pair.primary)["sync"]
    b0 = pair.status(pair.backup)["sync"]
    m0 = machine_ticks()
    window[0] = time.time()
    t_end = time.monotonic() + duration
    inside: list[dict] = []
    while time.monotonic() < t_end:
        time.sleep(min(2.0, max(0.0, t_end - time.monotonic())))
        inside.append(pair.status(pair.backup)["sync"]["apply_delay_ms"])
    window[1] = time.time()
    p1 = pair.status(pair.primary)["sync"]
    b1 = pair.status(pair.backup)["sync"]
    m1 = machine_ticks()
    w.stop()
    t_stop = time.monotonic()
    left = vis.wait_empty(300)
    drained = pair.wait_caught_up(300, what="the backup to drain")
    t_drain = time.monotonic() - t_stop
    vis.stop()
    span = window[1] - window[0]
    acked = [t for _, t in w.acks if window[0] <= t <= window[1]]
    lat = [x * 1000 for (_, t), x in zip(w.acks, w.latencies) if window[0] <= t <= window[1]]
    out = {"name": name, "rate": rate, "threads": threads, "achieved": len(acked) / span, "span": span,
           "behind_max": w.behind_max, "errors": dict(w.errors), "latency": lat,
           "inside_end": b1["apply_delay_ms"], "inside_samples": inside,
           "outside": [d for _, d in vis.delays], "unseen": left,
           "primary_logged_per_s": (p1["head"] - p0["head"]) / span,
           "backup_applied_per_s": (b1["entries_applied"] - b0["entries_applied"]) / span,
           "lag_end_entries": p1["lag_entries"], "lag_end_s": p1["lag_seconds"],
           "backup_says_lag": (b1["lag_entries"], b1["lag_seconds"]), "drain_s": t_drain,
           "busy": (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100, "drained_delay": drained["apply_delay_ms"]}
    o = out["outside"]
    log(f"{name}: {out['achieved']:.1f} writes/s acknowledged (paced at {rate:.0f}/s); inside p50/p99 "
        f"{fmt(b1['apply_delay_ms']['p50'])}/{fmt(b1['apply_delay_ms']['p99'])} ms; outside p50/p99 "
        f"{fmt(percentile(o, 0.5))}/{fmt(percentile(o, 0.99))} ms ({len(o)} samples); drained in {t_drain:.1f} s")
    return out


def print_phase(r: dict) -> None:
    o = r["outside"]
    ins = r["inside_end"]
    p50s = [s["p50"] for s in r["inside_samples"] if s["p50"] is not None]
    p99s = [s["p99"] for s in r["inside_samples"] if s["p99"] is not None]
    print(f"{r['name']}: paced at {r['rate']:.0f} writes/s on {r['threads']} threads -> {r['achieved']:.1f} writes/s "
          f"acknowledged over {r['span']:.0f} s (a thread fell up to {r['behind_max']:.1f} s behind its slots); "
          f"machine {r['busy']:.0f}% busy")
    print(f"  write latency on the primary (send -> 2xx): p50 {fmt(percentile(r['latency'], 0.5))} ms, "
          f"p99 {fmt(percentile(r['latency'], 0.99))} ms")
    in_window = r["backup_applied_per_s"] * r["span"]
    print(f"  apply delay, backup's status at the end of the window (its last {ins['samples']} entries, "
          f"{min(ins['samples'], in_window):.0f} of them applied in the window): p50 {fmt(ins['p50'])} ms, "
          f"p99 {fmt(ins['p99'])} ms; over the window's 2 s readings: p50 median "
          f"{fmt(statistics.median(p50s) if p50s else None)} ms, p99 max {fmt(max(p99s) if p99s else None)} ms")
    if ins["samples"] > in_window * 1.05:
        print(f"  (the backup's figure also holds {ins['samples'] - in_window:.0f} entries applied before the window: "
              f"it keeps the last 2000 entries, whatever their age)")
    print(f"  write 2xx -> visible on the backup (outside, {len(o)} samples{', ' + str(r['unseen']) + ' never seen' if r['unseen'] else ''}): "
          f"p50 {fmt(percentile(o, 0.5))} ms, p99 {fmt(percentile(o, 0.99))} ms, max {fmt(max(o) if o else None)} ms")
    print(f"  change-log entries: primary logged {r['primary_logged_per_s']:.0f}/s, backup applied "
          f"{r['backup_applied_per_s']:.0f}/s; at the window's end the primary saw the backup {r['lag_end_entries']} "
          f"entries / {r['lag_end_s']} s behind (the backup's own status said {r['backup_says_lag'][0]} entries / "
          f"{r['backup_says_lag'][1]} s); drained {r['drain_s']:.1f} s after the load stopped")
    if r["errors"]:
        print(f"  writes not acknowledged: {r['errors']}")


def main() -> None:
    ap = argparse.ArgumentParser(description="The backup's apply delay at a steady write rate on the primary")
    ap.add_argument("--rate", type=float, default=500, help="writes per second in total")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30, help="seconds measured")
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--baseline-rate", type=float, default=10, help="the light load measured first (0: skip)")
    ap.add_argument("--baseline-duration", type=float, default=10)
    ap.add_argument("--sample-every", type=int, default=10, help="watch every N-th acknowledged write on the backup")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    exit_on_signals()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="tether-bench-lag-"))
    work.mkdir(parents=True, exist_ok=True)
    pair = None
    base = None
    try:
        log(f"work directory {work}; {os.cpu_count()} CPUs")
        pair = Pair(work, *make_sites(work)).start()
        pair.establish()
        pair.wait_caught_up(60, what="the first sync")
        if a.baseline_rate > 0:
            base = phase(pair, "baseline", a.baseline_rate, min(a.threads, 4), a.baseline_duration, a.warmup,
                         max(1, a.sample_every // 10))
        main_r = phase(pair, "load", a.rate, a.threads, a.duration, a.warmup, a.sample_every)
    finally:
        if pair:
            pair.stop()
    print(f"\nBackup apply delay under load: failover pair on loopback (2 appliance processes), {os.cpu_count()} CPUs "
          f"shared with other work")
    if base:
        print_phase(base)
    print_phase(main_r)
    if main_r["achieved"] < 0.95 * a.rate:
        print(f"{a.rate:.0f} writes/s is not reachable on this machine now: reached {main_r['achieved']:.1f} writes/s "
              f"(ratio {main_r['achieved'] / a.rate:.2f} of the target rate)")
    else:
        print(f"write rate reached: {main_r['achieved']:.1f} writes/s (ratio {main_r['achieved'] / a.rate:.2f})")
    if base:
        o, ob = main_r["outside"], base["outside"]
        bi, mi = base["inside_end"], main_r["inside_end"]

        def ratio(x, y):
            return "-" if not x or not y else f"{x / y:.1f}"
        print(f"ratio to the {a.baseline_rate:.0f} writes/s baseline: inside p50 {ratio(mi['p50'], bi['p50'])}, "
              f"p99 {ratio(mi['p99'], bi['p99'])}; outside p50 {ratio(percentile(o, .5), percentile(ob, .5))}, "
              f"p99 {ratio(percentile(o, .99), percentile(ob, .99))}")
    finish_workdir(a, work)


if __name__ == "__main__":
    main()
