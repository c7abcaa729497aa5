"""Helpers for the end-to-end certificate tests (real appliance processes,
HTTPS, the CLI, TLS clients on 127.0.0.x): a test PKI valid today, .p12
files to upload, and probes of what a listener presents."""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tether.certs.pkcs12 import build_p12

from .conftest import Node, Pki

P12_PASS = "import-pass-1"
FAST = 2048  # key-derivation rounds for files the tests make; the appliance's own exports use its default
TWO = ["127.0.0.1:0", "127.0.0.2:0"]


@dataclass
class LivePki:
    """Live Root CA -> Live Intermediate CA -> support.example.com (SAN also 127.0.0.1 and 127.0.0.2)."""
    pki: Pki
    root: Node
    inter: Node
    leaf: Node


def live_pki() -> LivePki:
    pki = Pki(start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    root = pki.root("Live Root CA")
    inter = pki.intermediate(root, "Live Intermediate CA")
    return LivePki(pki, root, inter, pki.leaf(inter, ips=("127.0.0.1", "127.0.0.2")))


def p12(leaf: Node, chain: list[Node] = (), password: str = P12_PASS, *, key: bool = True) -> bytes:
    return build_p12(leaf.pem, "".join(n.pem for n in chain), leaf.key_der if key else None, password,
                     include_key=key, kdf_rounds=FAST)


def der(node_or_pem) -> bytes:
    cert = node_or_pem.cert if isinstance(node_or_pem, Node) else x509.load_pem_x509_certificate(
        node_or_pem.encode())
    return cert.public_bytes(serialization.Encoding.DER)


def sha256(cert_der: bytes) -> str:
    return x509.load_der_x509_certificate(cert_der).fingerprint(hashes.SHA256()).hex(":").upper()


def host_port(listen: str) -> tuple[str, int]:
    host, port = listen.rsplit(":", 1)
    return host, int(port)


def presented_leaf(listen: str) -> bytes:
    """The DER leaf certificate a listener presents to a new connection (no verification)."""
    host, port = host_port(listen)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as s, ctx.wrap_socket(s) as t:
        return t.getpeercert(binary_form=True)


def presented_chain(listen: str) -> list[bytes]:
    """Every certificate the listener sends (leaf first), read with `openssl s_client -showcerts`
    (Python 3.11 has no SSLSocket.get_unverified_chain)."""
    host, port = host_port(listen)
    cp = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", "-showcerts"], input="",
                        capture_output=True, text=True, timeout=30)
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", cp.stdout, re.S)
    assert blocks, cp.stdout + cp.stderr
    return [der(b) for b in blocks]


def verified_handshake(listen: str, root: Node, server_hostname: str = "support.example.com") -> bytes:
    """A fully verifying client that trusts only ``root``: works only if the listener sends the intermediate."""
    host, port = host_port(listen)
    ctx = ssl.create_default_context(cadata=root.pem)
    with socket.create_connection((host, port), timeout=10) as s, \
            ctx.wrap_socket(s, server_hostname=server_hostname) as t:
        return t.getpeercert(binary_form=True)


class OpenConnection:
    """One TLS connection kept open across changes, speaking HTTP/1.1 keep-alive by hand."""

    def __init__(self, listen: str):
        host, port = host_port(listen)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        raw = socket.create_connection((host, port), timeout=10)
        self.sock = ctx.wrap_socket(raw)
        self.leaf = self.sock.getpeercert(binary_form=True)

    def get(self, path: str = "/health") -> str:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed"
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))
        while len(body) < length:
            body += self.sock.recv(4096)
        return head.split(b"\r\n")[0].decode() + " " + body.decode()

    def close(self) -> None:
        self.sock.close()


def listing(c: httpx.Client, h: dict) -> dict:
    r = c.get("/appliance/api/certificates", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def by_name(c: httpx.Client, h: dict, name: str) -> dict:
    return next(x for x in listing(c, h)["certificates"] if x["name"] == name)


def upload(c: httpx.Client, h: dict, data: bytes, name: str, password: str = P12_PASS) -> httpx.Response:
    return c.post("/appliance/api/certificates/import", headers=h, files={"file": ("cert.p12", data)},
                  data={"password": password, "name": name})


def write_secret(path: Path, secret: str) -> Path:
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path
