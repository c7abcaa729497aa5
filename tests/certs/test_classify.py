"""Classification, listing fields and warnings (classify.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from tether.certs.builtin import generate_builtin
from tether.certs.classify import classify, describe, summary_lines
from tether.certs.generate import generate_self_signed

from .conftest import NOW


def row(cert_pem: str, chain: list = (), key: bool = True, builtin: bool = False, **extra) -> dict:
    return {"id": 1, "name": "c", "builtin": builtin, "cert_pem": cert_pem,
            "chain_pem": "".join(n.pem for n in chain), "key_sealed": "tsb1:x" if key else None} | extra


def codes(desc: dict) -> list[str]:
    return [w["code"] for w in desc["warnings"]]


def test_the_four_kinds(pki, tree):
    self_signed = generate_self_signed("support.example.com")
    assert describe(row(self_signed.cert_pem), now=NOW)["kind"] == "self-signed"
    assert classify(tree.leaf.cert) == "ca-signed"
    assert classify(pki.leaf(tree.inter, "cn-only.example.com", san=False).cert) == "ca-signed"
    assert classify(tree.inter.cert) == "intermediate"
    assert classify(tree.root.cert) == "root"


def test_builtin_certificate_is_self_signed():
    cert_pem, _ = generate_builtin("SN-1")
    desc = describe(row(cert_pem, builtin=True), addresses=["127.0.0.1"])
    assert desc["kind"] == "self-signed" and desc["builtin"]
    assert codes(desc) == ["self_signed_in_use"]


def test_short_names_count_only_as_the_appliance_hostname(pki, tree):
    short = pki.leaf(tree.inter, "tether").cert
    assert classify(short) == "intermediate"
    assert classify(short, hostname="Tether") == "ca-signed"
    assert classify(pki.leaf(tree.inter, "ip-only.example.com", ips=("192.0.2.1",)).cert) == "ca-signed"


def test_listing_fields(tree):
    desc = describe(row(tree.leaf.pem, [tree.inter, tree.root], key=False, id=4, name="site"), now=NOW)
    assert desc["issued_to"] == "support.example.com" and desc["issued_by"] == "Test Intermediate CA"
    assert desc["alt_names"] == ["support.example.com", "192.0.2.10"]
    assert desc["not_before"] == "2030-05-02T12:00:00Z" and desc["not_after"] == "2031-05-02T12:00:00Z"
    assert len(desc["fingerprint_sha256"]) == 95 and desc["key"] == "ECDSA P-256"
    assert [c["kind"] for c in desc["chain"]] == ["intermediate", "root"]
    lines = summary_lines(desc)
    assert "  Private key: no" in lines and "  Issued To: support.example.com" in lines
    assert any(line.startswith("  SHA-256 fingerprint: ") for line in lines)
    assert "  Private key: yes" in summary_lines(describe(row(tree.leaf.pem, [tree.inter, tree.root]), now=NOW))


def test_self_signed_warns_only_when_in_use():
    pem = generate_self_signed("support.example.com").cert_pem
    assert codes(describe(row(pem))) == []
    desc = describe(row(pem), addresses=["192.0.2.10", "192.0.2.11"])
    assert codes(desc) == ["self_signed_in_use"] and "temporary" in desc["warnings"][0]["message"]


def test_complete_chain_has_no_warnings(pki, tree):
    assert codes(describe(row(tree.leaf.pem, [tree.inter, tree.root]), now=NOW)) == []
    # order in storage does not matter
    assert codes(describe(row(tree.leaf.pem, [tree.root, tree.inter]), now=NOW)) == []
    # a leaf issued straight by the root needs no intermediate
    direct = pki.leaf(tree.root, "direct.example.com")
    assert codes(describe(row(direct.pem, [tree.root]), now=NOW)) == []


@pytest.mark.parametrize("chain, expected", [
    ((), ["chain_missing_intermediate", "chain_missing_root"]),
    (("root",), ["chain_missing_intermediate"]),
    (("inter",), ["chain_missing_root"]),
])
def test_incomplete_chains(tree, chain, expected):
    desc = describe(row(tree.leaf.pem, [getattr(tree, n) for n in chain]), now=NOW)
    assert codes(desc) == expected


def test_two_level_intermediates(pki, tree):
    upper = pki.intermediate(tree.root, "Upper CA")
    lower = pki.intermediate(upper, "Lower CA")
    leaf = pki.leaf(lower, "deep.example.com")
    assert codes(describe(row(leaf.pem, [lower, upper, tree.root]), now=NOW)) == []
    desc = describe(row(leaf.pem, [lower, tree.root]), now=NOW)
    assert codes(desc) == ["chain_missing_intermediate"]
    assert "CN=Upper CA" in desc["warnings"][0]["message"]
    # a gap in the middle: the part above it is not "unrelated"
    lowest = pki.intermediate(lower, "Lowest CA")
    deeper = pki.leaf(lowest, "deeper.example.com")
    desc = describe(row(deeper.pem, [lowest, upper, tree.root]), now=NOW)
    assert codes(desc) == ["chain_missing_intermediate"] and "CN=Lower CA" in desc["warnings"][0]["message"]
    # a chain without its root
    assert codes(describe(row(leaf.pem, [lower, upper]), now=NOW)) == ["chain_missing_root"]


def test_chain_must_end_in_exactly_one_root(pki, tree):
    other_root = pki.root("Other Root CA")
    desc = describe(row(tree.leaf.pem, [tree.inter, tree.root, other_root]), now=NOW)
    assert codes(desc) == ["chain_unrelated", "chain_multiple_roots"]
    assert "2 root certificates" in desc["warnings"][1]["message"]


def test_look_alike_issuer_is_not_taken_for_the_real_one(pki, tree):
    fake = pki.intermediate(pki.root(), "Test Intermediate CA")  # same name, other key
    desc = describe(row(tree.leaf.pem, [fake, tree.root]), now=NOW)
    assert codes(desc) == ["chain_missing_intermediate", "chain_unrelated"]


def test_expiry_warnings(tree):
    not_after = tree.leaf.cert.not_valid_after_utc
    assert codes(describe(row(tree.leaf.pem, [tree.inter, tree.root]), now=not_after - dt.timedelta(days=10))) \
        == ["expiring"]
    assert codes(describe(row(tree.leaf.pem, [tree.inter, tree.root]), now=not_after + dt.timedelta(seconds=1))) \
        == ["expired"]


def test_unreadable_row_does_not_break_the_listing():
    desc = describe(row("garbage"))
    assert desc["kind"] == "unreadable" and codes(desc) == ["unreadable"]
    assert "  Private key: yes" in summary_lines(desc)
