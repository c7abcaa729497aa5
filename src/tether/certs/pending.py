"""Pending certificate requests (CERT-02): keys generated for a CSR, waiting
for the CA's answer, in the ``certificate_requests`` table of appliance.db.

The private key is sealed by the appliance's secret box under the same
purpose as installed certificate keys (``certificate-key``), so installing an
answer moves the sealed value without ever writing the key in clear. A
request is matched to an answer by the SHA-256 of its public key
(``spki_sha256``), which is stored in clear so no key is unsealed to look.
Installing an answer adds the certificate and deletes the request in one
transaction.

The table lives on ``tether.appliance.store.metadata``: import this module
before ``create_schema`` so the table is created with the others.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tether.appliance.store import certificates, metadata
from tether.core.errors import Conflict, IntegrityError, Invalid, NotFound
from tether.core.secretbox import SecretBox

from .generate import DEFAULT_KEY_TYPE, Issued, generate_csr, match_answer, spki_sha256
from .store import KEY_PURPOSE, CertStore

certificate_requests = sa.Table(
    "certificate_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("common_name", sa.String(255), nullable=False),
    sa.Column("key_type", sa.String(16), nullable=False),
    sa.Column("csr_pem", sa.Text, nullable=False),
    sa.Column("spki_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("key_sealed", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

_PUBLIC = [c for c in certificate_requests.c if c.name != "key_sealed"]


class PendingRequests:
    def __init__(self, engine: sa.Engine, box: SecretBox):
        self.engine = engine
        self.box = box

    def create(self, name: str, fqdn: str, alt_names: list[str] | tuple[str, ...] = (),
               key_type: str = DEFAULT_KEY_TYPE, organization: str | None = None) -> dict:
        """Generate a key + CSR and keep the key; returns the request (with ``csr_pem``)."""
        name = _check_name(name)
        csr_pem, key = generate_csr(fqdn, alt_names, key_type, organization=organization)
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        values = dict(name=name, common_name=fqdn.strip().lower().rstrip("."), key_type=key_type,
                      csr_pem=csr_pem, spki_sha256=spki_sha256(csr.public_key()),
                      key_sealed=self.box.seal(key, KEY_PURPOSE), created_at=time.time())
        with self.engine.begin() as c:
            _name_free(c, name)
            rid = c.execute(certificate_requests.insert().values(**values)).inserted_primary_key[0]
        return self.get(rid)

    def list(self) -> list[dict]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(*_PUBLIC).order_by(certificate_requests.c.id)).mappings()
            return [dict(r) for r in rows]

    def get(self, request_id: int) -> dict:
        with self.engine.connect() as c:
            row = c.execute(sa.select(*_PUBLIC).where(certificate_requests.c.id == request_id)).mappings().first()
        if row is None:
            raise NotFound(f"no pending certificate request with id {request_id}")
        return dict(row)

    def delete(self, request_id: int) -> None:
        with self.engine.begin() as c:
            if not c.execute(certificate_requests.delete().where(certificate_requests.c.id == request_id)).rowcount:
                raise NotFound(f"no pending certificate request with id {request_id}")

    def match(self, answer_pem: str | bytes, chain_pem: str | bytes = "") -> tuple[dict, Issued]:
        """Which request a CA's answer is for, and the certificate it makes
        (key unsealed). Raises IntegrityError if it matches no pending key."""
        with self.engine.connect() as c:
            rows = {r.id: r for r in c.execute(sa.select(certificate_requests))}
        rid, leaf, chain = match_answer({i: r.spki_sha256 for i, r in rows.items()}, answer_pem, chain_pem)
        row = rows[rid]
        key = self.box.unseal(row.key_sealed, KEY_PURPOSE)
        _check_key(key, leaf)
        public = {k: v for k, v in row._mapping.items() if k != "key_sealed"}
        return public, Issued(leaf, chain, key)

    def install(self, store: CertStore, answer_pem: str | bytes, chain_pem: str | bytes = "",
                name: str | None = None) -> int:
        """Install a CA's answer as a certificate named ``name`` (default: the
        request's name) and drop the request, in one transaction. Returns the
        new certificate id."""
        request, issued = self.match(answer_pem, chain_pem)
        name = _check_name(name) if name else request["name"]
        with self.engine.begin() as c:
            _name_free(c, name, requests=False)
            cert_id = store.add(name, issued.cert_pem, issued.key_der, issued.chain_pem, conn=c)
            c.execute(certificate_requests.delete().where(certificate_requests.c.id == request["id"]))
        return cert_id


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise Invalid("a name of 1 to 128 characters is required", field="name")
    return name


def _name_free(c: sa.Connection, name: str, requests: bool = True) -> None:
    if c.execute(sa.select(certificates.c.id).where(certificates.c.name == name)).first():
        raise Conflict(f"a certificate named {name!r} already exists", field="name", hint="choose another name")
    if requests and c.execute(sa.select(certificate_requests.c.id)
                              .where(certificate_requests.c.name == name)).first():
        raise Conflict(f"a pending request named {name!r} already exists", field="name",
                       hint="install or delete that request, or choose another name")


def _check_key(key_der: bytes, leaf_pem: str) -> None:
    key = serialization.load_der_private_key(key_der, password=None)
    cert = x509.load_pem_x509_certificate(leaf_pem.encode())
    if spki_sha256(key.public_key()) != spki_sha256(cert.public_key()):  # pragma: no cover - tampered row
        raise IntegrityError("the stored key of this request does not match the answer")
