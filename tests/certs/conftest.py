"""Fixtures for the certificate domain tests: an appliance.db with the
certificate tables, a secret box, a test PKI builder, and loopback SMTP
relays (tests.helpers.SmtpSink: plain, STARTTLS with AUTH, implicit TLS)
that record what they receive or fail on demand."""

from __future__ import annotations

import datetime as dt
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import tether.certs.expiry  # noqa: F401 - registers certificate_reminders on the metadata
import tether.certs.pending  # noqa: F401 - registers certificate_requests on the metadata
from tether.appliance.store import create_schema
from tether.certs.store import CertStore
from tether.core.secretbox import SecretBox
from tests.helpers import SmtpSink

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


@dataclass
class Node:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_der(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


class Pki:
    """Builds roots, intermediates and leaves valid around ``NOW`` (or ``start``)."""

    def __init__(self, start: dt.datetime = NOW - dt.timedelta(days=30)):
        self.start = start

    def _build(self, subject: x509.Name, issuer: Node | None, public_key, sign_key, *, ca: bool,
               days: int, names: list[x509.GeneralName] | None) -> x509.Certificate:
        b = (x509.CertificateBuilder()
             .subject_name(subject)
             .issuer_name(issuer.cert.subject if issuer else subject)
             .public_key(public_key)
             .serial_number(x509.random_serial_number())
             .not_valid_before(self.start)
             .not_valid_after(self.start + dt.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return b.sign(sign_key, hashes.SHA256())

    def root(self, cn: str = "Test Root CA", days: int = 3650) -> Node:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        return Node(self._build(name, None, key.public_key(), key, ca=True, days=days, names=None), key)

    def intermediate(self, issuer: Node, cn: str = "Test Intermediate CA", days: int = 1825) -> Node:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        return Node(self._build(name, issuer, key.public_key(), issuer.key, ca=True, days=days, names=None), key)

    def leaf(self, issuer: Node, fqdn: str = "support.example.com", *, ips: tuple[str, ...] = (),
             days: int = 365, san: bool = True, key=None, not_after: dt.datetime | None = None) -> Node:
        import ipaddress
        key = key or ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)])
        names = [x509.DNSName(fqdn)] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips] if san else None
        if not_after is not None:  # an exact end (e.g. seconds past a reminder threshold)
            days = (not_after - self.start) / dt.timedelta(days=1)
        return Node(self._build(name, issuer, key.public_key(), issuer.key, ca=False, days=days, names=names), key)

    def sign_csr(self, csr_pem: str, issuer: Node, days: int = 365) -> x509.Certificate:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid
        b = (x509.CertificateBuilder()
             .subject_name(csr.subject)
             .issuer_name(issuer.cert.subject)
             .public_key(csr.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(self.start)
             .not_valid_after(self.start + dt.timedelta(days=days)))
        for ext in csr.extensions:
            b = b.add_extension(ext.value, critical=ext.critical)
        return b.sign(issuer.key, hashes.SHA256())


@dataclass
class Hierarchy:
    root: Node
    inter: Node
    leaf: Node


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="session")
def tree(pki: Pki) -> Hierarchy:
    """Test Root CA -> Test Intermediate CA -> support.example.com."""
    root = pki.root()
    inter = pki.intermediate(root)
    return Hierarchy(root, inter, pki.leaf(inter, ips=("192.0.2.10",)))


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'appliance.db'}")
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(os.urandom(32))


@pytest.fixture
def store(engine: sa.Engine, box: SecretBox) -> CertStore:
    return CertStore(engine, box)


# --- SMTP relay (tests.helpers.SmtpSink) ------------------------------------

USER, PASSWORD = "tether", "s3cret-relay-pass"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
        and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="session")
def relay_tls(relay_pki) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context for the relay, client context trusting its root), valid today."""
    return relay_pki[0], relay_pki[1]


@pytest.fixture(scope="session")
def relay_ca_file(relay_pki) -> Path:
    """The relay's root certificate as a PEM file (for SSL_CERT_FILE of an appliance process)."""
    return relay_pki[2]


@pytest.fixture(scope="session")
def relay_pki(tmp_path_factory) -> tuple[ssl.SSLContext, ssl.SSLContext, Path]:
    pki = Pki(start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    root = pki.root("Relay Root CA")
    inter = pki.intermediate(root, "Relay Intermediate CA")
    leaf = pki.leaf(inter, "localhost", ips=("127.0.0.1",))
    d = tmp_path_factory.mktemp("relay")
    (d / "cert.pem").write_text(leaf.pem + inter.pem)
    (d / "key.pem").write_bytes(leaf.key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(d / "cert.pem", d / "key.pem")
    client = ssl.create_default_context(cadata=root.pem)
    (d / "root.pem").write_text(root.pem)
    return server, client, d / "root.pem"


@pytest.fixture
def relay():
    """A plain SMTP relay on loopback."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def relay_starttls(relay_tls):
    """A relay that requires STARTTLS and AUTH (USER / PASSWORD)."""
    with SmtpSink(tls_context=relay_tls[0], require_starttls=True, authenticator=_authenticator,
                  auth_required=True) as sink:
        yield sink


@pytest.fixture
def relay_smtps(relay_tls):
    """A relay speaking SMTP over implicit TLS."""
    with SmtpSink(ssl_context=relay_tls[0]) as sink:
        yield sink
