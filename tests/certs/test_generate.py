"""Self-signed certificates, CSRs and CA-answer matching (generate.py)."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tether.certs.classify import classify
from tether.certs.generate import (generate_csr, generate_self_signed, load_pem_certificates, match_answer,
                                   spki_sha256)
from tether.core.errors import IntegrityError, Invalid


@pytest.mark.parametrize("key_type, cls, size", [("ecdsa-p256", ec.EllipticCurvePrivateKey, 256),
                                                 ("rsa-2048", rsa.RSAPrivateKey, 2048),
                                                 ("rsa-3072", rsa.RSAPrivateKey, 3072)])
def test_self_signed_has_fqdn_and_alt_names(key_type, cls, size):
    issued = generate_self_signed("Support.Example.com.", ["10.0.0.5", "alt.example.com", "*.example.net",
                                                           "2001:db8::1", "support.example.com"], key_type)
    cert = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    key = serialization.load_der_private_key(issued.key_der, None)
    assert isinstance(key, cls) and key.key_size == size
    assert spki_sha256(key.public_key()) == spki_sha256(cert.public_key())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["support.example.com", "alt.example.com", "*.example.net"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5"),
                                                       ipaddress.ip_address("2001:db8::1")]
    assert cert.issuer == cert.subject and issued.chain_pem == ""
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    cert.verify_directly_issued_by(cert)
    assert classify(cert) == "self-signed"


@pytest.mark.parametrize("fqdn, alt, field", [("support", [], "fqdn"), ("bad host.example.com", [], "fqdn"),
                                              ("ok.example.com", ["10.0.0.5", "not a name"], "alt_names.1")])
def test_bad_names_are_refused(fqdn, alt, field):
    with pytest.raises(Invalid) as exc:
        generate_self_signed(fqdn, alt)
    assert exc.value.field == field


def test_unknown_key_type_is_refused():
    with pytest.raises(Invalid, match="unknown key type"):
        generate_csr("a.example.com", key_type="dsa-1024")


def test_csr_carries_names_and_key(pki, tree):
    csr_pem, key_der = generate_csr("vpn.example.com", ["192.0.2.7"], "rsa-2048", organization="Example Ltd")
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=vpn.example.com,O=Example Ltd"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in san] == ["vpn.example.com", "192.0.2.7"]
    key = serialization.load_der_private_key(key_der, None)
    assert spki_sha256(key.public_key()) == spki_sha256(csr.public_key())


def test_answer_in_any_order_is_matched_and_chain_ordered(pki, tree):
    csr_pem, key_der = generate_csr("vpn.example.com")
    leaf = pki.sign_csr(csr_pem, tree.inter)
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    spki = spki_sha256(serialization.load_der_private_key(key_der, None).public_key())
    bundle = tree.root.pem + "\nnoise between blocks\n" + leaf_pem + tree.inter.pem + tree.inter.pem
    rid, got_leaf, chain = match_answer({7: "0" * 64, 9: spki}, bundle)
    assert rid == 9 and got_leaf == leaf_pem
    assert [c.subject for c in load_pem_certificates(chain)] == [tree.inter.cert.subject, tree.root.cert.subject]
    # the same with the chain given separately
    assert match_answer({9: spki}, leaf_pem, tree.inter.pem + tree.root.pem) == (9, leaf_pem, chain)


def test_answer_matching_no_pending_key_is_refused(tree):
    with pytest.raises(IntegrityError, match="matches no pending certificate request"):
        match_answer({1: "ab" * 32}, tree.leaf.pem + tree.inter.pem)


def test_answer_without_certificates_is_refused():
    with pytest.raises(Invalid, match="no PEM certificate"):
        match_answer({1: "ab" * 32}, "hello")
    with pytest.raises(Invalid, match="does not parse"):
        match_answer({1: "ab" * 32}, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
