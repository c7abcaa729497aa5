"""Issue 18 item 4, the ~47 ms floor under every HTTPS request of
bench/site_listing.py: the listening socket was made with protocol 0, so
asyncio (which turns Nagle's algorithm off only on sockets that say they are
TCP) left it on, and a response written in two parts (headers, then body)
waited for the client's delayed ACK. uvloop, the default loop since the
client channel, sets TCP_NODELAY itself, which hid it. Every connection the
appliance accepts must have Nagle off, on either loop."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from tether.web.server import _bind


async def _accepted_nodelay() -> int:
    """TCP_NODELAY of a connection accepted on a ``_bind`` listener, as the loop's transport has it."""
    seen: asyncio.Future = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            sock = transport.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    listener = _bind("127.0.0.1", 0)
    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    try:
        _r, w = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        value = await asyncio.wait_for(seen, 5)
        w.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_accepted_connections_have_nagle_off(loop):
    runner = asyncio.run if loop == "asyncio" else uvloop.run
    assert runner(_accepted_nodelay()) != 0


def test_listener_says_it_is_tcp():
    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()
