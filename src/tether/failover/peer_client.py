"""The asking side of the peer link (FO-01, SEC-04): ``PeerClient``, a
synchronous httpx client to the other appliance of the pair that signs every
request (peer_auth), checks signed answers when asked, and pins the peer's
TLS certificate key.

Pinning. The chain is not verified (appliances usually present self-signed
certificates); instead the SHA-256 pin of the certificate's public key
(tether.clients.trust) is checked inside the TLS handshake, through the
context's ``sslsocket_class``: a connection to anything else is closed
before a single byte of HTTP is written, so no request (signed or not)
reaches an impostor, and no answer is read from one. Every answer is checked
a second time against the certificate of the connection that carried it
(``response.extensions["network_stream"]``) before it is returned, so a
transport that bypassed the handshake hook fails closed. Environment proxies
are ignored (``trust_env=False``).

With ``pin=None`` (pairing only) the first certificate seen is recorded as
``presented_pin`` and every later connection of this client must present the
same key; the caller pins it once the signed pairing answer confirms it.

Owns no routes, no settings and no retries: callers decide when to call and
what to do on an error."""

from __future__ import annotations

import hmac
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tether import __version__
from tether.clients.trust import client_context, pin_of_der, valid_pin

from . import peer_auth
from .errors import PeerAuthError, PeerRefused, PeerUnreachable, PeerUntrusted, PinMismatch

PIN_HINT = ("if the peer's certificate was replaced on purpose, establish failover again to pin its new key; "
            "otherwise something between the two appliances is intercepting their traffic")


def _pinning_context(on_certificate) -> ssl.SSLContext:
    """A client TLS context without chain or host-name checks that hands the peer's certificate (DER, or
    None) to ``on_certificate`` as soon as the handshake completes; an exception from it closes the socket."""
    ctx = client_context({})

    class PinnedSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            try:
                on_certificate(self.getpeercert(True))
            except BaseException:
                self.close()
                raise

    ctx.sslsocket_class = PinnedSocket
    return ctx


class PeerClient:
    def __init__(self, base_url: str, pin: str | None, key: bytes, sender_id: str, timeout: float = 10.0,
                 local_address: str | None = None):
        if not base_url.startswith("https://"):
            raise ValueError(f"the peer's address must be an https:// URL, not {base_url!r}")
        if pin is not None and not valid_pin(pin):
            raise ValueError(f"{pin!r} is not a certificate pin (sha256/<base64url>)")
        self.base_url = base_url.rstrip("/")
        self.pin = pin
        self.key = key
        self.sender_id = sender_id
        self._presented: str | None = None
        self._lock = threading.Lock()
        ctx = _pinning_context(self._check_certificate)
        # local_address: leave from this appliance's own address (the peer sees, and firewalls match, that one)
        transport = httpx.HTTPTransport(verify=ctx, local_address=local_address) if local_address else None
        self._http = httpx.Client(base_url=self.base_url, verify=ctx, transport=transport,
                                  timeout=timeout, trust_env=False, follow_redirects=False,
                                  headers={"User-Agent": f"tether/{__version__} peer/{peer_auth.VERSION}"})

    # --- pinning ---

    @property
    def presented_pin(self) -> str | None:
        """The pin of the certificate the peer presented last (with ``pin=None``: the first one)."""
        return self._presented

    def _check_certificate(self, der: bytes | None) -> None:
        got = pin_of_der(der) if der is not None else None
        with self._lock:
            expected = self.pin or self._presented  # unpinned: the first key presented
            if self.pin is not None or expected is None:
                self._presented = got
        if expected is None and got is not None:
            return
        if got is None or not hmac.compare_digest(got, expected or ""):
            raise PinMismatch(f"the peer at {self.base_url} presented another certificate key: pinned "
                              f"{expected or 'nothing yet'}, presented {got or 'no certificate'}",
                              pinned=expected or "", presented=got, hint=PIN_HINT)

    def _check_connection(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        # positional: httpcore hands out the C-level _ssl._SSLSocket, which takes no keywords
        self._check_certificate(ssl_object.getpeercert(True) if ssl_object is not None else None)

    # --- requests ---

    def _send(self, method: str, path: str, *, params=None, body: bytes = b"", headers: dict | None = None,
              stream: bool = False, read_timeout: float | None = None) -> tuple[httpx.Response, str]:
        t = self._http.timeout
        timeout = t if read_timeout is None else httpx.Timeout(connect=t.connect, read=read_timeout,
                                                               write=t.write, pool=t.pool)
        request = self._http.build_request(method, path, params=params, content=body, headers=headers,
                                           timeout=timeout)
        signed = peer_auth.sign_request(self.key, self.sender_id, method, request.url.raw_path.decode("ascii"),
                                        body)
        request.headers.update(signed)
        try:
            response = self._http.send(request, stream=True)  # headers only: check the connection first
        except httpx.TransportError as exc:
            raise self._unreachable("cannot reach", exc) from exc
        try:
            self._check_connection(response)
            if response.status_code >= 300 or not stream:
                response.read()
            if response.status_code >= 300:
                raise self._refused(method, path, response)
        except httpx.TransportError as exc:
            response.close()
            raise self._unreachable("lost the connection to", exc) from exc
        except BaseException:
            response.close()
            raise
        return response, signed[peer_auth.H_NONCE]

    def _unreachable(self, what: str, exc: httpx.TransportError) -> PeerUnreachable:
        return PeerUnreachable(f"{what} the peer at {self.base_url}: {str(exc) or type(exc).__name__}",
                               address=self.base_url, hint="check that the peer appliance is running and "
                               "reachable from this one (address, port, firewall)")

    def _refused(self, method: str, path: str, response: httpx.Response) -> PeerRefused:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        said = answer.get("message") or response.reason_phrase or "no reason given"
        return PeerRefused(f"the peer refused {method} {path} (HTTP {response.status_code}): {said}",
                           status_code=response.status_code, error=answer.get("error"),
                           reason=answer.get("reason"), hint=answer.get("hint"))

    def _verified(self, response: httpx.Response, nonce: str, method: str, path: str) -> httpx.Response:
        try:
            peer_auth.verify_response(self.key, nonce, response.status_code, response.content,
                                      response.headers.get(peer_auth.H_SIGNATURE))
        except PeerAuthError as exc:
            raise PeerUntrusted(f"the peer's answer to {method} {path} failed authentication: {exc.message}",
                                hint=exc.hint) from exc
        return response

    def get(self, path: str, params=None, *, headers: dict | None = None,
            verify_response: bool = False) -> httpx.Response:
        """GET ``path`` (a 2xx answer, read). ``headers`` (e.g. Range) are sent but not signed."""
        response, nonce = self._send("GET", path, params=params, headers=headers)
        return self._verified(response, nonce, "GET", path) if verify_response else response

    def post_json(self, path: str, obj, *, verify_response: bool = False) -> httpx.Response:
        """POST ``obj`` as compact JSON (a 2xx answer, read)."""
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
        response, nonce = self._send("POST", path, body=body, headers={"Content-Type": "application/json"})
        return self._verified(response, nonce, "POST", path) if verify_response else response

    @contextmanager
    def stream(self, method: str, path: str, params=None, *, headers: dict | None = None,
               read_timeout: float | None = None) -> Iterator[httpx.Response]:
        """A streaming answer (e.g. the NDJSON change stream), pin and status checked, body not yet read:
        ``with client.stream("GET", "/peer/v1/changes", {"after": 0}) as r: for line in r.iter_lines()``.
        ``read_timeout`` should exceed the peer's heartbeat interval. Streams are not signed (TLS + pin)."""
        response, _nonce = self._send(method, path, params=params, headers=headers, stream=True,
                                      read_timeout=read_timeout)
        try:
            yield response
        except httpx.TransportError as exc:
            raise self._unreachable("lost the stream from", exc) from exc
        finally:
            response.close()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "PeerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
