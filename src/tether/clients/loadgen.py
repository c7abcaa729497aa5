"""A load generator for the client channel (PERF-02, PERF-07): many REAL
jump clients in one process, on uvloop. It owns only the harness around
them: reading a JSON file of identities, starting one unmodified
``AgentClient`` (agent.py: backoff with jitter, ``busy``/``retry_after``,
heartbeats) per identity, watching when each one becomes connected, and
reporting it. It adds nothing to the protocol and changes no client logic;
it only bounds how many connection attempts are in flight at once in the
process (``--max-opening``), because here thousands of clients share one CPU.

    python -m tether.clients.loadgen --site HOST:PORT --pin sha256/... \\
        --identities ids.json --start 0 --count 3750 [--report-file F] [--interval 0.5] \\
        [--ramp SECONDS] [--max-opening 50] [--duration 3600]

``ids.json`` is a JSON list of ``{"client_id", "secret", "name"}`` (the
benchmarks in bench/ write it while seeding the site database). The clients
``start .. start+count-1`` are run. ``--max-opening`` bounds the connection
attempts in flight at once in this process (see ``LoadGen._gated_open``);
``--ramp`` spreads the clients' first attempts (default: all at once).

Progress goes to stdout, one line per interval; ``--report-file`` is
rewritten atomically each interval with a JSON object::

    {"pid", "start", "count", "started_mono", "started_wall", "t_mono", "t_wall",
     "connected", "connects", "disconnects", "ever_connected", "opening",
     "log": {"<message kind>": n},            # the clients' warnings, counted
     "rss_kb",                                 # this process
     "ups": [[t, ...], ...],                   # per client: monotonic times it became connected
     "downs": [n, ...]}                        # per client: times it lost the connection

Times are ``time.monotonic()`` (CLOCK_MONOTONIC: the same clock in every
process of the machine), so a driver can compare them with its own. A
client's ``ups`` keeps its first time and its latest ones (``--keep``).

The process stops by itself on SIGTERM/SIGINT, after ``--duration``
seconds, or when its parent process goes away; it raises its soft
file-descriptor limit to the hard limit first."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import random
import re
import resource
import signal
import sys
import time
from pathlib import Path

from .agent import AgentClient, Identity
from .transport import Site, split_site


class _Tally(logging.Handler):
    """Counts the clients' log records by kind (numbers blanked) instead of printing thousands of them;
    the first few of each kind go to stderr."""

    def __init__(self, echo: int = 3):
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:
            msg = str(record.msg)
        key = re.sub(r"\d+(\.\d+)?", "N", msg)[:80]
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        if n <= self.echo:
            sys.stderr.write(f"loadgen[{os.getpid()}] {record.levelname.lower()}: {msg}\n")


class _Watched(asyncio.Event):
    """The ``connected`` event of one client, noting when it is set and cleared (the client sets it after
    the welcome and clears it when the connection ends: agent.py)."""

    def __init__(self, gen: "LoadGen", i: int):
        super().__init__()
        self._gen, self._i = gen, i

    def set(self) -> None:
        if not self.is_set():
            self._gen.up(self._i)
        super().set()

    def clear(self) -> None:
        if self.is_set():
            self._gen.down(self._i)
        super().clear()


class LoadGen:
    """The clients of one process and what was seen of them (``ups``: when each became connected)."""

    def __init__(self, host: str, port: int, pin: str, idents: list[dict], seed: int, keep: int = 8,
                 max_opening: int = 0):
        self.rng = random.Random(seed)  # one generator for all (a Mersenne Twister state is ~2.5 KB)
        self.keep = keep
        self.opening = asyncio.Semaphore(max_opening) if max_opening > 0 else None
        self.in_open = 0
        self.clients: list[AgentClient] = []
        self.ups: list[list[float]] = [[] for _ in idents]
        self.downs = [0] * len(idents)
        self.connected = 0
        self.connects = 0
        self.disconnects = 0
        for i, d in enumerate(idents):
            ident = Identity(site=host, port=port, kind="jump", client_id=d["client_id"], secret=d["secret"],
                             name=d["name"], trust={"pin": pin})
            c = AgentClient(ident, rng=self.rng, hostname=d.get("hostname") or d["name"])
            c.connected = _Watched(self, i)
            if self.opening is not None:
                c.site.open = functools.partial(self._gated_open, c.site)
            self.clients.append(c)

    async def _gated_open(self, site: Site, hello: dict, open_timeout: float = 15.0):
        """``Site.open`` itself, at most ``max_opening`` at a time in this process. Thousands of clients share
        this process's one CPU, where in the field each has its own: without the gate a storm of attempts
        slows every handshake in the process past the clients' 15 s opening timeout and nothing connects (the
        load generator, not the appliance, is then what is measured). The wait comes before the attempt, as
        on a slow machine; the attempt and its timeout are the client's own."""
        async with self.opening:
            self.in_open += 1
            try:
                return await Site.open(site, hello, open_timeout)
            finally:
                self.in_open -= 1

    def up(self, i: int) -> None:
        ups = self.ups[i]
        ups.append(time.monotonic())
        if len(ups) > self.keep:
            del ups[1]  # keep the first and the latest ones
        self.connected += 1
        self.connects += 1

    def down(self, i: int) -> None:
        self.downs[i] += 1
        self.connected -= 1
        self.disconnects += 1

    def stop(self) -> None:
        for c in self.clients:
            c.stop()


def _rss_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


async def run(a: argparse.Namespace, tally: _Tally) -> int:
    host, port = split_site(a.site)
    every = json.loads(Path(a.identities).read_text())
    idents = every[a.start:a.start + a.count] if a.count else every[a.start:]
    if not idents:
        print("loadgen: no identities in that range", file=sys.stderr)
        return 2
    limit = raise_fd_limit()
    if len(idents) + 64 > limit:
        print(f"loadgen: {len(idents)} clients need more than the {limit} file descriptors this process may "
              "open; run several processes", file=sys.stderr)
        return 2
    gen = LoadGen(host, port, a.pin, idents, seed=a.seed * 1_000_003 + a.start, keep=a.keep,
                  max_opening=a.max_opening)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    parent = os.getppid()
    started_mono, started_wall = time.monotonic(), time.time()
    tasks = []

    async def launch():
        # all at once (a storm, as after an appliance restart) unless --ramp spreads the first attempts
        n = len(gen.clients)
        for i, c in enumerate(gen.clients):
            if a.ramp > 0:
                delay = started_mono + a.ramp * i / n - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(c.run()))
            if i % 500 == 499:
                await asyncio.sleep(0)

    def report(final: bool = False) -> None:
        now = time.monotonic()
        ever = sum(1 for u in gen.ups if u)
        doc = {"pid": os.getpid(), "start": a.start, "count": len(idents), "started_mono": started_mono,
               "started_wall": started_wall, "t_mono": now, "t_wall": time.time(), "final": final,
               "connected": gen.connected, "connects": gen.connects, "disconnects": gen.disconnects,
               "ever_connected": ever, "opening": gen.in_open, "log": dict(tally.counts), "rss_kb": _rss_kb()}
        if a.report_file:
            _write_atomic(Path(a.report_file), json.dumps({**doc, "ups": gen.ups, "downs": gen.downs},
                                                          separators=(",", ":")))
        if not a.quiet or final:
            print(f"loadgen[{a.start}+{len(idents)}] t={now - started_mono:7.1f}s connected={gen.connected} "
                  f"ever={ever} connects={gen.connects} disconnects={gen.disconnects} opening={gen.in_open} "
                  f"rss={doc['rss_kb'] // 1024}MB",
                  flush=True)

    launcher = asyncio.ensure_future(launch())
    deadline = started_mono + a.duration
    try:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), a.interval)
            except asyncio.TimeoutError:
                pass
            report()
            if time.monotonic() > deadline or os.getppid() != parent:
                break
    finally:
        launcher.cancel()
        gen.stop()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for t in pending:
                t.cancel()
        report(final=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tether.clients.loadgen", description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", required=True, help="HOST:PORT of the appliance")
    ap.add_argument("--pin", required=True, help="sha256/... pin of the site certificate's key")
    ap.add_argument("--identities", required=True, help="JSON list of {client_id, secret, name}")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=0, help="0: all from --start")
    ap.add_argument("--report-file", help="rewritten (atomically) every interval with the JSON report")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between reports")
    ap.add_argument("--ramp", type=float, default=0.0, help="spread the clients' first attempts over this many "
                                                            "seconds (default: all at once)")
    ap.add_argument("--duration", type=float, default=3600.0, help="stop by itself after this many seconds")
    ap.add_argument("--max-opening", type=int, default=50,
                    help="connection attempts in flight at once in this process (0: no limit)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=int, default=8, help="connection times kept per client")
    ap.add_argument("--quiet", action="store_true", help="print only the final line")
    a = ap.parse_args(argv)
    client_log = logging.getLogger("tether.client")
    client_log.setLevel(logging.WARNING)
    client_log.propagate = False
    tally = _Tally()
    client_log.addHandler(tally)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(a, tally))


if __name__ == "__main__":
    sys.exit(main())
