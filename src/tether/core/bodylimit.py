"""Request-body caps for an ASGI app (the appliance's and the desk's), enforced
while the body is read: before it is parsed and before the caller is
authenticated, so no request can make the process hold more than its cap.

An app declares its limits once, as a ``BodyLimits``: a small default for
every JSON and form body, and the routes that take more (``Limit``: a method,
a path template such as ``/api/files/{name}``, and a size in bytes, or
``STREAMED`` for bodies streamed to disk and bounded where they are written).
The ``BodyLimit`` middleware then

- answers 413 at once, without calling the app, when the declared
  Content-Length is over the route's limit;
- counts a body without one (chunked) as it streams, and at the first byte
  over the limit stops reading and answers 413, whatever the app made of the
  interrupted body (a route's own 413 with its own message is kept).

The 413 is the project's JSON error shape ``{"error": "too_large", "message"}``
and closes the connection, so the rest of the body is never read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from .errors import TooLarge

STREAMED = None  # a route whose body is streamed to disk and bounded where it is written
KIB, MIB = 1 << 10, 1 << 20

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Limit:
    """The body limit of one route: ``method`` and a path template (``{param}`` matches one segment)."""

    method: str
    path: str
    limit: int | None
    error: TooLarge | None = None  # the route's own message (e.g. "site package: larger than ..."), else a general one
    _regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        parts = re.split(r"(\{[^}]+\})", self.path)
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        object.__setattr__(self, "_regex", re.compile(f"^{pattern}$"))

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and self._regex.match(path) is not None


@dataclass(frozen=True)
class BodyLimits:
    """An app's body limits: ``default`` for every route not in ``routes``."""

    default: int
    routes: Sequence[Limit] = ()

    def for_request(self, method: str, path: str) -> tuple[int | None, TooLarge]:
        """The limit of this request (None: streamed) and the error that refuses it."""
        for route in self.routes:
            if route.matches(method, path):
                return route.limit, route.error or too_large(route.limit or 0)
        return self.default, too_large(self.default)


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the request body is larger than the limit of {limit} bytes for this request",
                    hint="send a smaller body")


async def _answer_413(send: Send, error: TooLarge) -> None:
    body = json.dumps(error.to_dict()).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Pure ASGI middleware: every HTTP request body at most its route's limit (see the module docstring)."""

    def __init__(self, app, limits: BodyLimits):
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, error = self.limits.for_request(scope["method"], scope["path"])
        if limit is None:
            return await self.app(scope, receive, send)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return await _answer_413(send, error)
        seen = 0
        exceeded = False
        started = False  # the app's response has begun (ours or theirs)
        replaced = False  # the app's response is being dropped for our 413

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                raise _raised(error)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _raised(error)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                started = True
                if exceeded and message.get("status") != 413:
                    replaced = True
                    return await _answer_413(send, error)
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
            if not started:
                await _answer_413(send, error)


def _raised(error: TooLarge) -> TooLarge:
    """A new exception for each raise: ``error`` is shared by every request of its route, and raising it
    would keep the traceback, and through it the frames and the connection of the last request refused
    (a reference cycle with the frame holding ``error``, freed only by a full garbage collection)."""
    return type(error)(error.message, hint=error.hint, field=error.field)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
