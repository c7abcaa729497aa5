"""Issue 19 item 2, the memory after a flood: what a connection leaves must be
freed when it ends, by reference counting, not kept until a full garbage
collection (bench/flood.py measures the RSS; these pin the causes found).

- A WebSocket lost before its closing handshake: the sans-I/O parser of
  ``websockets`` is a suspended generator referring to its protocol object;
  ``web/connections.GuardedWebSocket`` finishes it when the connection is lost.
- A body refused by the body limit: the route's own ``TooLarge`` is shared by
  every request of the route, so raising it would keep the last refused
  request's frames (and connection) alive through its traceback."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time

import pytest
import uvicorn
from websockets.server import ServerProtocol

from tether.core.bodylimit import BodyLimit, BodyLimits, Limit
from tether.core.errors import TooLarge
from tether.web.connections import GuardedWebSocket

UPGRADE = (b"GET /client HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


async def _silent_app(scope, receive, send):
    """An app that accepts a WebSocket and waits for its first message (a hub waiting for a hello)."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await receive()  # the peer's hello, or its disconnect


def _alive(cls) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is cls)


@pytest.fixture
def ws_server():
    config = uvicorn.Config(_silent_app, host="127.0.0.1", port=0, ws=GuardedWebSocket, lifespan="off",
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[:2]
    server.should_exit = True
    thread.join(10)


@pytest.mark.req("ROB-02")
def test_a_websocket_lost_before_its_close_is_freed_without_the_garbage_collector(ws_server):
    gc.collect()
    gc.disable()
    try:
        before = _alive(ServerProtocol)
        socks = []
        for _ in range(20):
            s = socket.create_connection(ws_server, timeout=5)
            s.sendall(UPGRADE)
            assert s.recv(4096).startswith(b"HTTP/1.1 101"), "the upgrade was not accepted"
            socks.append(s)
        assert _alive(ServerProtocol) >= before + 20  # the server holds them while they are open
        for s in socks:  # lost: a reset, no closing handshake
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        deadline = time.monotonic() + 10
        while _alive(ServerProtocol) > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(ServerProtocol) == before, "lost WebSockets are kept until a full garbage collection"
    finally:
        gc.enable()


@pytest.mark.req("ROB-02")
def test_a_refused_body_leaves_no_traceback_on_the_routes_shared_error():
    own = TooLarge("site package: larger than 10 bytes")
    limits = BodyLimits(default=5, routes=[Limit("POST", "/upload", 10, error=own)])

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call():
        sent, chunks = [], [b"x" * 8, b"x" * 8, b""]

        async def receive():
            body = chunks.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(chunks)}

        async def send(message):
            sent.append(message)

        await BodyLimit(app, limits)({"type": "http", "method": "POST", "path": "/upload", "headers": []},
                                     receive, send)
        return sent

    sent = asyncio.run(call())
    assert sent[0]["status"] == 413
    assert b"site package: larger than 10 bytes" in sent[1]["body"]  # the route's own message
    assert own.__traceback__ is None, "the shared error keeps the refused request's frames"
