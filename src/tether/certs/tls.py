"""TLS server contexts for the listeners.

Each listener (one per address:port) has its own ``ListenerContext``: the
``ssl.SSLContext`` the server is started with, kept for the listener's life.
The /appliance TLS settings (protocol versions, cipher list) are applied to
it in place. The certificate it presents (CERT-06) lives in a separate
*identity* context that ``present`` replaces whole; at every handshake the
listener's server-name callback (which OpenSSL calls for every ClientHello,
with or without SNI) moves the new connection onto the current identity. So
new connections see a change at once, connections already open keep the
certificate they were given, and nothing restarts.

Why not ``load_cert_chain`` on the listener context itself: OpenSSL keeps one
certificate *per key type* in a context, so loading an RSA certificate into a
context that held an ECDSA one leaves both, and ECDSA-capable clients keep
getting the old certificate. A fresh identity context holds exactly one.

OpenSSL loads keys from files only, so the key is handed over as a PEM file
encrypted with a one-time random passphrase in the runtime directory and
removed at once: the key never touches the disk in clear.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tether.appliance.settings import TLS_VERSIONS, Tls


def load_identity(ctx: ssl.SSLContext, cert_pem: str, chain_pem: str, key_der: bytes, runtime_dir: Path) -> None:
    key = serialization.load_der_private_key(key_der, password=None)
    passphrase = secrets.token_bytes(32)
    enc = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(passphrase))
    runtime_dir.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=runtime_dir, suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem.encode())
            if chain_pem:
                f.write(b"\n" + chain_pem.encode())
            f.write(b"\n" + enc)
        ctx.load_cert_chain(path, password=passphrase)
    finally:
        os.unlink(path)


def apply_tls_settings(ctx: ssl.SSLContext, tls: Tls) -> None:
    ctx.minimum_version = TLS_VERSIONS[tls.min_version]
    ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    ctx.set_ciphers(tls.ciphers)


class ListenerContext(ssl.SSLContext):
    """A listener's TLS context: TLS settings in place, identity swapped per handshake."""

    def __new__(cls, tls: Tls):
        return super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)

    def __init__(self, tls: Tls):
        super().__init__()
        self.options |= ssl.OP_NO_COMPRESSION
        apply_tls_settings(self, tls)
        self._tls = tls
        self._identity: ssl.SSLContext | None = None
        self.sni_callback = _select_identity

    def present(self, cert_pem: str, chain_pem: str, key_der: bytes, runtime_dir: Path) -> None:
        """Present this certificate (with its chain) to every new connection from now on."""
        identity = new_server_context(self._tls)
        load_identity(identity, cert_pem, chain_pem, key_der, runtime_dir)
        if self._identity is None:  # the listener's own certificate, should a handshake bypass the callback
            load_identity(self, cert_pem, chain_pem, key_der, runtime_dir)
        self._identity = identity  # one reference swap: a handshake sees the old or the new identity

    def apply_settings(self, tls: Tls) -> None:
        self._tls = tls
        apply_tls_settings(self, tls)
        if self._identity is not None:
            apply_tls_settings(self._identity, tls)


def _select_identity(conn, _server_name, ctx) -> None:
    identity = getattr(ctx, "_identity", None)
    if identity is not None and conn.context is not identity:
        conn.context = identity
    return None


def new_server_context(tls: Tls) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.options |= ssl.OP_NO_COMPRESSION
    apply_tls_settings(ctx, tls)
    return ctx
