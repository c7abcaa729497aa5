"""The CSR flow: pending requests, installing the CA's answer (pending.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tether.certs.classify import describe
from tether.certs.generate import spki_sha256
from tether.certs.pending import PendingRequests, certificate_requests
from tether.core.errors import Conflict, IntegrityError, NotFound


@pytest.fixture
def requests(engine, box):
    return PendingRequests(engine, box)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_csr_signed_by_test_ca_is_installed_with_its_chain(requests, store, pki, tree):
    req = requests.create("site", "support.example.com", ["192.0.2.10"])
    assert "key_sealed" not in req and req["csr_pem"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    with requests.engine.connect() as c:  # the key is sealed at rest
        sealed = c.execute(sa.select(certificate_requests.c.key_sealed)).scalar_one()
    assert sealed.startswith("tsb1:")
    answer = _pem(pki.sign_csr(req["csr_pem"], tree.inter))
    cert_id = requests.install(store, answer, tree.inter.pem + tree.root.pem)
    assert requests.list() == []
    row = store.get(cert_id)
    assert row["name"] == "site" and row["cert_pem"] == answer
    key = serialization.load_der_private_key(store.private_key_der(row), None)
    assert spki_sha256(key.public_key()) == spki_sha256(x509.load_pem_x509_certificate(answer.encode()).public_key())
    desc = describe(row, addresses=["192.0.2.10"])
    assert desc["kind"] == "ca-signed" and desc["warnings"] == [] and desc["has_private_key"]


def test_answer_picks_the_right_request_among_several(requests, store, pki, tree):
    first = requests.create("one", "one.example.com")
    second = requests.create("two", "two.example.com", key_type="rsa-2048")
    answer = _pem(pki.sign_csr(second["csr_pem"], tree.inter))
    cert_id = requests.install(store, tree.root.pem + tree.inter.pem + answer, name="renamed")
    assert store.get(cert_id)["name"] == "renamed"
    assert [r["id"] for r in requests.list()] == [first["id"]]


def test_non_matching_answer_is_refused_and_changes_nothing(requests, store, tree):
    requests.create("site", "support.example.com")
    before = store.list()
    with pytest.raises(IntegrityError, match="matches no pending certificate request"):
        requests.install(store, tree.leaf.pem, tree.inter.pem + tree.root.pem)
    assert store.list() == before and len(requests.list()) == 1


def test_names_must_be_unique(requests, store, tree):
    store.add("taken", tree.leaf.pem, tree.leaf.key_der)
    with pytest.raises(Conflict):
        requests.create("taken", "a.example.com")
    requests.create("req", "a.example.com")
    with pytest.raises(Conflict):
        requests.create("req", "b.example.com")


def test_get_and_delete(requests):
    req = requests.create("x", "x.example.com")
    assert requests.get(req["id"])["common_name"] == "x.example.com"
    requests.delete(req["id"])
    with pytest.raises(NotFound):
        requests.get(req["id"])
    with pytest.raises(NotFound):
        requests.delete(req["id"])
