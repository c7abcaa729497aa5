"""TLS server contexts for the listeners.

Each listener (one per address:port) has its own ``ssl.SSLContext``; the
certificate it presents and the /appliance TLS settings (protocol versions,
cipher list) are applied to that context in place, so new connections see a
change at once and connections already open keep theirs (no restart).

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


def new_server_context(tls: Tls) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.options |= ssl.OP_NO_COMPRESSION
    apply_tls_settings(ctx, tls)
    return ctx
