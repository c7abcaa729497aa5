"""``/peer/v1/...``: the appliance-to-appliance routes of a failover pair
(docs/formats/peer-protocol.md). Thin: read the body (at most 1 MiB),
check the signature, call tether.failover.service, sign the answer. The
signature is the only credential here: no session, cookie or bearer token."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tether.core.errors import Invalid, TetherError, Throttled
from tether.failover import blobs, peer_auth

from .auth import appliance_of, client_ip

MAX_BODY = 1 << 20
NDJSON = "application/x-ndjson"


class TooLarge(TetherError):
    status, code = 413, "too_large"


async def _body(request: Request) -> bytes:
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_BODY:
        raise TooLarge(f"a peer request body is at most {MAX_BODY} bytes")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > MAX_BODY:
            raise TooLarge(f"a peer request body is at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refusal(exc: TetherError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


def _peer(handler, *, signed: bool = False):
    """Authenticate, run ``handler(request, service, sender, body)``; sign JSON answers when ``signed``."""
    async def endpoint(request: Request) -> Response:
        service = appliance_of(request).failover
        try:
            body = await _body(request)
            target = peer_auth.request_target(request.scope.get("raw_path") or request.url.path.encode(),
                                              request.scope.get("query_string", b""))
            sender = service.authenticate(request.method, target, body, request.headers, client_ip(request))
            result = await handler(request, service, sender, body)
        except TetherError as exc:
            return _refusal(exc)
        if isinstance(result, Response):
            return result
        raw = json.dumps(result, separators=(",", ":")).encode()
        headers = {}
        if signed:
            headers[peer_auth.H_SIGNATURE] = service.sign(request.headers[peer_auth.H_NONCE], 200, raw)
        return Response(raw, media_type="application/json", headers=headers)
    return endpoint


def _json(body: bytes) -> dict:
    try:
        obj = json.loads(body or b"{}")
    except ValueError:
        raise Invalid("the body is not JSON") from None
    if not isinstance(obj, dict):
        raise Invalid("the body must be a JSON object")
    return obj


async def pair(request, service, sender, body):
    server = request.scope.get("server") or ("127.0.0.1", 443)
    return service.peer_pair(sender, _json(body), (server[0], server[1]), client_ip(request))


async def unpair(request, service, sender, body):
    return service.peer_unpair(sender, client_ip(request))


async def ack(request, service, sender, body):
    return service.peer_ack(sender, _json(body))


async def changes(request, service, sender, body):
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        raise Invalid("after: a sequence number", field="after") from None
    resync = service.changes_problem(sender, after, request.query_params.get("hash"))
    if resync:
        return Response(json.dumps(resync).encode() + b"\n", media_type=NDJSON)
    return StreamingResponse(service.changes(sender, after), media_type=NDJSON,
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def heartbeat(request, service, sender, body):
    return service.peer_heartbeat(sender, _json(body))


async def demote(request, service, sender, body):
    return await asyncio.to_thread(service.peer_demote, sender, _json(body), client_ip(request))


async def promote(request, service, sender, body):
    return await asyncio.to_thread(service.peer_promote, sender, _json(body), client_ip(request))


async def snapshot(request, service, sender, body):
    return StreamingResponse(service.snapshot(sender), media_type=NDJSON, headers={"Cache-Control": "no-store"})


async def blob(request, service, sender, body):
    kind, sha = request.path_params["kind"], request.path_params["sha"]
    store, size = await asyncio.to_thread(service.blob_source, sender, kind, sha)
    try:
        rng = blobs.parse_range(request.headers.get("range"), size)
    except ValueError as exc:
        return JSONResponse({"error": "range", "message": str(exc)}, status_code=416,
                            headers={"Content-Range": f"bytes */{size}"})
    start, end = rng or (0, size - 1)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(max(0, end - start + 1)), "X-Tether-Sha256": sha}
    if rng:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(store.read_range(sha, start, end) if size else iter(()), status_code=206 if rng else 200,
                             media_type="application/octet-stream", headers=headers)


routes = [
    Route("/peer/v1/pair", _peer(pair, signed=True), methods=["POST"]),
    Route("/peer/v1/unpair", _peer(unpair, signed=True), methods=["POST"]),
    Route("/peer/v1/ack", _peer(ack, signed=True), methods=["POST"]),
    Route("/peer/v1/heartbeat", _peer(heartbeat, signed=True), methods=["POST"]),
    Route("/peer/v1/demote", _peer(demote, signed=True), methods=["POST"]),
    Route("/peer/v1/promote", _peer(promote, signed=True), methods=["POST"]),
    Route("/peer/v1/changes", _peer(changes), methods=["GET"]),
    Route("/peer/v1/snapshot", _peer(snapshot), methods=["GET"]),
    Route("/peer/v1/blobs/{kind}/{sha}", _peer(blob), methods=["GET"]),
]
