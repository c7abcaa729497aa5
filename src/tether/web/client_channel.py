"""The client channel's web side: ``/client`` (the WebSocket every
representative console, jump client and jumpoint keeps open, handed to the
appliance's client hub) and ``POST /client/register`` (an installer token
redeemed for a client identity). docs/formats/client-protocol.md.

``ClientChannel`` answers the ``/client`` WebSocket in front of the web
framework (PERF-08): a reconnecting fleet opens hundreds of them a second,
and FastAPI's router and middleware (which do nothing for a WebSocket: the
security headers, body limits, admin networks and replication barrier are
HTTP-only) cost more CPU than the hello itself. Every other request, HTTP or
WebSocket, goes to the app behind it."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.clients.directory import Directory
from tether.clients.protocol import load_json
from tether.core.errors import Malformed, NotFound, TetherError

from .errors import error_response


class _Link:
    """One /client WebSocket as the hub sees it (clients.hub.Link), on the raw ASGI messages."""

    __slots__ = ("_receive", "_send", "_gone")

    def __init__(self, receive: Receive, send: Send):
        self._receive, self._send = receive, send
        self._gone = False

    async def receive(self) -> str | bytes | None:
        if self._gone:
            return None
        msg = await self._receive()
        if msg["type"] != "websocket.receive":  # websocket.disconnect
            self._gone = True
            return None
        text = msg.get("text")
        return text if text is not None else msg.get("bytes") or b""

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str = "") -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


class ClientChannel:
    """ASGI: ``/client`` WebSockets go straight to the client hub; everything else to ``app``."""

    def __init__(self, app: ASGIApp, appliance):
        self.app, self.appliance = app, appliance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/client":
            return await self.client_socket(scope, receive, send)
        await self.app(scope, receive, send)

    async def client_socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Accept the upgrade and hand the connection to the hub until it ends."""
        if (await receive())["type"] != "websocket.connect":  # the peer left before the upgrade completed
            return
        await send({"type": "websocket.accept"})
        client = scope.get("client")
        await self.appliance.clients.serve(_Link(receive, send), client[0] if client else None)


async def register(request: Request) -> JSONResponse:
    appliance = request.app.state.appliance
    try:
        if appliance.site is None:
            raise NotFound("no site is installed on this appliance")
        try:
            body = load_json(await request.body())
        except ValueError as exc:
            raise Malformed(f"the body must be JSON: {{\"token\", \"kind\", \"hostname\", \"os\"}} ({exc})",
                            field="body") from None
        if not isinstance(body, dict):
            raise Malformed("the body must be a JSON object", field="body")
        site = appliance.site
        ip = request.client.host if request.client else None
        ident = await asyncio.to_thread(Directory(site.engine).redeem, body.get("token"), body.get("kind"),
                                        body.get("hostname"), body.get("os"), ip)
        await asyncio.to_thread(site.audit.record, f"{ident['kind']}:{ident['name']}", "client.register",
                                ident["name"], ip, {"kind": ident["kind"], "client_id": ident["client_id"]})
        return JSONResponse({**ident, "site": site.info().name}, status_code=201)
    except TetherError as e:
        return error_response(e)


routes = [Route("/client/register", register, methods=["POST"])]
