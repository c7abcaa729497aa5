"""Making certificates (CERT-02): private keys of the supported types, a
self-signed certificate for the appliance's FQDN, a key + CSR for a CA, and
matching a CA's answer (leaf, intermediates, root, in any order and in one or
several PEM bundles) to the key that asked for it.

Everything here is pure: it returns plain data (PEM text, PKCS#8 DER keys) and
never touches the database. Keeping pending keys is ``pending.py``'s job;
storing certificates is ``CertStore``'s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tether.core import validate as v
from tether.core.errors import IntegrityError, Invalid

KeyType = Literal["ecdsa-p256", "rsa-2048", "rsa-3072"]
KEY_TYPES: tuple[str, ...] = ("ecdsa-p256", "rsa-2048", "rsa-3072")
DEFAULT_KEY_TYPE: KeyType = "ecdsa-p256"
SELF_SIGNED_DAYS = 365
MAX_ANSWER_BYTES = 1 << 20
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class Issued:
    """A certificate ready for ``CertStore.add``: the leaf, its chain (PEM,
    issuer first, root last when present) and the PKCS#8 DER private key."""

    cert_pem: str
    chain_pem: str
    key_der: bytes


def new_private_key(key_type: str = DEFAULT_KEY_TYPE) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa-2048", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise Invalid(f"unknown key type {key_type!r}", field="key_type", hint=f"choose one of {', '.join(KEY_TYPES)}")


def key_der(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def spki_sha256(public_key) -> str:
    """Hex SHA-256 of a public key's SubjectPublicKeyInfo: what ties a CA's answer to its request."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def subject_names(fqdn: str, alt_names: Iterable[str] = ()) -> list[x509.GeneralName]:
    """The SAN list: the FQDN first, then each extra DNS name or IP address,
    without duplicates. Raises Invalid naming the bad entry."""
    try:
        host = v.hostname(fqdn)
    except ValueError as exc:
        raise Invalid(str(exc), field="fqdn") from None
    if "." not in host:
        raise Invalid(f"{fqdn!r} is not a fully qualified domain name", field="fqdn",
                      hint="give the name clients use, with its domain, e.g. support.example.com")
    names: list[x509.GeneralName] = [x509.DNSName(host)]
    for i, raw in enumerate(alt_names):
        entry = str(raw).strip()
        if not entry:
            continue
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(entry))
        except ValueError:
            wildcard = entry.startswith("*.")
            try:
                dns = v.hostname(entry[2:] if wildcard else entry)
            except ValueError:
                raise Invalid(f"{entry!r} is neither a DNS name nor an IP address",
                              field=f"alt_names.{i}") from None
            name = x509.DNSName(("*." if wildcard else "") + dns)
        if name not in names:
            names.append(name)
    return names


def _subject(fqdn: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _server_extensions(builder, key, names):
    usage_encipher = isinstance(key, rsa.RSAPrivateKey)
    return (
        builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=usage_encipher,
                                     content_commitment=False, data_encipherment=False, key_agreement=False,
                                     key_cert_sign=False, crl_sign=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )


def generate_self_signed(fqdn: str, alt_names: Sequence[str] = (), key_type: str = DEFAULT_KEY_TYPE, *,
                         days: int = SELF_SIGNED_DAYS, organization: str | None = None,
                         now: dt.datetime | None = None) -> Issued:
    """A self-signed server certificate for ``fqdn`` (subject CN and first
    SAN) plus ``alt_names`` (DNS names, ``*.`` wildcards, IP addresses)."""
    names = subject_names(fqdn, alt_names)
    if not 1 <= days <= 3650:
        raise Invalid("validity must be between 1 and 3650 days", field="days")
    key = new_private_key(key_type)
    name = _subject(names[0].value, organization)
    now = now or dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = _server_extensions(builder, key, names).sign(key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM).decode(), "", key_der(key))


def generate_csr(fqdn: str, alt_names: Sequence[str] = (), key_type: str = DEFAULT_KEY_TYPE, *,
                 organization: str | None = None) -> tuple[str, bytes]:
    """Return (CSR PEM, PKCS#8 DER private key) for a CA to sign."""
    names = subject_names(fqdn, alt_names)
    key = new_private_key(key_type)
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(names[0].value, organization))
    csr = _server_extensions(builder, key, names).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key_der(key)


def load_pem_certificates(*bundles: str | bytes) -> list[x509.Certificate]:
    """Every certificate in the PEM bundles, in order, duplicates dropped.
    Raises Invalid if there is none or one does not parse."""
    certs: list[x509.Certificate] = []
    seen: set[bytes] = set()
    for bundle in bundles:
        data = bundle.encode() if isinstance(bundle, str) else bytes(bundle or b"")
        if len(data) > MAX_ANSWER_BYTES:
            raise Invalid("the certificate file is larger than 1 MiB", field="certificate")
        for block in _PEM_CERT.findall(data):
            try:
                cert = x509.load_pem_x509_certificate(block)
            except ValueError:
                raise Invalid("a certificate in the file does not parse", field="certificate",
                              hint="give the PEM text exactly as the CA sent it") from None
            fp = cert.fingerprint(hashes.SHA256())
            if fp not in seen:
                seen.add(fp)
                certs.append(cert)
    if not certs:
        raise Invalid("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)", field="certificate")
    return certs


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s name and key signed ``cert``."""
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:  # name mismatch, bad signature, unsupported algorithm
        return False


def order_chain(leaf: x509.Certificate, others: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The issuers of ``leaf`` found in ``others`` in path order (issuer
    first, root last), followed by any certificate not on the path."""
    path: list[x509.Certificate] = []
    pool = [c for c in others if c != leaf]
    current = leaf
    while (parent := next((c for c in pool if issued_by(current, c)), None)) is not None:
        path.append(parent)
        pool.remove(parent)
        current = parent
        if current.issuer == current.subject:  # reached a root
            break
    return path + pool


def pem(certs: Iterable[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def match_answer(pending_spki: dict[int, str], answer_pem: str | bytes,
                 chain_pem: str | bytes = "") -> tuple[int, str, str]:
    """Find which pending request a CA's answer is for.

    ``pending_spki`` maps request id -> ``spki_sha256`` of its key. The answer
    and optional separate chain are PEM bundles; exactly one certificate in
    them must carry a pending request's public key. Returns (request id, leaf
    PEM, ordered chain PEM). Raises IntegrityError when no certificate
    matches a pending key, Invalid when the answer is ambiguous or unreadable.
    """
    certs = load_pem_certificates(answer_pem, chain_pem)
    by_spki = {spki: rid for rid, spki in pending_spki.items()}
    hits = [(c, by_spki[s]) for c in certs if (s := spki_sha256(c.public_key())) in by_spki]
    if not hits:
        raise IntegrityError("the CA's answer matches no pending certificate request",
                             hint="install the answer to the CSR generated on this appliance "
                                  "(tether cert csr); a certificate for another key cannot be used")
    if len(hits) > 1:
        raise Invalid("the answer holds more than one certificate for pending keys; install one at a time",
                      field="certificate")
    leaf, request_id = hits[0]
    return request_id, pem([leaf]), pem(order_chain(leaf, [c for c in certs if c is not leaf]))
