"""How a client trusts its site (CL-02): the public-key pin of a
certificate (``sha256/<base64url>`` of its SubjectPublicKeyInfo) and the
check of a peer certificate against a pin or a CA root. Used by the
appliance (to print the pin into installer tokens) and by the clients."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = "sha256/"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pin_of_cert(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return PREFIX + b64(hashlib.sha256(spki).digest())


def pin_of_pem(pem: str | bytes) -> str:
    return pin_of_cert(x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem))


def pin_of_der(der: bytes) -> str:
    return pin_of_cert(x509.load_der_x509_certificate(der))


def valid_pin(pin: str) -> bool:
    if not isinstance(pin, str) or not pin.startswith(PREFIX):
        return False
    try:
        return len(unb64(pin[len(PREFIX):])) == 32
    except ValueError:
        return False


class UntrustedCertificate(Exception):
    """The site presented a certificate the client does not trust."""


def client_context(trust: dict) -> ssl.SSLContext:
    """A TLS context for a client: chain + hostname verification against a root, or (for a pin)
    no chain verification here, the pin being checked by ``check_peer`` right after the handshake."""
    if trust.get("cacert"):
        ctx = ssl.create_default_context(cadata=trust["cacert"])
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def check_peer(trust: dict, peer_der: bytes | None) -> None:
    """Raise UntrustedCertificate unless the peer's certificate matches the pin (when pinned)."""
    pin = trust.get("pin")
    if not pin:
        return  # chain and hostname were verified in the handshake
    if peer_der is None:
        raise UntrustedCertificate("the site presented no certificate")
    got = pin_of_der(peer_der)
    if not hmac.compare_digest(got, pin):
        raise UntrustedCertificate(f"certificate does not match the pinned site key (pinned {pin}, presented {got})")
