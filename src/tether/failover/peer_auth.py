"""Authentication of the peer link (FO-01, SEC-04), byte for byte as in
docs/formats/peer-protocol.md: the MAC key and key id derived from the
site's inter-appliance pre-shared key, request signatures (``sign_request``)
and their check with a time window and a nonce cache (``PeerVerifier``), the
per-address failure limit (``FailureLimiter``), and signatures on
non-streaming answers (``sign_response`` / ``verify_response``).

Pure: no web framework, no sockets, no files; the only outside input is the
clock. Logging a refusal (SEC-04) is the caller's job."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tether.core.errors import Invalid, Throttled

from .errors import PeerAuthError

VERSION = "1"
DOMAIN = "tether-peer-v1"
RESPONSE_DOMAIN = "tether-peer-v1 response"
MAC_INFO = b"tether-peer-v1 mac"
KEY_ID_INFO = b"tether-peer-v1 key-id"
PSK_MIN, PSK_MAX = 32, 256

H_VERSION = "X-Tether-Peer-Version"
H_ID = "X-Tether-Peer-Id"
H_TIME = "X-Tether-Peer-Time"
H_NONCE = "X-Tether-Peer-Nonce"
H_KEY_ID = "X-Tether-Peer-Key-Id"
H_SIGNATURE = "X-Tether-Peer-Signature"
REQUEST_HEADERS = (H_VERSION, H_ID, H_TIME, H_NONCE, H_KEY_ID, H_SIGNATURE)

_SENDER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TIME = re.compile(r"0|[1-9][0-9]{0,11}")
_NONCE = re.compile(r"[0-9a-f]{32}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_TARGET = re.compile(r"/[\x21-\x7e]*")

KEY_HINT = "set the same inter-appliance pre-shared key on both appliances of the pair"


# --- keys ---------------------------------------------------------------------------------------

def _hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)


def derive_key(psk: str) -> bytes:
    """The 32-byte MAC key of a pre-shared key (32..256 characters): HKDF-SHA256 over the UTF-8 of its
    NFC form, no salt, info ``tether-peer-v1 mac``. The pre-shared key itself never keys a MAC."""
    if not isinstance(psk, str) or not PSK_MIN <= len(psk) <= PSK_MAX:
        raise Invalid(f"the pre-shared key must be {PSK_MIN} to {PSK_MAX} characters", field="psk")
    return _hkdf(unicodedata.normalize("NFC", psk).encode("utf-8"), MAC_INFO, 32)


def key_id_of(key: bytes) -> str:
    """The public identifier of a MAC key: 8 bytes of HKDF-SHA256 over it (info ``tether-peer-v1 key-id``),
    in hex. Equal ids mean equal keys; the id tells nothing about the key."""
    return _hkdf(key, KEY_ID_INFO, 8).hex()


def key_id(psk: str) -> str:
    """The public identifier of a pre-shared key (``key_id_of(derive_key(psk))``)."""
    return key_id_of(derive_key(psk))


# --- requests -----------------------------------------------------------------------------------

def request_target(raw_path: bytes, query_string: bytes = b"") -> str:
    """The signed target from an ASGI scope's ``raw_path`` and ``query_string``: the path and query exactly
    as on the request line (no ``?`` when the query is empty)."""
    target = raw_path + (b"?" + query_string if query_string else b"")
    return target.decode("latin-1")


def canonical_request(method: str, path_qs: str, body_sha256: str, at: int, nonce: str, sender_id: str) -> str:
    """The string a request MAC covers: seven lines joined by LF, no final LF."""
    return "\n".join((DOMAIN, method.upper(), path_qs, body_sha256, str(at), nonce, sender_id))


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_request(key: bytes, sender_id: str, method: str, path_qs: str, body: bytes, now: float | None = None, *,
                 nonce: str | None = None) -> dict[str, str]:
    """The authentication headers for one request. ``path_qs`` is the target as it will be sent;
    ``nonce`` is for fixed examples only (default: 16 fresh random bytes)."""
    if not _SENDER.fullmatch(sender_id):
        raise ValueError(f"sender id {sender_id!r} must be 1..64 of A-Z a-z 0-9 . _ -")
    if not _TARGET.fullmatch(path_qs):
        raise ValueError(f"request target {path_qs!r} must start with / and hold no spaces or controls")
    at = int(time.time() if now is None else now)
    nonce = secrets.token_hex(16) if nonce is None else nonce
    if not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be 32 lower-case hex digits")
    text = canonical_request(method, path_qs, hashlib.sha256(body).hexdigest(), at, nonce, sender_id)
    return {H_VERSION: VERSION, H_ID: sender_id, H_TIME: str(at), H_NONCE: nonce, H_KEY_ID: key_id_of(key),
            H_SIGNATURE: _mac(key, text)}


def _auth_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The X-Tether-Peer-* headers by lower-case name; a header given twice is refused."""
    wanted = {h.lower() for h in REQUEST_HEADERS}
    found: dict[str, str] = {}
    for name, value in headers.items():
        name = name.lower()
        if name in wanted:
            if name in found:
                raise PeerAuthError("missing", f"header {name} is given more than once")
            found[name] = value
    return found


def _field(found: dict[str, str], header: str, pattern: re.Pattern) -> str:
    value = found.get(header.lower())
    if value is None:
        raise PeerAuthError("missing", f"header {header} is missing; this is not a signed peer request")
    if not pattern.fullmatch(value):
        raise PeerAuthError("missing", f"header {header} is malformed")
    return value


class _NonceCache:
    """Nonces of accepted requests, each kept until its request's time leaves the window; at most
    ``cap`` of them. Not locked: ``PeerVerifier`` holds its lock around every call."""

    def __init__(self, cap: int):
        self.cap = cap
        self._until: dict[str, float] = {}  # nonce -> forget after; insertion (arrival) order

    def __len__(self) -> int:
        return len(self._until)

    def _expire(self, now: float) -> None:
        for nonce in [n for n, until in self._until.items() if until < now]:
            del self._until[nonce]

    def add(self, nonce: str, until: float, now: float) -> str | None:
        """Record ``nonce``; return the refusal reason instead ("replay", "busy") when it cannot be."""
        while self._until:  # cheap: drop expired entries at the front
            first = next(iter(self._until))
            if self._until[first] >= now:
                break
            del self._until[first]
        if nonce in self._until:
            return "replay"
        if len(self._until) >= self.cap:
            self._expire(now)  # rare full sweep: later entries may expire before the first
            if len(self._until) >= self.cap:
                return "busy"
        self._until[nonce] = until
        return None


class PeerVerifier:
    """Checks signed peer requests. ``key_provider`` returns the current MAC key (``derive_key``) or None
    when no pre-shared key is set; it is called for every request, so a key change applies at once.

    Order of checks: headers present and well-formed, version, key set, key id, signature, time within
    ±window, nonce unseen. Only authentic requests reach the nonce cache, so only a key holder can fill
    it. With a ``limiter``, a blocked source address is refused (``Throttled``) before any check and
    every failure but "busy" counts against it. With ``own_id``, a request carrying this appliance's own
    id (one of its own requests sent back to it) is refused."""

    def __init__(self, key_provider: Callable[[], bytes | None], window_seconds: int = 30,
                 clock: Callable[[], float] = time.time, *, max_nonces: int = 100_000,
                 limiter: FailureLimiter | None = None, own_id: str | None = None):
        self.key_provider = key_provider
        self.window = window_seconds
        self.clock = clock
        self.limiter = limiter
        self.own_id = own_id
        self._nonces = _NonceCache(max_nonces)
        self._lock = threading.Lock()

    def verify(self, method: str, path_qs: str, body: bytes, headers: Mapping[str, str],
               source_ip: str | None) -> str:
        """The sender's appliance id, or PeerAuthError (Throttled when the limiter blocks ``source_ip``)."""
        if self.limiter is not None and source_ip and self.limiter.blocked(source_ip):
            raise self.limiter.refusal(source_ip)
        try:
            return self._verify(method, path_qs, body, headers)
        except PeerAuthError as exc:
            if self.limiter is not None and source_ip and exc.reason != "busy":
                self.limiter.failed(source_ip)
            raise

    def _verify(self, method: str, path_qs: str, body: bytes, headers: Mapping[str, str]) -> str:
        found = _auth_headers(headers)
        version = found.get(H_VERSION.lower())
        if version is None:
            raise PeerAuthError("missing", f"header {H_VERSION} is missing; this is not a signed peer request")
        if version != VERSION:
            raise PeerAuthError("version", f"peer protocol version {version[:16]!r} is not supported; "
                                f"this appliance speaks version {VERSION}",
                                hint="run the same Tether release on both appliances of the pair")
        sender = _field(found, H_ID, _SENDER)
        at_text = _field(found, H_TIME, _TIME)
        nonce = _field(found, H_NONCE, _NONCE)
        their_id = _field(found, H_KEY_ID, _KEY_ID)
        signature = found.get(H_SIGNATURE.lower())
        if signature is None:
            raise PeerAuthError("missing", f"header {H_SIGNATURE} is missing")
        key = self.key_provider()
        if key is None:
            raise PeerAuthError("no_key", "this appliance has no inter-appliance pre-shared key set",
                                hint=KEY_HINT)
        ours = key_id_of(key)
        if not hmac.compare_digest(their_id, ours):
            raise PeerAuthError("key", f"the request is signed with pre-shared key id {their_id}, this "
                                f"appliance's key id is {ours}: the two appliances hold different keys",
                                hint=KEY_HINT)
        at = int(at_text)
        expected = _mac(key, canonical_request(method, path_qs, hashlib.sha256(body).hexdigest(), at, nonce, sender))
        if not (_SIGNATURE.fullmatch(signature) and hmac.compare_digest(signature, expected)):
            raise PeerAuthError("signature", "the request signature does not match its method, target, body "
                                "and headers")
        now = self.clock()
        if abs(now - at) > self.window:
            raise PeerAuthError("stale", f"the request time {at} is {now - at:+.0f} s from this appliance's "
                                f"clock; at most ±{self.window} s is accepted",
                                hint="synchronise both appliances' clocks (NTP)")
        if self.own_id is not None and hmac.compare_digest(sender, self.own_id):
            raise PeerAuthError("reflected", "the request carries this appliance's own id: one of its own "
                                "requests was sent back to it")
        with self._lock:
            refused = self._nonces.add(nonce, at + self.window, now)
        if refused == "replay":
            raise PeerAuthError("replay", "this request was already received (its nonce was seen within the "
                                "window)")
        if refused == "busy":
            raise PeerAuthError("busy", "too many peer requests in the time window; retry shortly")
        return sender


# --- failures per source address ----------------------------------------------------------------

class FailureLimiter:
    """At most ``max_failures`` failed authentications per source address per ``window`` seconds; an
    address past that is ``blocked`` until its oldest counted failure leaves the window. Memory is
    bounded: at most ``max_addresses`` addresses are tracked (the least recently failing is forgotten
    first) and at most ``max_failures`` times each."""

    def __init__(self, max_failures: int = 10, window: float = 60.0, *, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}  # least recently failing first
        self._lock = threading.Lock()

    def _recent(self, ip: str, now: float) -> deque[float] | None:
        times = self._failures.get(ip)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[ip]
            return None
        return times

    def blocked(self, ip: str) -> bool:
        with self._lock:
            times = self._recent(ip, self.clock())
            return times is not None and len(times) >= self.max_failures

    def retry_after(self, ip: str) -> int:
        """Whole seconds until ``ip`` is no longer blocked (0 when it is not)."""
        with self._lock:
            now = self.clock()
            times = self._recent(ip, now)
            if times is None or len(times) < self.max_failures:
                return 0
            return max(1, int(times[0] + self.window - now + 0.999))

    def refusal(self, ip: str) -> Throttled:
        wait = self.retry_after(ip) or 1
        return Throttled(f"too many failed peer authentications from {ip}; try again in {wait} s",
                         retry_after=wait, hint="check that both appliances hold the same pre-shared key and "
                         "that their clocks agree")

    def failed(self, ip: str) -> None:
        with self._lock:
            now = self.clock()
            times = self._recent(ip, now)
            if times is None:
                if len(self._failures) >= self.max_addresses:
                    for address in list(self._failures):
                        self._recent(address, now)  # forgets addresses with no recent failure
                    if len(self._failures) >= self.max_addresses:
                        del self._failures[next(iter(self._failures))]
                times = deque(maxlen=self.max_failures)
            else:
                del self._failures[ip]  # re-insert: most recently failing last
            times.append(now)
            self._failures[ip] = times

    def tracked(self) -> int:
        """How many addresses are remembered."""
        with self._lock:
            return len(self._failures)


# --- answers ------------------------------------------------------------------------------------

def canonical_response(request_nonce: str, status: int, body_sha256: str) -> str:
    """The string a response MAC covers: four lines joined by LF, no final LF."""
    return "\n".join((RESPONSE_DOMAIN, request_nonce, str(int(status)), body_sha256))


def sign_response(key: bytes, request_nonce: str, status: int, body: bytes) -> str:
    """The ``X-Tether-Peer-Signature`` of a non-streaming answer to the request that carried
    ``request_nonce``."""
    return _mac(key, canonical_response(request_nonce, status, hashlib.sha256(body).hexdigest()))


def verify_response(key: bytes, request_nonce: str, status: int, body: bytes, signature: str | None) -> None:
    """Raise PeerAuthError unless ``signature`` signs this answer to the request with ``request_nonce``."""
    if not signature:
        raise PeerAuthError("signature", f"the answer carries no {H_SIGNATURE} header")
    expected = sign_response(key, request_nonce, status, body)
    if not (_SIGNATURE.fullmatch(signature) and hmac.compare_digest(signature, expected)):
        raise PeerAuthError("signature", "the answer's signature does not match: it was not made with this "
                            "appliance's pre-shared key for this request", hint=KEY_HINT)
