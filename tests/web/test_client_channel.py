"""``ClientChannel`` (web/client_channel.py), the /client WebSocket answered
in front of the web framework (PERF-08): only a WebSocket on exactly
``/client`` goes to the hub, accepted first, with the peer's address; every
other request (HTTP on /client, /client/register, other WebSocket paths)
goes to the app behind it; the hub's link maps the ASGI messages both ways
and reports the peer's leaving as None, also when asked again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from tether.web.client_channel import ClientChannel


class FakeHub:
    def __init__(self):
        self.served = []

    async def serve(self, link, ip):
        got = [await link.receive(), await link.receive(), await link.receive(), await link.receive()]
        await link.send_text("t")
        await link.send_bytes(b"b")
        await link.close(4400, "bad_frame")
        self.served.append((ip, got))


def run(channel, scope, incoming):
    sent = []
    queue = list(incoming)

    async def receive():
        return queue.pop(0)

    async def send(msg):
        sent.append(msg)

    asyncio.run(channel(scope, receive, send))
    return sent


@pytest.fixture
def channel():
    passed = []

    async def app(scope, receive, send):
        passed.append(scope)

    hub = FakeHub()
    ch = ClientChannel(app, SimpleNamespace(clients=hub))
    return ch, hub, passed


def test_client_websocket_goes_to_the_hub(channel):
    ch, hub, passed = channel
    sent = run(ch, {"type": "websocket", "path": "/client", "client": ("192.0.2.7", 5000)},
               [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "hello"},
                {"type": "websocket.receive", "bytes": b"\x00\x00\x00\x01x"}, {"type": "websocket.disconnect"}])
    assert passed == []
    assert hub.served == [("192.0.2.7", ["hello", b"\x00\x00\x00\x01x", None, None])]
    assert sent == [{"type": "websocket.accept"}, {"type": "websocket.send", "text": "t"},
                    {"type": "websocket.send", "bytes": b"b"},
                    {"type": "websocket.close", "code": 4400, "reason": "bad_frame"}]


def test_a_peer_gone_before_the_accept_is_not_served(channel):
    ch, hub, passed = channel
    assert run(ch, {"type": "websocket", "path": "/client", "client": None}, [{"type": "websocket.disconnect"}]) == []
    assert hub.served == [] and passed == []


@pytest.mark.parametrize("scope", [{"type": "http", "path": "/client", "method": "GET"},
                                   {"type": "http", "path": "/client/register", "method": "POST"},
                                   {"type": "websocket", "path": "/client/"},
                                   {"type": "websocket", "path": "/api/peer"}])
def test_everything_else_goes_to_the_app(channel, scope):
    ch, hub, passed = channel
    run(ch, scope, [])
    assert passed == [scope] and hub.served == []
