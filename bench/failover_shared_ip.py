#!/usr/bin/env python3
"""PERF-01 through a keepalived shared address (FO-07): the failover time
seen by clients that know the site by one address that moves.

The pair of tests/failover/sharedip.py in network namespaces (needs root,
iproute2, keepalived, nftables, tcpdump, curl: scripts/install-system-deps):
appliances A and B, keepalived beside each with docs/operations.md's
keepalived.conf (it follows Tether's role, never decides it), a lan client
namespace that reaches the site's name at the shared address, automatic
failover with T = 3 s and the router as connectivity test address. A real
``tether-jump`` client (``--max-backoff 1``, as in the tests) and
``tether-rep`` console sessions run in the client namespace.

    sudo .venv/bin/python bench/failover_shared_ip.py [--runs 3] [--no-rep] [--workdir DIR] [--keep]

Each run SIGKILLs the primary's Tether (its keepalived keeps running, as
when only the process dies) and measures from that moment: detect and
promote (the new primary's own record, ``automatic_failover.last_takeover``),
released (the address left the old primary: its keepalived's check
failed), moved (the address is on the new primary), garp (a gratuitous ARP
from the new primary seen by tcpdump in the client namespace), serving
(``/health`` 200 through the shared address), jump (the client online on
the new primary) and console (a ``tether-rep shell`` session opened through
the shared address, its process start-up included). The total (console, or
jump with ``--no-rep``) is compared with T + 2 s. Between runs the killed
appliance is started again in its namespace, re-enters as backup (FO-08),
and once it is in sync the next run kills the other one.

Every process started here is stopped at the end and the namespaces are
deleted; the work directory is removed unless ``--keep`` / ``--workdir``.
Not part of the test suite."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from failover_time import TARGET_EXTRA_S, Watch, console_back, fmt, load, make_rep  # noqa: E402
from tests.clients.conftest import Clients, Hosts, online  # noqa: E402
from tests.failover import sharedip  # noqa: E402
from tests.failover.netns import Lab  # noqa: E402
from tests.failover.pairproc import Vendor  # noqa: E402
from tests.failover.pairs import in_sync, status  # noqa: E402
from tests.helpers import NEW_SITE_PASSWORD, ApplianceProc, site_token  # noqa: E402

JUMP_NAME = "db-lan"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make(vendor: Vendor, work: Path):
    def start(host, listen):
        data = vendor.new_data(work / host.ns)
        return sharedip.logged_in(ApplianceProc(data, listen, prefix=host.prefix).start(timeout=120))
    return start


def relogin(side: sharedip.Side) -> None:
    """A restarted appliance: log in again (sessions are local to each appliance and may not survive its
    re-entry as backup)."""
    side.site_headers = {"Authorization": f"Bearer {site_token(side.client, 'admin', NEW_SITE_PASSWORD)}"}


def vip_health(vip: str) -> bool:
    try:
        return httpx.get(f"https://{vip}:{sharedip.PORT}/health", verify=False, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def takeover_steps(new: sharedip.Side, wall_kill: float) -> dict:
    took = (status(new.client, new.site_headers)["automatic_failover"].get("last_takeover") or {})
    return {name: took[key] - wall_kill for name, key in (("detect", "detected_at"), ("promote", "promoted_at"))
            if took.get(key) is not None}


def one_run(pair: sharedip.SharedIpPair, clients: Clients, rep: bool) -> dict:
    old = pair.holder()
    if old is None:
        raise RuntimeError(f"the shared address is not on exactly one appliance: {pair.vip_on()!r}")
    new = pair.other(old)
    arp_seen = len(pair.arp_log.read_text(errors="replace"))
    new_mac = new.host.mac()

    def garp_since() -> bool:
        text = pair.arp_log.read_text(errors="replace")[arp_seen:]
        return any(line.split(" > ", 1)[0].endswith(new_mac) and f"who-has {pair.vip}" in line
                   and f"tell {pair.vip}," in line for line in text.splitlines())

    t_kill, wall_kill = time.monotonic(), time.time()
    old.proc.stop(signal.SIGKILL)
    watches = {"released": Watch(lambda: pair.vip not in old.host.addresses(), 0.05, 60),
               "moved": Watch(lambda: pair.vip in new.host.addresses(), 0.05, 60),
               "garp": Watch(garp_since, 0.05, 60),
               "serving": Watch(lambda: vip_health(pair.vip), 0.05, 60),
               "jump": Watch(lambda: online(new.client, new.site_headers, "jump", JUMP_NAME), 0.1, 90)}
    out: dict = {"killed": old.host.ns[-1].upper()}
    if rep:
        back = console_back(clients.env, sharedip.PORT, pair.pin, JUMP_NAME, t_kill, prefix=tuple(pair.client.prefix))
        if "rep" in back:
            out["console"] = back["rep"]
    for name, w in watches.items():
        out[name] = (w.wait() or math.nan) - t_kill
    out.update(takeover_steps(new, wall_kill))
    out["total"] = out.get("console", out["jump"]) if rep else out["jump"]
    out["old"], out["new"] = old, new
    return out


def rejoin(side: sharedip.Side, other: sharedip.Side, timeout: float = 180) -> None:
    side.proc.start(timeout=120)
    relogin(side)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if status(side.client, side.site_headers)["role"] == "backup" and \
                    in_sync(other.client, other.site_headers, side.client, side.site_headers):
                return
        except (httpx.HTTPError, AssertionError, KeyError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{side.host.ns} did not re-enter as a backup in sync within {timeout:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description="PERF-01 through a keepalived shared address")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-rep", action="store_true", help="measure the jump client only, no console session")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("this benchmark builds network namespaces: run it as root")
    work = a.workdir or Path(tempfile.mkdtemp(prefix="tether-bench-sharedip-"))
    work.mkdir(parents=True, exist_ok=True)
    lab = Lab(work)
    pair = None
    clients = None
    runs: list[dict] = []
    failure = None
    load0 = load()
    try:
        lab.start()
        vendor = Vendor.make(work)
        log(f"work directory {work}; {load0}")
        pair = sharedip.build(lab, make(vendor, work), work)
        log(f"pair: A {pair.a.site_address}, B {pair.b.site_address}, shared address {pair.vip} on "
            f"{pair.vip_on()}; T = {sharedip.TIMEOUT} s")
        make_rep(pair.a.client, pair.a.site_headers)
        clients = Clients(work / "lan-clients", Hosts(work / "lan-hosts"), prefix=pair.client.prefix)
        clients.tmp.mkdir()
        clients.hosts.point(pair.vip)
        token = clients.deploy(pair.a.client, pair.a.site_headers, "jump", pin=pair.pin)["token"]
        clients.install("jump", sharedip.PORT, token, JUMP_NAME)
        jump = clients.run("jump", JUMP_NAME, "--max-backoff", "1")
        deadline = time.monotonic() + 60
        while not online(pair.a.client, pair.a.site_headers, "jump", JUMP_NAME):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the jump client never came online: {jump.text()[-2000:]}")
            time.sleep(0.2)
        for i in range(a.runs):
            holder = pair.holder()
            other = pair.other(holder)
            deadline = time.monotonic() + 120
            while not in_sync(holder.client, holder.site_headers, other.client, other.site_headers):
                if time.monotonic() > deadline:
                    raise TimeoutError("the backup is not in sync")
                time.sleep(0.2)
            while not online(holder.client, holder.site_headers, "jump", JUMP_NAME):
                if time.monotonic() > deadline:
                    raise TimeoutError("the jump client is not on the primary")
                time.sleep(0.2)
            log(f"run {i + 1}: killing {holder.host.ns[-1].upper()}'s Tether ({holder.site_address})")
            r = one_run(pair, clients, not a.no_rep)
            runs.append(r)
            log(f"run {i + 1}: " + ", ".join(f"{k} {fmt(r.get(k)).strip()} s" for k in
                                             ("detect", "promote", "released", "moved", "garp", "serving", "jump",
                                              "console")))
            if i + 1 < a.runs:
                rejoin(r["old"], r["new"])
    except Exception as exc:  # noqa: BLE001 - a bench never crashes: say what failed, print what was measured
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        if clients is not None:
            for p in clients.procs:
                p.stop()
        if pair is not None:
            pair.close()
            for side in (pair.a, pair.b):
                side.proc.stop()
        lab.close()
    target = sharedip.TIMEOUT + TARGET_EXTRA_S
    cols = ("detect", "promote", "released", "moved", "garp", "serving", "jump", "console", "total")
    print()
    print(f"PERF-01  shared address (keepalived, docs/operations.md's configuration), primary timeout T = "
          f"{sharedip.TIMEOUT} s, target T + 2 = {target:.0f} s; SIGKILL of the primary's Tether; jump client "
          f"--max-backoff 1; runs alternate direction")
    print(f"machine: {load0} at the start, {load()} at the end (shared with other work: figures are indicative)")
    print(f"{'run':>3} {'killed':>6} " + " ".join(f"{c:>8}" for c in cols) + f" {'ratio':>6}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>3} {r['killed']:>6} " + " ".join(f"{fmt(r.get(c))}s " for c in cols)
              + f"{(r['total'] or math.nan) / target:6.2f}")
    if runs:
        def med(k):
            xs = [r[k] for r in runs if r.get(k) is not None and not math.isnan(r[k])]
            return statistics.median(xs) if xs else None
        print(f"{'med':>3} {'':>6} " + " ".join(f"{fmt(med(c))}s " for c in cols)
              + f"{(med('total') or math.nan) / target:6.2f}")
        print("seconds after the SIGKILL; detect/promote = the new primary's record of its takeover; released / "
              "moved = the shared address left the old primary / is on the new one (ip addr, every 50 ms); garp = "
              "its gratuitous ARP seen in the client namespace; serving = /health 200 through the shared address; "
              "jump = the client online on the new primary; console = a tether-rep shell session opened through "
              "the shared address; ratio = total / (T + 2) (<= 1.00 meets PERF-01)")
    if failure:
        print(f"\nFAILED (the figures above are those measured before): {failure}")
        print(f"the logs are in {work} (kept)")
        sys.exit(1)
    if a.workdir is None and not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory kept: {work}")


if __name__ == "__main__":
    main()
