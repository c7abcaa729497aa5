#!/usr/bin/env python3
"""Issue 19 (ROB-02): one appliance under a connection flood from loopback, in
waves: idle TCP connections, TLS connections stuck in their handshake (a
ClientHello never completed), TLS connections trickling header lines, idle
WebSockets on /client that never send a hello, and oversized request bodies
(100 MB declared, and chunked bodies streamed past the cap). During each wave
a prober asks /health from another source address every 0.25 s on a new
connection, in its own process (so the flood's client-side TLS work does
not delay it); the appliance's RSS is sampled throughout.

    .venv/bin/python bench/flood.py [--count 5000] [--sources 10] [--hold 20] [--bodies 50] [--workdir DIR] [--keep]
    .venv/bin/python bench/flood.py --waves idle-websockets   # one wave (or a comma-separated few)

Prints, per wave and overall: the connections the flood held (and those the
appliance refused or dropped), /health latency (median, p99, max) against
the quiet baseline measured first in the same run (ratio), probes that got
no answer, and RSS before, peak during and after (ratio after/before). The
targets: every probe answered, and RSS after the flood within 20% of its
value before. Exits 1 when a target is missed. The flood comes from
``--sources`` addresses (127.0.50.x), each under the per-source limit, so
the waves reach the descriptor reserve rather than only the per-source
limit; the prober uses 127.0.0.2. The bench raises its own RLIMIT_NOFILE.
Not part of the test suite; every process started is stopped at the end."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from clients_hold import Appliance, exit_on_signals, log, make_site, rss_kb  # noqa: E402

from tether.clients.loadgen import raise_fd_limit  # noqa: E402

PROBE_SOURCE = "127.0.0.2"
PROBE_EVERY = 0.25
PROBE_TIMEOUT = 5.0
RSS_TOLERANCE = 0.20
WAVES = ["idle-tcp", "tls-no-hello", "slow-headers", "idle-websockets", "oversized-bodies"]


class Prober:
    """/health every PROBE_EVERY s on a new TLS connection from PROBE_SOURCE: latencies and failures."""

    def __init__(self, host: str, port: int, ctx: ssl.SSLContext):
        self.host, self.port, self.ctx = host, port, ctx
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.t0 = time.monotonic()
        self.slow: list[tuple[float, float | None]] = []  # (seconds into the wave, latency or None) of probes over 1 s

    async def once(self) -> None:
        t0 = time.monotonic()
        try:
            async def ask():
                r, w = await asyncio.open_connection(self.host, self.port, ssl=self.ctx, local_addr=(PROBE_SOURCE, 0),
                                                     server_hostname="localhost")
                w.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                line = await r.readline()
                w.close()
                if not line.startswith(b"HTTP/1.1 "):
                    raise ConnectionError(f"no HTTP answer: {line!r}")
            await asyncio.wait_for(ask(), PROBE_TIMEOUT)
            self.latencies.append(time.monotonic() - t0)
            if self.latencies[-1] > 1.0:
                self.slow.append((t0 - self.t0, self.latencies[-1]))
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError) as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}"[:120])
            self.slow.append((t0 - self.t0, None))

    async def run(self, stop: asyncio.Event) -> None:
        tasks = set()
        while not stop.is_set():
            t = asyncio.create_task(self.once())
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            try:
                await asyncio.wait_for(stop.wait(), PROBE_EVERY)
            except asyncio.TimeoutError:
                pass
        if tasks:
            await asyncio.gather(*tasks)


def _probe_process(host: str, port: int, cafile: str, stop, out) -> None:
    """The prober's own process (its own event loop and CPU share): the flood's client-side TLS work in
    the bench's loop must not delay the probes it is measuring. Sends its results when ``stop`` is set."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    prober = Prober(host, port, ctx)

    async def run():
        ev = asyncio.Event()

        async def watch():
            while not stop.is_set():
                await asyncio.sleep(0.05)
            ev.set()
        w = asyncio.ensure_future(watch())
        await prober.run(ev)
        await w
    asyncio.run(run())
    out.send((prober.latencies, prober.failures, prober.slow))


class ProbeProcess:
    """A Prober in a child process: ``start()``, then ``await finish()`` for its latencies, failures, slow."""

    def __init__(self, host: str, port: int, cafile: str):
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_probe_process, args=(host, port, cafile, self.stop, send), daemon=True)
        self.proc.start()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.slow: list = []

    async def finish(self) -> "ProbeProcess":
        self.stop.set()
        self.latencies, self.failures, self.slow = await asyncio.to_thread(self.recv.recv)
        await asyncio.to_thread(self.proc.join, 10)
        return self


class Sampler:
    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except asyncio.TimeoutError:
                pass


class Hold(asyncio.Protocol):
    """A flood connection: counts whether the appliance closed it."""

    def __init__(self, wave: "Wave", on_made=None):
        self.wave, self.on_made, self.transport = wave, on_made, None

    def connection_made(self, transport):
        self.transport = transport
        self.wave.open += 1
        if self.on_made:
            self.on_made(transport)

    def data_received(self, data):
        pass

    def connection_lost(self, exc):
        self.wave.open -= 1
        self.wave.dropped += 1


class Wave:
    def __init__(self, name: str):
        self.name = name
        self.open = self.dropped = self.failed = self.peak_open = 0
        self.transports: list[asyncio.BaseTransport] = []


async def _connect(loop, host, port, wave: Wave, source: str, ctx=None, first: bytes | None = None,
                   trickle: bool = False):
    def made(tr):
        if first:
            tr.write(first)
    try:
        tr, proto = await asyncio.wait_for(loop.create_connection(
            lambda: Hold(wave, made), host, port, ssl=ctx, local_addr=(source, 0),
            server_hostname="localhost" if ctx else None), 15)
        wave.transports.append(tr)
        wave.peak_open = max(wave.peak_open, wave.open)
        if trickle:
            asyncio.ensure_future(_trickle(tr))
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        wave.failed += 1


async def _trickle(tr) -> None:
    while not tr.is_closing():
        await asyncio.sleep(8)
        if not tr.is_closing():
            tr.write(b"X-Slow: 1\r\n")


WS_UPGRADE = (b"GET /client HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
PARTIAL_HELLO = bytes.fromhex("16030100c8010000c40303")  # a ClientHello's first bytes, never finished


async def flood_wave(name: str, a, host: str, port: int, ctx: ssl.SSLContext, count: int, sources: list[str],
                     hold: float, rate: float = 1000.0) -> Wave:
    loop = asyncio.get_running_loop()
    wave = Wave(name)
    t0 = time.monotonic()
    kind = {"idle-tcp": dict(), "tls-no-hello": dict(first=PARTIAL_HELLO),
            "slow-headers": dict(ctx=ctx, first=b"GET /health HTTP/1.1\r\nHost: x\r\n", trickle=True),
            "idle-websockets": dict(ctx=ctx, first=WS_UPGRADE)}[name]
    pending = []
    for i in range(count):
        pending.append(asyncio.ensure_future(_connect(loop, host, port, wave, sources[i % len(sources)], **kind)))
        if i % 100 == 99:
            await asyncio.sleep(100 / rate)
    await asyncio.gather(*pending)
    log(f"  {name}: {count} connections made in {time.monotonic() - t0:.1f} s")
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        wave.peak_open = max(wave.peak_open, wave.open)
        await asyncio.sleep(0.2)
    wave.dropped_by_appliance = wave.dropped
    for tr in wave.transports:
        tr.abort()
    return wave


async def body_wave(host: str, port: int, ctx: ssl.SSLContext, n: int, sources: list[str]) -> Wave:
    """``n`` concurrent 100 MB bodies to POST /api/session: half declared, half chunked (streamed until refused)."""
    wave = Wave("oversized-bodies")
    statuses: dict[str, int] = {}

    async def one(i: int) -> None:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(
                host, port, ssl=ctx, local_addr=(sources[i % len(sources)], 0), server_hostname="localhost"), 15)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            wave.failed += 1
            return
        chunk = b"[" + b"1," * 32767 + b"1]"
        try:
            if i % 2:
                w.write(b"POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 104857600\r\n\r\n")
            else:
                w.write(b"POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
            sent = 0
            reader = asyncio.ensure_future(r.readline())
            while sent < 100 * 2**20 and not reader.done():
                w.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if i % 2 == 0 else chunk)
                await w.drain()
                sent += len(chunk)
            await asyncio.wait_for(asyncio.shield(reader), 15)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass  # the appliance answered and closed while the body was still being sent
        code = "no answer"
        if reader.done() and not reader.cancelled() and reader.exception() is None:
            line = reader.result()
            code = line.split()[1].decode() if line.startswith(b"HTTP/1.1 ") and len(line.split()) > 1 else "closed"
        elif not reader.done():
            reader.cancel()
        statuses[code] = statuses.get(code, 0) + 1
        w.close()

    await asyncio.gather(*(one(i) for i in range(n)))
    wave.statuses = statuses
    return wave


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    v = sorted(values)
    return f"{v[min(len(v) - 1, int(q * len(v)))] * 1000:.1f}"


async def main_async(args, a: Appliance) -> bool:
    host, port = a.host, a.port
    ctx = ssl.create_default_context(cafile=a.info["builtin_cert"])
    ctx.check_hostname = False
    sources = [f"127.0.50.{i}" for i in range(1, args.sources + 1)]
    ok = True

    # the quiet baseline
    quiet = Prober(host, port, ctx)
    for _ in range(20):
        await quiet.once()
        await asyncio.sleep(0.05)
    base_ms = statistics.median(quiet.latencies) * 1000 if quiet.latencies else float("nan")
    rss_start = rss_kb(a.pid)
    log(f"baseline: /health median {base_ms:.1f} ms over {len(quiet.latencies)} probes "
        f"({len(quiet.failures)} failed); RSS {rss_start / 1024:.1f} MB")

    rows = []
    all_failures = 0
    for name in args.waves:
        stop = asyncio.Event()
        prober, sampler = ProbeProcess(host, port, a.info["builtin_cert"]), Sampler(a.pid)
        await asyncio.sleep(1.0)  # the child process is up and probing
        bg = [asyncio.ensure_future(sampler.run(stop))]
        before = rss_kb(a.pid)
        t0 = time.monotonic()
        if name == "oversized-bodies":
            wave = await body_wave(host, port, ctx, args.bodies, sources)
        else:
            wave = await flood_wave(name, a, host, port, ctx, args.count, sources, args.hold)
        took = time.monotonic() - t0
        stop.set()
        await asyncio.gather(*bg)
        await prober.finish()
        await asyncio.sleep(args.settle)
        after = rss_kb(a.pid)
        all_failures += len(prober.failures)
        extra = f" answers {getattr(wave, 'statuses', {})}" if name == "oversized-bodies" else \
            f" held at peak {wave.peak_open}, dropped by the appliance {wave.dropped_by_appliance}, not connected {wave.failed}"
        rows.append((name, took, prober, before, sampler.peak, after))
        med = statistics.median(prober.latencies) * 1000 if prober.latencies else float("nan")
        log(f"{name}: {took:.1f} s;{extra}")
        log(f"  /health: {len(prober.latencies)} answered, {len(prober.failures)} unanswered; median {med:.1f} ms "
            f"(x{med / base_ms:.1f} the quiet baseline), p99 {_ms(prober.latencies, 0.99)} ms, "
            f"max {_ms(prober.latencies, 1.0)} ms")
        if prober.failures:
            log(f"  unanswered, e.g.: {prober.failures[:3]}")
        if prober.slow:
            log("  probes over 1 s, sent at (s into the wave): " + ", ".join(
                f"{at:.1f}" + (f" ({lat:.1f} s)" if lat is not None else " (none)") for at, lat in prober.slow[:40]))
        log(f"  RSS: before {before / 1024:.1f} MB, peak {sampler.peak / 1024:.1f} MB, "
            f"after {after / 1024:.1f} MB")

    await asyncio.sleep(args.settle)
    rss_end = rss_kb(a.pid)
    ratio = rss_end / rss_start
    print()
    print(f"/health unanswered during the flood: {all_failures} (target 0)")
    print(f"RSS before {rss_start / 1024:.1f} MB, after {rss_end / 1024:.1f} MB: ratio {ratio:.2f} "
          f"(target <= {1 + RSS_TOLERANCE:.2f})")
    print(f"peak RSS during the flood: {max(r[4] for r in rows) / 1024:.1f} MB")
    if all_failures:
        ok = False
    if ratio > 1 + RSS_TOLERANCE:
        ok = False
    print("targets met" if ok else "TARGET MISSED")
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=5000, help="connections per wave")
    p.add_argument("--sources", type=int, default=10, help="flood source addresses (127.0.50.x)")
    p.add_argument("--hold", type=float, default=20.0, help="seconds each wave is held")
    p.add_argument("--bodies", type=int, default=50, help="concurrent oversized bodies")
    p.add_argument("--settle", type=float, default=3.0, help="seconds after a wave before RSS is read")
    p.add_argument("--waves", type=lambda v: [w.strip() for w in v.split(",") if w.strip()], default=WAVES,
                   help=f"comma-separated waves to run, in this order (default all: {','.join(WAVES)})")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    unknown = [w for w in args.waves if w not in WAVES]
    if unknown or not args.waves:
        p.error(f"--waves: unknown wave(s) {unknown}; choose among {','.join(WAVES)}")
    exit_on_signals()
    raise_fd_limit()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tether-flood-"))
    work.mkdir(parents=True, exist_ok=True)
    a = None
    ok = False
    try:
        data = make_site(work)
        a = Appliance(data, work).start()
        log(f"appliance {a.url} pid {a.pid}; RLIMIT_NOFILE of the bench {os.sysconf('SC_OPEN_MAX')}")
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        ok = asyncio.run(main_async(args, a))
    finally:
        if a is not None:
            a.stop()
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
