"""Fixtures for the peer-link tests: the example pre-shared key and its MAC
key, a settable clock, and a real HTTPS peer on loopback (``http.server`` in
a thread, self-signed certificates made with ``cryptography`` and presented
through the listeners' ``ListenerContext``) that checks every request with
``PeerVerifier`` and signs its answers."""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tether.appliance.settings import Tls
from tether.certs.generate import Issued, generate_self_signed
from tether.certs.tls import ListenerContext
from tether.clients.trust import pin_of_pem
from tether.failover import peer_auth
from tether.failover.errors import PeerAuthError

from .bind import bind  # noqa: F401 - fixtures of the failover tests
from .netns import lab  # noqa: F401
from .pairs import pair  # noqa: F401

PSK = "correct horse battery staple, peer link test key"
PEER_ID = "peer-b"


@pytest.fixture(scope="session")
def key() -> bytes:
    return peer_auth.derive_key(PSK)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock() -> Clock:
    return Clock()


@dataclass
class Cert:
    issued: Issued
    pin: str


@pytest.fixture(scope="session")
def certs() -> dict[str, Cert]:
    made = {name: generate_self_signed(f"{name}.tether.test", ["127.0.0.1"]) for name in ("peer", "other")}
    return {name: Cert(issued, pin_of_pem(issued.cert_pem)) for name, issued in made.items()}


@dataclass
class Peer:
    """The answering appliance: ``seen`` lists the targets of requests that reached a handler."""

    url: str
    pin: str
    context: ListenerContext
    runtime_dir: Path
    verifier: peer_auth.PeerVerifier
    seen: list[str] = field(default_factory=list)

    def present(self, cert: Cert) -> None:
        """Present another certificate on new connections from now on, as an appliance's listener does."""
        self.context.present(cert.issued.cert_pem, cert.issued.chain_pem, cert.issued.key_der, self.runtime_dir)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peer: Peer
    key: bytes

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, obj, nonce: str | None, *, forge: bool = False) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")  # every request a new connection: a new handshake
        if nonce is not None and status < 300:
            signature = peer_auth.sign_response(self.key, nonce, status, body)
            self.send_header(peer_auth.H_SIGNATURE, signature[::-1] if forge else signature)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        self.close_connection = True
        self.peer.seen.append(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            sender = self.peer.verifier.verify(self.command, self.path, body, self.headers, self.client_address[0])
        except PeerAuthError as exc:
            return self._answer(exc.status, exc.to_dict(), None)
        nonce = self.headers[peer_auth.H_NONCE]
        if self.path.startswith("/peer/v1/stream"):
            return self._stream()
        if self.path.startswith("/peer/v1/missing"):
            return self._answer(404, {"error": "not_found", "message": "no such endpoint"}, nonce)
        answer = {"sender": sender, "target": self.path, "body": body.decode()}
        self._answer(200, answer, nonce, forge=self.path.startswith("/peer/v1/forged"))

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for seq in (1, 2, 3):
            line = json.dumps({"type": "heartbeat", "head": seq, "at": 0}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = _handle


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that drops the connection after the handshake (pin refused) is expected


@pytest.fixture
def peer(certs, key, tmp_path):
    """A running HTTPS peer presenting the ``peer`` certificate through a listener's TLS context, its clock
    the real one."""
    context = ListenerContext(Tls())
    verifier = peer_auth.PeerVerifier(lambda: key, own_id=PEER_ID)
    handler = type("Handler", (_Handler,), {"key": key})
    server = _Server(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    p = Peer(f"https://127.0.0.1:{server.server_address[1]}", certs["peer"].pin, context, tmp_path / "run",
             verifier)
    p.present(certs["peer"])
    handler.peer = p
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="test-peer", daemon=True)
    thread.start()
    yield p
    server.shutdown()
    server.server_close()
    thread.join(5)
