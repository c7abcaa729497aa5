"""The HTTPS server: one uvicorn server per listen address, each with its own
TLS context (so each address can present its own certificate), all in one
event loop over one app. SIGTERM and SIGINT stop every listener cleanly.
There is no plain-HTTP listener: a plain HTTP request to an HTTPS port fails
the TLS handshake and is refused. Each listener accepts through the
connection guard (``web.connections``: per-source limit, handshake and
header timeouts, descriptors in reserve)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import signal
import socket

import uvicorn

from tether.clients.protocol import WS_MAX_SIZE
from tether.runtime import Appliance

from .app import create_app
from .connections import GuardedServer, GuardedWebSocket

log = logging.getLogger("tether.server")


def event_loop_factory():
    """uvloop (its TLS transport keeps ~30 KB per idle connection, asyncio's ~250 KB: PERF-07);
    TETHER_LOOP=asyncio chooses the standard loop."""
    if os.environ.get("TETHER_LOOP", "uvloop") == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop


# Young collections every 20,000 net new objects, not 700: each new client connection keeps a few hundred
# (TLS, HTTP, WebSocket and hub objects), so with the default a storm of them ran a collection every other
# connection; measured (bench/clients_admission.py) 2.3 -> 1.9 ms of appliance CPU per admission.
GC_THRESHOLDS = (20_000, 20, 20)


def settle_garbage_collector() -> None:
    """Move everything made while starting (modules, the app, the site's engine: hundreds of thousands of
    objects that live as long as the process) out of the collector's sight, so that its full collections
    scan only what connections made since, and collect the young less often (``GC_THRESHOLDS``). PERF-08:
    before, a storm of new clients spent about an eighth of the event loop in the collector."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen {text!r}: write HOST:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]") or "127.0.0.1", int(port)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets that say they are TCP, and with it on
    # a response written in two parts (headers, body) waited ~40 ms for the client's delayed ACK
    # (bench/site_listing.py: a 43 ms floor on the asyncio loop). TCP_NODELAY on the listener is
    # inherited by every accepted socket, whichever loop serves it.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


async def serve_forever(appliance: Appliance, listens: list[tuple[str, int]], on_ready=None) -> None:
    asgi = create_app(appliance)
    servers: list[tuple[GuardedServer, socket.socket]] = []
    for host, port in listens:
        sock = _bind(host, port)
        actual_port = sock.getsockname()[1]
        lst = appliance.listeners.add(host, actual_port)
        config = uvicorn.Config(asgi, lifespan="off", log_level=os.environ.get("TETHER_LOG_LEVEL", "warning"),
                                access_log=False, server_header=False, proxy_headers=False, timeout_graceful_shutdown=5,
                                ws=GuardedWebSocket, ws_max_size=WS_MAX_SIZE, ws_ping_interval=None,
                                backlog=4096)
        config.load()
        config.ssl = lst.context
        servers.append((GuardedServer(config, appliance.connections), sock))
    loop = asyncio.get_running_loop()
    # blocking work handed off by the hub and the peer routes (asyncio.to_thread) runs here
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="tether-io"))

    def stop(*_):
        for server, _sock in servers:
            server.should_exit = True
        loop.create_task(appliance.clients.close())  # clients are told and let go, so shutdown is prompt

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    while not all(s.started for s, _ in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.02)
    runner = await appliance.start()  # every background job (tether.runtime.jobs)
    settle_garbage_collector()
    if on_ready and all(s.started for s, _ in servers):
        on_ready([(lst.host, lst.port) for lst in appliance.listeners])
    await asyncio.gather(*tasks)
    await appliance.stop(runner)
    appliance.close()
