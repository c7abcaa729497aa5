"""The client channel's web side: ``/client`` (the WebSocket every
representative console, jump client and jumpoint keeps open, handed to the
appliance's client hub) and ``POST /client/register`` (an installer token
redeemed for a client identity). docs/formats/client-protocol.md."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tether.clients.directory import Directory
from tether.clients.protocol import load_json
from tether.core.errors import Malformed, NotFound, TetherError

from .errors import error_response


class _Link:
    __slots__ = ("ws",)

    def __init__(self, ws: WebSocket):
        self.ws = ws

    async def receive(self) -> str | bytes | None:
        msg = await self.ws.receive()
        if msg["type"] == "websocket.disconnect":
            return None
        text = msg.get("text")
        return text if text is not None else msg.get("bytes") or b""

    async def send_text(self, text: str) -> None:
        await self.ws.send({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str = "") -> None:
        await self.ws.close(code, reason)


async def client_socket(ws: WebSocket) -> None:
    appliance = ws.app.state.appliance
    await ws.accept()
    await appliance.clients.serve(_Link(ws), ws.client.host if ws.client else None)


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


routes = [WebSocketRoute("/client", client_socket), Route("/client/register", register, methods=["POST"])]
