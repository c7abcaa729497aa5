#!/usr/bin/env python3
"""PERF-08: how many new TLS jump-client connections one appliance core
admits per second (TLS handshake, WebSocket upgrade, hello, identity check,
registration, welcome), and the appliance CPU each admission costs, against
the 300/s target (the highest CL-04 connection rate).

    .venv/bin/python bench/clients_admission.py [--clients 3000] [--duration 30] [--in-flight 64]
                                                [--rate 300] [--appliance-cpu 0] [--loadgen-cpu 1]
                                                [--workdir DIR] [--keep]

Makes a fresh data directory with a site and N seeded jump clients (the
helpers of bench/clients_hold.py; each with the address it will connect
from already recorded, as the clients of a recovery were connected before,
so their reconnection reports nothing new), starts ``tether serve``, sets the Jump
client settings (connection rate ``--rate``, 300/s: the CL-04 maximum) and
the per-source limit (every connection comes from 127.0.0.1), pins every
thread of the appliance to one CPU and this process (the load generator) to
the other, then opens N new connections as fast as it can, at most
``--in-flight`` at once, for at most ``--duration`` seconds. Each one is the
real client's connection (``tether.clients.transport.Site.open``: TLS with
the pin checked, the WebSocket upgrade, the hello, the welcome); a client
refused ``busy`` waits the ``retry_after`` the appliance gave it and tries
again, as ``AgentClient`` does (``retry_after`` times 1 to 1.5, at random); a
refusal without ``retry_after`` (unauthorized, revoked) ends that client. Admitted clients stay connected until the
end (a recovery's clients stay), then all are closed.

Prints the admissions per second (from the first attempt to the last
welcome), the appliance's CPU per admission (utime+stime from
/proc/PID/stat over the same window, so refused attempts are paid for by
the admissions), the appliance's CPU ceiling (1000 / CPU ms: admissions per
second at 100% of its core), the load generator's own CPU (at ~100% the
figure is the load generator's, not the appliance's) and the ratio to the
target; the refusals and failures by kind. Exits 1 when fewer than 300
admissions per second were measured or a client was never admitted; it
never crashes on a partial result (it prints what it measured and why the
clients failed). Not part of the test suite."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients_hold import (CLK_TCK, Appliance, _ticks, allow_one_source, connected_on_appliance,  # noqa: E402
                          exit_on_signals, finish_workdir, log, machine_ticks, make_site, raise_fd_limit, seed_clients,
                          set_jump_settings, site_admin)

TARGET = 300.0  # PERF-08: admissions per second on one appliance core


def pin_process(pid: int, cpu: int) -> int:
    """Pin every thread of ``pid`` to ``cpu`` (threads created later inherit it); the threads pinned."""
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
            n += 1
        except (ProcessLookupError, PermissionError):
            pass
    return n


def as_if_seen_before(data: Path) -> None:
    """Record the address the clients will report (127.0.0.1) as theirs, as the clients of a recovery
    were connected before: their reconnection reports nothing new."""
    from tether.core.paths import DataDir

    con = sqlite3.connect(DataDir.at(data).site_db)
    try:
        with con:
            con.execute("UPDATE jump_clients SET public_ip = '127.0.0.1'")
    finally:
        con.close()


def loop_ticks(pid: int) -> int:
    """utime + stime of the process's main thread (the event loop), in clock ticks (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def self_ticks() -> int:
    t = os.times()
    return round((t.user + t.system) * CLK_TCK)


class Admissions:
    """What the load generator saw: the welcomes' times, the refusals and failures by kind."""

    def __init__(self):
        self.welcomed: list[float] = []
        self.refused: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.gave_up = 0
        self.sockets: list = []
        self.on_appliance: int | str = "unknown"
        self.loop_ticks = 0  # the appliance's event loop thread, at the end (minus its start: ``loop_start``)
        self.loop_start = 0
        self.end = (0, 0, 0, 0.0)  # (appliance, load generator, machine busy ticks, monotonic time) at the end


async def one_client(site, ident: dict, out: Admissions, gate: asyncio.Semaphore, deadline: float,
                     rng: random.Random) -> None:
    """One jump client's first connection: the real ``Site.open``, retried after a ``busy`` at the
    ``retry_after`` the appliance gave (and after any other failure at once), until ``deadline``."""
    from tether.clients.transport import Refused, describe

    hello = {"role": "jump", "client_id": ident["client_id"], "secret": ident["secret"],
             "hostname": ident["name"], "os": "linux"}
    while time.monotonic() < deadline:
        wait = 0.0
        async with gate:
            try:
                ws, _welcome, _ = await site.open(hello, open_timeout=15.0)
            except Refused as e:
                out.refused[e.code] += 1
                if e.retry_after is None:  # unauthorized, revoked...: retrying would not get it in
                    return
                wait = float(e.retry_after) * (1 + 0.5 * rng.random())  # agent.py's jitter
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown, never raised
                out.failed[describe(e)[:100]] += 1
                wait = 0.05
            else:
                out.welcomed.append(time.monotonic())
                out.sockets.append(ws)
                return
        if wait:
            await asyncio.sleep(wait)
    out.gave_up += 1


async def storm(host: str, port: int, pin: str, idents: list[dict], in_flight: int, duration: float,
                apl_pid: int, probe) -> Admissions:
    """All the clients at once (``in_flight`` connecting at a time); the end of the storm is measured
    before the admitted connections are closed."""
    from tether.clients.transport import Site

    site = Site(host, port, {"pin": pin})
    out = Admissions()
    gate = asyncio.Semaphore(in_flight)
    deadline = time.monotonic() + duration
    rng = random.Random(1)
    tasks = [asyncio.ensure_future(one_client(site, d, out, gate, deadline, rng)) for d in idents]
    try:
        await asyncio.wait(tasks, timeout=duration + 20)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.end = (_ticks(apl_pid), self_ticks(), machine_ticks()[0], time.monotonic())
        out.loop_ticks = loop_ticks(apl_pid)
        try:
            out.on_appliance = probe()  # the storm is over: a blocking look is fine
        except Exception as e:  # noqa: BLE001 - a figure we could not get is shown as such
            out.on_appliance = f"unknown ({type(e).__name__}: {e})"
        await close_all(out.sockets)
    return out


async def close_all(sockets: list) -> None:
    for i in range(0, len(sockets), 500):
        await asyncio.gather(*(ws.close() for ws in sockets[i:i + 500]), return_exceptions=True)


def run_storm(host: str, port: int, pin: str, idents: list[dict], a, apl_pid: int, probe) -> tuple[Admissions, float]:
    """The storm on uvloop, as the real clients run; (what was seen, its start on the monotonic clock)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        t0 = time.monotonic()
        out = runner.run(storm(host, port, pin, idents, a.in_flight, a.duration, apl_pid, probe))
        return out, t0


def report(a, out: Admissions, t0: float, apl_ticks: int, gen_ticks: int, machine: int, window: float) -> bool:
    """Print the figures; whether the target was met."""
    n = len(out.welcomed)
    span = (max(out.welcomed) - t0) if out.welcomed else window
    rate = n / span if span > 0 else 0.0
    cpu_ms = apl_ticks / CLK_TCK * 1000 / n if n else float("nan")
    apl_pct = apl_ticks / CLK_TCK / window * 100 if window > 0 else 0.0
    gen_pct = gen_ticks / CLK_TCK / window * 100 if window > 0 else 0.0
    others = max(0.0, machine / CLK_TCK / window * 100 - apl_pct - gen_pct) if window > 0 else 0.0
    attempts = n + sum(out.refused.values()) + sum(out.failed.values())
    print()
    print(f"PERF-08  {a.clients} new jump clients, at most {a.in_flight} connecting at once, connection rate "
          f"{a.rate}/s; appliance pinned to CPU {a.appliance_cpu}, load generator to CPU {a.loadgen_cpu}")
    print(f"admitted: {n}/{a.clients} in {span:.2f} s -> {rate:.0f} admissions/s "
          f"(the appliance reports {out.on_appliance} jump clients connected)")
    print(f"appliance CPU: {cpu_ms:.2f} ms per admission, {apl_pct:.0f}% of its core over {window:.2f} s "
          f"-> ceiling {1000 / cpu_ms if n else 0:.0f} admissions/s at 100% of one core; "
          f"{apl_ticks / CLK_TCK * 1000 / attempts if attempts else 0:.2f} ms per connection attempt ({attempts})")
    if n:
        loop_ms = (out.loop_ticks - out.loop_start) / CLK_TCK * 1000 / n
        print(f"  of which the event loop thread {loop_ms:.2f} ms, the other threads (database look-ups, "
              f"last-seen writes) {cpu_ms - loop_ms:.2f} ms")
    print(f"load generator CPU: {gen_pct:.0f}% of its core"
          + (" (near 100%: the figure may be the load generator's, not the appliance's)" if gen_pct > 90 else "")
          + f"; other processes on the machine: {others:.0f}% of one CPU, load average {os.getloadavg()[0]:.1f}")
    print(f"refused (then retried): {dict(out.refused) or 'none'}; failed attempts: {dict(out.failed) or 'none'}; "
          f"never admitted: {a.clients - n} ({out.gave_up} gave up at the deadline)")
    floor = max(0.0, (a.clients - a.rate) / a.rate)
    print(f"CL-04 floor for {a.clients} at {a.rate}/s (bucket starts full): {floor:.1f} s "
          f"-> at most {a.clients / floor if floor else float('inf'):.0f} admissions/s")
    print(f"admissions/s vs target {TARGET:.0f}/s -> ratio {rate / TARGET:.2f} (>= 1.00 meets the target)")
    return rate >= TARGET and n == a.clients


def main() -> None:
    ap = argparse.ArgumentParser(description="PERF-08: jump-client admissions per second on one appliance core")
    ap.add_argument("--clients", type=int, default=3000)
    ap.add_argument("--duration", type=float, default=30, help="bound on the storm, seconds")
    ap.add_argument("--in-flight", type=int, default=64, help="connection attempts under way at once")
    ap.add_argument("--rate", type=int, default=300, help="connection_rate_per_second (1..300)")
    ap.add_argument("--appliance-cpu", type=int, default=0)
    ap.add_argument("--loadgen-cpu", type=int, default=1)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    exit_on_signals()
    limit = raise_fd_limit()
    if a.clients + 200 > limit:
        raise SystemExit(f"{a.clients} clients need more than the {limit} file descriptors allowed")
    cpus = os.sched_getaffinity(0)
    if not {a.appliance_cpu, a.loadgen_cpu} <= cpus or a.appliance_cpu == a.loadgen_cpu:
        raise SystemExit(f"--appliance-cpu and --loadgen-cpu: two different CPUs of {sorted(cpus)}")
    work = a.workdir or Path(tempfile.mkdtemp(prefix="tether-bench-admission-"))
    work.mkdir(parents=True, exist_ok=True)
    apl = None
    met = False
    try:
        log(f"work directory {work}; fd limit {limit}; CPUs {sorted(cpus)}")
        data = make_site(work)
        ids = work / "identities.json"
        seed_clients(data, a.clients, ids)
        as_if_seen_before(data)
        idents = json.loads(ids.read_text())
        apl = Appliance(data, work).start()
        pin = apl.pin()
        with apl.client() as c:
            h = site_admin(c)
            set_jump_settings(c, h, a.rate, 600)  # heartbeats play no part in the storm
            allow_one_source(c, 2 * a.clients)  # refused attempts linger a moment in their WebSocket close
            time.sleep(2.5)  # the hub's cached settings (2 s) are the new ones
            threads = pin_process(apl.pid, a.appliance_cpu)
            os.sched_setaffinity(0, {a.loadgen_cpu})
            log(f"appliance pid {apl.pid} port {apl.port}: {threads} threads pinned to CPU {a.appliance_cpu}; "
                f"load generator on CPU {a.loadgen_cpu}")
            apl0, gen0, m0, w0 = _ticks(apl.pid), self_ticks(), machine_ticks()[0], time.monotonic()
            loop0 = loop_ticks(apl.pid)
            out, t0 = run_storm("127.0.0.1", apl.port, pin, idents, a, apl.pid, lambda: connected_on_appliance(c, h))
            apl1, gen1, m1, t_end = out.end
            out.loop_start = loop0
            if apl.proc.poll() is not None:  # its CPU can no longer be read: say so, report the rest
                log(f"the appliance exited during the storm ({apl.proc.returncode}); see {work}/serve1.log")
                apl1 = apl0
            met = report(a, out, t0, apl1 - apl0, gen1 - gen0, m1 - m0, t_end - w0)
    finally:
        if apl:
            apl.stop()
    finish_workdir(a, work)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
