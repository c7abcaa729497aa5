"""Issue 19 item 2, idle WebSockets: a few hundred connections upgraded on
/client that never send their hello. The appliance's hello timeout is
shortened by its test seam (``TETHER_HELLO_TIMEOUT``, clients/hub.py) so
the timeouts of every connection fire within a second of each other; all
the while /check_health from another address answers within 1 s, and each
idle connection is told ``hello_timeout`` and closed with 4400 (the
documented close code, docs/formats/client-protocol.md)."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import ApplianceProc, pinned_context, run_cli

IDLE = 300
HELLO_TIMEOUT = 3.0
SOURCES = [f"127.0.23.{i}" for i in range(1, 4)]  # flood source addresses no other test uses
PROBE_SOURCE = "127.0.23.9"
PROBE_LIMIT = 1.0


async def _idle(url: str, ctx: ssl.SSLContext, source: str) -> tuple[object, float, object]:
    """One WebSocket that never says hello: (the frame it was sent, seconds from its connect to its close,
    its close code)."""
    t0 = time.monotonic()  # before the connect: the appliance's hello time starts later than this
    async with connect(url, ssl=ctx, server_hostname="localhost", local_addr=(source, 0), open_timeout=20,
                       ping_interval=None, close_timeout=2) as ws:
        first = None
        try:
            first = await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT + 20)
            await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed:
            pass
        return first, time.monotonic() - t0, ws.close_code


def _probe(url: str, ctx: ssl.SSLContext) -> float:
    """One /check_health on a new TLS connection from PROBE_SOURCE, in the prober's own thread (the flood's
    client-side handshakes on the test's event loop must not delay it): its latency (raises if unanswered)."""
    t0 = time.monotonic()
    with httpx.Client(transport=httpx.HTTPTransport(local_address=PROBE_SOURCE, verify=ctx), timeout=5) as c:
        c.get(url + "/check_health")  # any status: the appliance answered (no site here: 500 and its line)
    return time.monotonic() - t0


@pytest.mark.req("ROB-02")
def test_health_answers_while_hundreds_of_idle_websockets_time_out(tmp_path, vendor):
    data = tmp_path / "appliance"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    a = ApplianceProc(data, ["127.0.0.1:0"], env={"TETHER_HELLO_TIMEOUT": str(HELLO_TIMEOUT)}).start()
    try:
        u = urlsplit(a.url)
        ctx = pinned_context(a.cert_path)
        probes: list[tuple[float, float]] = []  # (seconds into the flood, latency)

        stop = threading.Event()
        t0 = time.monotonic()

        def prober():
            while not stop.is_set():
                at = time.monotonic() - t0
                try:
                    probes.append((at, _probe(a.url, ctx)))
                except httpx.TransportError:  # unanswered within its 5 s
                    probes.append((at, float("inf")))
                time.sleep(0.1)

        async def main():
            idle = [asyncio.ensure_future(_idle(f"wss://{u.hostname}:{u.port}/client", ctx, SOURCES[i % 3]))
                    for i in range(IDLE)]
            results = await asyncio.gather(*idle)
            await asyncio.sleep(0.5)
            return results, time.monotonic() - t0

        th = threading.Thread(target=prober, daemon=True)
        th.start()
        try:
            results, took = asyncio.run(main())
        finally:
            stop.set()
            th.join(10)
        frames = [json.loads(f) if isinstance(f, str) else f for f, _, _ in results]
        assert [f.get("code") if isinstance(f, dict) else f for f in frames] == ["hello_timeout"] * IDLE
        assert [code for _, _, code in results] == [4400] * IDLE
        held = sorted(h for _, h, _ in results)
        assert held[0] >= HELLO_TIMEOUT, held[:5]  # not closed before their hello time was up
        assert held[-1] < HELLO_TIMEOUT + 25, held[-5:]  # open_timeout 20 s, then the hello time, then closed
        # /check_health answered within PROBE_LIMIT throughout, timeouts included (~HELLO_TIMEOUT s in)
        assert probes and probes[-1][0] > HELLO_TIMEOUT + 0.5, probes[-3:]
        slow = [(round(at, 1), round(lat, 2)) for at, lat in probes if lat > PROBE_LIMIT]
        assert slow == [], (slow, took)
        assert a.proc.poll() is None
    finally:
        a.stop()
