"""The client protocol's frames (docs/formats/client-protocol.md): the
version, the limits, JSON control frames and binary channel frames, with
the validation both ends apply. Pure functions; no I/O."""

from __future__ import annotations

import json
import struct

from tether.core import jsonread

VERSION = 1
SUPPORTED_VERSIONS = (1,)
MAX_TEXT = 64 * 1024
MAX_DATA = 64 * 1024
WS_MAX_SIZE = 1024 * 1024  # the WebSocket layer's own limit (close 1009)
HELLO_TIMEOUT = 10.0
CHALLENGE_TIMEOUT = 120.0  # a representative typing a one-time code (a challenge frame after the hello)
MAX_CHALLENGES = 3
MAX_DEPTH = 32  # JSON nesting, in frames and in /client/register bodies (no frame needs more than 3)

ROLES = ("jump", "jumpoint", "rep")
AGENT_ROLES = ("jump", "jumpoint")

# close codes (4000 + the HTTP status they mirror)
BAD_FRAME = 4400
UNAUTHORIZED = 4401
REVOKED = 4403
SUPERSEDED = 4409
UNSUPPORTED = 4426
BUSY = 4429
UNAVAILABLE = 4503

_CHANNEL = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame or request the peer must be told about; ``close`` set means the connection ends."""

    def __init__(self, code: str, message: str, close: int | None = None, **extra):
        super().__init__(message)
        self.code, self.message, self.close, self.extra = code, message, close, extra

    def frame(self, req_id=None) -> dict:
        f = {"type": "error", "code": self.code, "message": self.message, **self.extra}
        if req_id is not None:
            f["id"] = req_id
        return f


def bad(message: str, code: str = "bad_frame") -> ProtocolError:
    return ProtocolError(code, message, close=BAD_FRAME)


def encode(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))


def load_json(data: str | bytes, max_depth: int = MAX_DEPTH):
    """The one JSON reader of the client side of the appliance (frames and /client/register
    bodies): nesting deeper than ``max_depth`` is refused before parsing (core/jsonread.py);
    every refusal is a ValueError."""
    return jsonread.loads(data, max_depth)


def decode(text: str) -> dict:
    if len(text) > MAX_TEXT:
        raise bad(f"text frame of {len(text)} characters; the limit is {MAX_TEXT}", "too_large")
    try:
        frame = load_json(text)
    except ValueError as e:
        raise bad(f"malformed JSON: {e}") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise bad("a frame is a JSON object with a string 'type'")
    return frame


def pack(channel: int, payload: bytes) -> bytes:
    return _CHANNEL.pack(channel) + payload


def unpack(data: bytes) -> tuple[int, bytes]:
    if len(data) < 4:
        raise bad("binary frame shorter than its 4-byte channel number")
    if len(data) > MAX_DATA + 4:
        raise bad(f"binary frame of {len(data)} bytes; the limit is {MAX_DATA + 4}", "too_large")
    return _CHANNEL.unpack_from(data)[0], data[4:]


def field(frame: dict, name: str, kind: type | tuple[type, ...], *, optional: bool = False, max_len: int = 256):
    """A field of a frame, type-checked (bool is not an int here)."""
    value = frame.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))):
        raise bad(f"'{name}' missing or of the wrong type in a {frame.get('type')!r} frame")
    if isinstance(value, str) and len(value) > max_len:
        raise bad(f"'{name}' longer than {max_len} characters")
    return value


def int_field(frame: dict, name: str, lo: int, hi: int, *, default: int | None = None) -> int:
    if default is not None and frame.get(name) is None:
        return default
    value = field(frame, name, int)
    if not lo <= value <= hi:
        raise bad(f"'{name}' must be between {lo} and {hi}")
    return value
