#!/usr/bin/env python3
"""ROB-03 without a witness (FO-08, FO-11): seeded, randomized schedules of
partitions and heals (nftables drop rules between the two appliances' site
addresses, or between one appliance and its connectivity test address),
SIGSTOP/SIGCONT pauses, and kills + restarts of the primary or the backup,
played against a real pair with automatic failover (primary timeout T,
default 3 s). The harness is tests/failover/partitions.py (shared with
tests/failover/test_partitions.py); this script runs many schedules and
prints a summary table.

    .venv/bin/python bench/failover_partitions.py [--schedules 10] [--seed 1] [--window 15] [--timeout 3]
                                                  [--seeds 4,17] [--fresh-pair] [--workdir DIR] [--keep]
                                                  [--witness [--ttl 4] [--margin 1.5]]

For each schedule: a checker asks both appliances' /health every 100 ms
(the same tick), a writer keeps making API writes (a jump client group with
a unique name) against both and records each acknowledged one with which
appliance took it; after the faults, everything is healed and running, the
pair settles (one primary serving, its backup caught up), and then: every
acknowledged write must be on the final primary or in an orphan file
(``/api/failover/orphans``, FO-08) of either appliance: the others are lost
(must be 0); every dual-primary window (ticks at which both answered 200)
is listed with its start and duration and classified: ``documented`` when
it began while only the link between the two was cut (both reached their
test address) and ended within T of the heal (docs/operations.md, "What can
still give two primaries"); ``hand-over`` when the answers do not show both
serving at one moment (each request is answered up to 0.5 s after its tick:
see ``Checker.proven``); anything else is a finding, printed with its
schedule's seed (rerun it alone with ``--seeds N``).

The pair is reused from one schedule to the next (whichever is primary at
the end of one starts the next; a schedule names roles, not appliances);
``--fresh-pair`` makes a new pair for every schedule, and a pair that did not
settle is replaced. Defaults are bounded (about 45 s a schedule here);
ROB-03 asks for at least 50 schedules in a bench: ``--schedules 50``.

``--witness`` (FO-11): a three-member etcd cluster on 127.0.6.1-3 (data on
/dev/shm, tests/failover/etcd.py) and both appliances' witness on (lease TTL
``--ttl``, margin ``--margin``, a key of the pair's own); the schedules add
the witness's faults: an appliance (by role) cut from one etcd member or from
a majority (or all) of them, one member paused (SIGSTOP/SIGCONT) or killed
and restarted. Every proven moment of two appliances serving is then a
finding (no documented case), and so is a write one acknowledged while the
other served throughout its request; the table adds the witness's faults
and the seconds with no primary serving (the witness's availability cost).
Exit 1 on any lost write, finding or pair that did not settle.

Needs root and nftables (scripts/install-system-deps). The addresses
default to 127.0.5.3 / 127.0.5.2 (test address 127.0.5.4) and every cut is
narrowed to this pair's ports, so other test runs on the machine are not
cut and do not cut this one. Every process started here is stopped at the
end, also on SIGINT (Ctrl-C), SIGTERM or SIGHUP (e.g. ``timeout``): the
cuts are healed, both appliances stopped, this run's nftables tables
removed, and the schedules done so far summarized (exit 128 + the signal).
Not part of the test suite."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.failover import etcd as etcdmod  # noqa: E402
from tests.failover.netcut import remove_tables  # noqa: E402
from tests.failover.pairproc import (Member, Probe, Vendor, automatic_failover, make_members, pair,  # noqa: E402
                                     start_all)
from tests.failover.partitions import ETCD_KINDS, configure_witness, play, table_prefix  # noqa: E402

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):  # like KeyboardInterrupt: no ``except Exception`` of the harness swallows it
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum, _frame) -> None:
    for sig in STOP_SIGNALS:  # a second Ctrl-C does not cut the cleanup short
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)  # in the main thread, wherever it waits: the finally blocks heal and stop everything


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


class Lab:
    """The pair under test, its test address (one listener per appliance) and how to replace it."""

    def __init__(self, work: Path, addresses: tuple[str, str], test_ip: str, timeout: int, witness=None):
        self.work, self.addresses, self.test_ip, self.timeout = work, addresses, test_ip, timeout
        self.witness = witness  # (etcd cluster, ttl, margin) or None
        self.vendor = Vendor.make(work)
        self.members: list[Member] = []
        self.probes: dict[str, Probe] = {}
        self.n = 0

    def fresh(self) -> None:
        self.close()
        self.n += 1
        d = self.work / f"pair{self.n}"
        d.mkdir()
        a, b = make_members(d, self.vendor, self.addresses)
        self.members = [a, b]  # known before they start: an interruption now still stops them
        start_all(a, b)
        pair(a, b)
        for m in (a, b):
            self.probes[m.name] = Probe(self.test_ip)
            automatic_failover(m, self.timeout, self.test_ip, self.probes[m.name].port)
        if self.witness is not None:
            cluster, ttl, margin = self.witness
            configure_witness(self.members, cluster, ttl, margin, f"/tether/bench-{os.getpid()}-{self.n}/primary")

    def close(self) -> None:
        """Stop both appliances for good (a restart still in flight in a fault thread cannot launch one
        afterwards) and the test address listeners."""
        for m in self.members:
            try:
                m.stop(final=True)
            except Exception as exc:  # noqa: BLE001 - stop the other one all the same
                log(f"stopping {m.name}: {exc}")
        for p in self.probes.values():
            p.close()
        self.members, self.probes = [], {}


def main() -> None:
    ap = argparse.ArgumentParser(description="ROB-03: random partition / pause / kill schedules against a pair")
    ap.add_argument("--schedules", type=int, default=10, help="how many schedules (ROB-03: at least 50 in a bench)")
    ap.add_argument("--seed", type=int, default=1, help="the first schedule's seed (then seed+1, ...)")
    ap.add_argument("--seeds", help="comma-separated seeds to run instead (e.g. to rerun a finding)")
    ap.add_argument("--window", type=float, default=15, help="seconds within which a schedule's faults start")
    ap.add_argument("--timeout", type=int, default=3, help="primary timeout T, seconds (>= 3)")
    ap.add_argument("--settle-timeout", type=float, default=90)
    ap.add_argument("--fresh-pair", action="store_true", help="a new pair for every schedule")
    ap.add_argument("--addresses", default="127.0.5.3,127.0.5.2")
    ap.add_argument("--test-address", default="127.0.5.4")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--witness", action="store_true", help="FO-11: a three-member etcd witness, and its faults")
    ap.add_argument("--ttl", type=int, default=4, help="the witness's lease TTL, seconds")
    ap.add_argument("--margin", type=float, default=1.5, help="the witness's safety margin, seconds")
    a = ap.parse_args()
    for sig in STOP_SIGNALS:  # end through the finally blocks: heal the cuts, stop the pair, print what was done
        signal.signal(sig, _interrupt)
    if os.geteuid() != 0 or shutil.which("nft") is None:
        raise SystemExit("needs root and nftables (scripts/install-system-deps)")
    if a.witness and etcdmod.etcd_binary() is None:
        raise SystemExit("--witness needs etcd (scripts/install-system-deps installs etcd-server)")
    seeds = [int(x) for x in a.seeds.split(",")] if a.seeds else list(range(a.seed, a.seed + a.schedules))
    work = a.workdir or Path(tempfile.mkdtemp(prefix="tether-bench-partitions-"))
    work.mkdir(parents=True, exist_ok=True)
    load0 = load()
    lab = Lab(work, tuple(a.addresses.split(",")), a.test_address, a.timeout)
    cluster = None
    verdicts = []
    cache: dict = {}
    t_all = time.monotonic()
    interrupted: Interrupted | None = None
    try:
        log(f"work directory {work}; {load0}")
        if a.witness:
            cluster = etcdmod.open_cluster(work)
            lab.witness = (cluster, a.ttl, a.margin)
            log(f"etcd witness {', '.join(cluster.endpoints)} (data {cluster.root}); lease TTL {a.ttl} s, "
                f"margin {a.margin} s")
        lab.fresh()
        log(f"pair {lab.members[0].peer_address} (primary) / {lab.members[1].peer_address}; T = {a.timeout} s; "
            f"test address {a.test_address} (ports {', '.join(f'{n} {p.port}' for n, p in lab.probes.items())})")
        for i, seed in enumerate(seeds):
            if i and a.fresh_pair:
                lab.fresh()
                cache.clear()
            t0 = time.monotonic()
            v = play(lab.members, {n: p.port for n, p in lab.probes.items()}, a.test_address, seed,
                     window=a.window, timeout=a.timeout, settle_timeout=a.settle_timeout, orphan_cache=cache,
                     etcd=cluster)
            v.took = time.monotonic() - t0
            verdicts.append(v)
            dual = ", ".join(f"{w['start']:.1f}+{w['duration']:.1f}s {w['kind']}" for w in v.windows) or "none"
            log(f"seed {seed}: {'; '.join(f.text() for f in v.schedule)}")
            log(f"  acked {v.acked}, kept {v.kept}, orphaned {v.orphaned}, lost {len(v.lost)}; dual-primary: {dual}; "
                f"settled {'-' if v.settled_after is None else f'{v.settled_after:.1f} s'} after the heal; "
                + (f"no primary serving {v.unserved:.1f} s; " if a.witness and v.unserved is not None else "")
                + f"{v.took:.0f} s" + (f"; PROBLEMS: {v.problems}" if v.problems else ""))
            if v.problems:
                log("  the pair did not settle: replacing it")
                lab.fresh()
                cache.clear()
    except Interrupted as exc:
        interrupted = exc
    finally:
        for sig in STOP_SIGNALS:  # a second Ctrl-C does not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        if interrupted is not None:
            log(f"{interrupted}: healing every cut and stopping the pair")
        lab.close()
        if cluster is not None:
            try:
                etcdmod.close_cluster(cluster)
            except Exception as exc:  # noqa: BLE001 - still remove the tables
                log(f"stopping the etcd cluster: {exc}")
        left = remove_tables(table_prefix())
        if left:
            log(f"removed nftables tables left behind: {', '.join(left)}")
    total = time.monotonic() - t_all
    print()
    if interrupted is not None:
        print(f"INTERRUPTED by {interrupted} after {len(verdicts)} of {len(seeds)} schedules")
    mode = (f"witness: 3 etcd members, lease TTL {a.ttl} s, margin {a.margin} s" if a.witness else "no witness")
    print(f"ROB-03 ({mode})  {len(verdicts)} schedules, T = {a.timeout} s, faults start within {a.window:.0f} s; "
          f"{total / 60:.1f} min; machine {load0} at the start, {load()} at the end (shared: timings are indicative)")
    extra = f" {'wit':>3} {'no-prim':>7}" if a.witness else ""
    print(f"{'seed':>5} {'faults':>6} {'skip':>4}{extra} {'acked':>10} {'kept':>5} {'orph':>5} {'lost':>5} "
          f"{'dual-primary windows (start+duration, kind)':<48} {'settle':>6}  verdict")
    for v in verdicts:
        dual = ", ".join(f"{w['start']:.1f}+{w['duration']:.1f}s {w['kind'][:3]}" for w in v.windows) or "-"
        acked = "/".join(str(v.acked.get(m, 0)) for m in ("a", "b"))
        settle = "-" if v.settled_after is None else f"{v.settled_after:.1f}s"
        verdict = "ok" if v.ok else "FINDING"
        extra = (f" {v.witness_faults:>3} {'-' if v.unserved is None else f'{v.unserved:.1f}s':>7}"
                 if a.witness else "")
        print(f"{v.seed:>5} {len(v.schedule):>6} {len(v.skipped):>4}{extra} {acked:>10} {v.kept:>5} {v.orphaned:>5} "
              f"{len(v.lost):>5} {dual[:48]:<48} {settle:>6}  {verdict}")
    lost = sum(len(v.lost) for v in verdicts)
    acked = sum(sum(v.acked.values()) for v in verdicts)
    windows = [w for v in verdicts for w in v.windows]
    documented = [w for w in windows if w["kind"] == "documented"]
    handovers = [w for w in windows if w["kind"] == "hand-over"]
    print(f"acknowledged writes {acked}, lost {lost} (target 0); dual-primary windows {len(windows)}: "
          f"{len(documented)} documented (longest {max((w['duration'] for w in documented), default=0):.1f} s), "
          f"{len(handovers)} hand-overs (answers in flight, not both at one moment), "
          f"{len(windows) - len(documented) - len(handovers)} findings; schedules not settled "
          f"{sum(1 for v in verdicts if v.settled_after is None)}")
    if a.witness:
        faults = [f for v in verdicts for f in v.schedule if f.kind in ETCD_KINDS]
        kinds = {k: sum(1 for f in faults if f.kind == k) for k in ETCD_KINDS}
        skipped = sum(1 for v in verdicts for t in v.skipped if t.split()[0] in ETCD_KINDS)
        unserved = [v.unserved for v in verdicts if v.unserved is not None]
        took = sum(v.observed for v in verdicts if v.unserved is not None)
        print(f"witness faults {len(faults)} ({', '.join(f'{k} {n}' for k, n in kinds.items())}; {skipped} skipped: "
              f"already in effect); no primary serving: {sum(unserved):.1f} s in all over {len(unserved)} settled "
              f"schedules ({100 * sum(unserved) / took if took else 0:.0f}% of their {took:.0f} s from the "
              f"schedule's start to settled), per schedule mean {sum(unserved) / len(unserved) if unserved else 0:.1f} s, "
              f"longest {max(unserved, default=0):.1f} s")
    for v in verdicts:
        for w in v.windows:
            if w["kind"] == "hand-over":
                print(f"  seed {v.seed}: hand-over at {w['start']:.1f} s ({w['duration']:.1f} s): {w['why']}")
    for v in verdicts:
        if v.ok:
            continue
        print(f"\nseed {v.seed}: {'; '.join(f.text() for f in v.schedule)}")
        for w in v.findings:
            print(f"  dual primary at {w['start']:.1f} s for {w['duration']:.1f} s: {w['why']}")
        for name in v.lost[:20]:
            print(f"  lost: {name}")
        for p in v.problems:
            print(f"  problem: {p}")
        print("  events: " + " | ".join(e.strip() for e in v.events))
    if not a.keep and not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory kept: {work}")
    if interrupted is not None:
        sys.exit(128 + interrupted.signum)
    sys.exit(0 if lost == 0 and all(v.ok for v in verdicts) else 1)


if __name__ == "__main__":
    main()
