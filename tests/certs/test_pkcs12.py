"""PKCS#12 export (read back by the system openssl) and import (pkcs12.py)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12 as cpk
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.certs.builtin import BUILTIN_NAME, generate_builtin
from tether.certs.generate import generate_self_signed, load_pem_certificates
from tether.certs import pkcs12 as p12mod
from tether.certs.pkcs12 import (KDF_ROUNDS, build_p12, export_certificate, import_certificate, import_p12,
                                  scan_der)
from tether.core.errors import Conflict, IntegrityError, Invalid

PASS = "correct horse battery"
FAST = 1000  # KDF rounds where the test is not about the default

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")


@pytest.fixture
def site(store, tree):
    return store.add("site", tree.leaf.pem, tree.leaf.key_der, tree.inter.pem + tree.root.pem)


def openssl(path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "pkcs12", "-in", str(path), *args], capture_output=True, text=True,
                          timeout=30)


def subjects(pem_text: str) -> list[str]:
    return re.findall(r"^subject=(.*)$", pem_text, re.M)


def test_full_export_is_read_by_openssl_with_modern_algorithms(store, site, tmp_path):
    p12 = tmp_path / "site.p12"
    p12.write_bytes(export_certificate(store, site, PASS))
    info = openssl(p12, "-info", "-passin", f"pass:{PASS}", "-nodes")
    assert info.returncode == 0, info.stderr
    assert "MAC: sha256" in info.stderr and "MAC length: 32" in info.stderr
    algos = re.findall(r"(?:PKCS7 Encrypted data|Shrouded Keybag): (.*)", info.stderr)
    assert len(algos) == 2
    assert all(a == f"PBES2, PBKDF2, AES-256-CBC, Iteration {KDF_ROUNDS}, PRF hmacWithSHA256" for a in algos)
    assert info.stderr.count("Certificate bag") == 3
    plain = openssl(p12, "-nodes", "-passin", f"pass:{PASS}")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.count("-----BEGIN PRIVATE KEY-----") == 1
    assert plain.stdout.count("-----BEGIN CERTIFICATE-----") == 3
    assert subjects(plain.stdout) == ["CN = support.example.com", "CN = Test Intermediate CA", "CN = Test Root CA"]
    assert "friendlyName: site" in plain.stdout
    assert openssl(p12, "-nodes", "-passin", "pass:wrong").returncode != 0


@pytest.mark.parametrize("options, key, certs", [
    (dict(include_key=False), 0, ["CN = support.example.com", "CN = Test Intermediate CA", "CN = Test Root CA"]),
    (dict(include_chain=False), 1, ["CN = support.example.com"]),
    (dict(include_chain=False, include_key=False), 0, ["CN = support.example.com"]),
    (dict(include_cert=False, include_chain=False), 1, []),
    (dict(include_cert=False, include_key=False), 0, ["CN = Test Intermediate CA", "CN = Test Root CA"]),
])
def test_export_options(store, site, tmp_path, options, key, certs):
    p12 = tmp_path / "part.p12"
    p12.write_bytes(export_certificate(store, site, PASS, kdf_rounds=FAST, **options))
    out = openssl(p12, "-nodes", "-passin", f"pass:{PASS}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("-----BEGIN PRIVATE KEY-----") == key
    assert subjects(out.stdout) == certs


def test_builtin_certificate_is_never_exported(store):
    cert_pem, key_der = generate_builtin("SN-1")
    cert_id = store.add(BUILTIN_NAME, cert_pem, key_der, builtin=True)
    with pytest.raises(Invalid, match="built-in certificate cannot be exported"):
        export_certificate(store, cert_id, PASS, include_key=False)


def test_export_refusals(store, tree, site):
    no_key = store.add("no key", tree.leaf.pem, None)
    with pytest.raises(Invalid, match="no private key"):
        export_certificate(store, no_key, PASS)
    with pytest.raises(Invalid, match="no chain"):
        export_certificate(store, no_key, PASS, include_cert=False, include_key=False)
    with pytest.raises(Invalid, match="at least 8"):
        export_certificate(store, site, "short")
    with pytest.raises(Invalid, match="nothing to export"):
        export_certificate(store, site, PASS, include_cert=False, include_key=False, include_chain=False)


def test_round_trip(store, site, tree):
    data = export_certificate(store, site, PASS, kdf_rounds=FAST)
    got = import_p12(data, PASS)
    assert got.cert_pem == tree.leaf.pem and got.key_der == tree.leaf.key_der
    assert got.chain_pem == tree.inter.pem + tree.root.pem and got.friendly_name == "site"
    new_id = import_certificate(store, data, PASS, "restored")
    row = store.get(new_id)
    assert store.private_key_der(row) == tree.leaf.key_der and row["chain_pem"] == got.chain_pem


def test_import_of_an_openssl_made_file(tmp_path, tree):
    (tmp_path / "leaf.pem").write_text(tree.leaf.pem)
    (tmp_path / "chain.pem").write_text(tree.root.pem + tree.inter.pem)
    (tmp_path / "key.pem").write_bytes(tree.leaf.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    out = tmp_path / "ext.p12"
    subprocess.run(["openssl", "pkcs12", "-export", "-in", tmp_path / "leaf.pem", "-inkey", tmp_path / "key.pem",
                    "-certfile", tmp_path / "chain.pem", "-out", out, "-passout", f"pass:{PASS}"],
                   check=True, capture_output=True, timeout=30)
    got = import_p12(out.read_bytes(), PASS)
    assert got.cert_pem == tree.leaf.pem and got.key_der == tree.leaf.key_der
    assert got.chain_pem == tree.inter.pem + tree.root.pem


@pytest.fixture(scope="module")
def good_p12(tree) -> bytes:
    return build_p12(tree.leaf.pem, tree.inter.pem + tree.root.pem, tree.leaf.key_der, PASS, kdf_rounds=FAST)


def _enc(rounds: int = FAST):
    return (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(rounds)
            .key_cert_algorithm(cpk.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256()).build(PASS.encode()))


def test_wrong_password_is_refused(good_p12):
    with pytest.raises(IntegrityError, match="password is wrong"):
        import_p12(good_p12, "not the password")


@pytest.mark.parametrize("cut", [1, 2, 10, 100, 300, -1, -40])
def test_truncated_file_is_refused(good_p12, cut):
    with pytest.raises(IntegrityError, match="not a valid PKCS#12 file"):
        import_p12(good_p12[:cut], PASS)


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x30\x03\x02\x01\x02", b"-----BEGIN CERTIFICATE-----"])
def test_malformed_file_is_refused(data):
    with pytest.raises(IntegrityError):
        import_p12(data, PASS)


def test_file_without_certificate_is_refused(tree):
    data = cpk.serialize_key_and_certificates(b"k", tree.leaf.key, None, None, _enc())
    with pytest.raises(Invalid, match="holds no certificate"):
        import_p12(data, PASS)


def test_key_not_matching_its_certificate_is_refused(tree):
    other = generate_self_signed("other.example.com")
    cert = load_pem_certificates(other.cert_pem)[0]
    data = cpk.serialize_key_and_certificates(b"k", tree.leaf.key, None, [cert], _enc())
    with pytest.raises(IntegrityError, match="does not match its certificate"):
        import_p12(data, PASS)


def test_iteration_counts_are_seen_before_decrypting(tree, monkeypatch):
    data = cpk.serialize_key_and_certificates(b"k", tree.leaf.key, tree.leaf.cert, None, _enc(5000))
    assert scan_der(data) == 5000  # the PBKDF2 count; the MAC's own count is 2048
    monkeypatch.setattr(p12mod, "MAX_KDF_ROUNDS", 4999)
    with pytest.raises(Invalid, match="5000 key-derivation rounds"):
        import_p12(data, PASS)


def test_oversized_file_is_refused():
    with pytest.raises(Invalid, match="larger than 1 MiB"):
        import_p12(b"\x30" * (2 << 20), PASS)


def test_failed_import_changes_nothing(store, site, good_p12):
    before = store.list()
    with pytest.raises(IntegrityError):
        import_certificate(store, good_p12, "wrong password!", "new")
    with pytest.raises(Conflict):
        import_certificate(store, good_p12, PASS, "site")
    assert store.list() == before


def test_ca_only_file_imports_without_key(tree):
    data = cpk.serialize_key_and_certificates(None, None, None, [tree.root.cert, tree.inter.cert], _enc())
    got = import_p12(data, PASS)
    assert got.key_der is None and got.cert_pem == tree.inter.pem and got.chain_pem == tree.root.pem


@settings(max_examples=150, deadline=None, database=None)
@given(st.data())
def test_damaged_files_never_crash(tree, data):
    original = build_p12(tree.leaf.pem, tree.root.pem, tree.leaf.key_der, PASS, kdf_rounds=FAST)
    blob = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    try:
        got = import_p12(bytes(blob), PASS)
    except (IntegrityError, Invalid) as exc:  # a refusal that says what is wrong; any other error fails
        assert exc.message
    else:  # damage the file's MAC does not cover (or none at all) changes nothing that is imported
        assert got == import_p12(original, PASS)
