"""CERT-01, 02, 04, 05 end to end against a running appliance: the built-in
certificate, self-signed generation, key + CSR and the CA's answer, .p12
import refusals, and the listing with its warnings, over HTTPS (JSON and
HTML) and through the `tether cert` CLI."""

from __future__ import annotations

import html
import json
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12 as cpk

from tests.helpers import NEW_ADMIN_PASSWORD, admin_token, first_admin_login, run_cli

from .e2e import (FAST, P12_PASS, TWO, der, listing, live_pki, p12, upload, verified_handshake,
                  write_secret)


@pytest.fixture(scope="module")
def live():
    return live_pki()


def cli(a, *args, check=True):
    return run_cli("cert", *args, env={**a.cli_env(), "TETHER_PASSWORD": NEW_ADMIN_PASSWORD}, check=check)


def cli_json(a, *args):
    return json.loads(cli(a, *args, "--json").stdout)


@pytest.mark.req("CERT-01")
def test_builtin_certificate_is_listed_and_never_exported(appliance, tmp_path):
    with appliance.client() as c:
        h = first_admin_login(c)
        certs = listing(c, h)["certificates"]
        assert len(certs) == 1
        b = certs[0]
        assert (b["name"], b["builtin"], b["kind"], b["has_private_key"]) == (
            "Built-in certificate", True, "self-signed", True)
        assert b["fingerprint_sha256"] == appliance.info["builtin_cert_sha256"].upper()
        assert b["addresses"] == ["127.0.0.1"]  # presented by default on every listener
        r = c.post(f"/appliance/api/certificates/{b['id']}/export", headers=h, json={"passphrase": "long enough 1"})
        assert r.status_code == 422 and "built-in certificate cannot be exported" in r.json()["message"]
        assert r.headers["content-type"].startswith("application/json")
        r = c.post(f"/appliance/api/certificates/{b['id']}/export", headers=h,
                   json={"passphrase": "long enough 1", "include_key": False})
        assert r.status_code == 422  # not even the public part
        assert c.delete(f"/appliance/api/certificates/{b['id']}", headers=h).status_code == 409
    cp = cli(appliance, "export", "--id", str(b["id"]), "--out", str(tmp_path / "b.p12"), "--passphrase-file",
             str(write_secret(tmp_path / "pass", "long enough 1")), check=False)
    assert cp.returncode == 2 and "built-in certificate cannot be exported" in cp.stderr
    assert not (tmp_path / "b.p12").exists()
    text = cli(appliance, "list").stdout
    assert "Built-in certificate (id 1): self-signed, built-in" in text and "Private key: yes" in text


@pytest.mark.req("CERT-02", "CERT-05")
def test_generate_self_signed_for_the_fqdn_with_alternative_names(appliance):
    with appliance.client() as c:
        h = first_admin_login(c)
        net = c.get("/appliance/api/networking", headers=h).json()
        net["hostname"] = "support.example.com"
        assert c.put("/appliance/api/networking", headers=h, json=net).status_code == 200
        r = c.post("/appliance/api/certificates/self-signed", headers=h,
                   json={"name": "temp", "alt_names": ["www.example.com", "192.0.2.10"], "days": 90})
        assert r.status_code == 201, r.text
        d = r.json()
        assert d["kind"] == "self-signed" and d["issued_to"] == d["issued_by"] == "support.example.com"
        assert d["alt_names"] == ["support.example.com", "www.example.com", "192.0.2.10"]
        assert d["has_private_key"] and d["warnings"] == [] and d["key"] == "ECDSA P-256"
        r = c.post("/appliance/api/certificates/self-signed", headers=h, json={"name": "temp"})
        assert r.status_code == 409 and r.json()["field"] == "name"
        r = c.post("/appliance/api/certificates/self-signed", headers=h, json={"name": "x", "fqdn": "bad_host!"})
        assert r.status_code == 422 and r.json()["field"] == "fqdn"
        r = c.post("/appliance/api/certificates/self-signed", headers=h,
                   json={"name": "x", "fqdn": "a.example.com", "alt_names": ["ok.example.com", "no way"]})
        assert r.status_code == 422 and r.json()["field"] == "alt_names.1"
    d2 = cli_json(appliance, "generate", "--name", "rsa", "--fqdn", "rsa.example.com", "--alt-name", "10.0.0.5",
                  "--key-type", "rsa-2048")
    assert d2["key"] == "RSA 2048" and d2["alt_names"] == ["rsa.example.com", "10.0.0.5"]


@pytest.mark.req("CERT-02", "CERT-05")
def test_csr_then_the_cas_answer_with_its_chain(make_appliance, live, tmp_path):
    a = make_appliance(listen=TWO)
    csr_file = tmp_path / "site.csr"
    with a.client() as c:
        h = first_admin_login(c)
        req = cli_json(a, "csr", "--name", "site", "--fqdn", "support.example.com", "--alt-name", "127.0.0.2",
                       "--organization", "Example Ltd", "--out", str(csr_file))
        csr = x509.load_pem_x509_csr(csr_file.read_bytes())
        assert csr.is_signature_valid and "CN=support.example.com" in csr.subject.rfc4514_string()
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(n.value) for n in san] == ["support.example.com", "127.0.0.2"]
        assert oct(csr_file.stat().st_mode & 0o777) == "0o600"
        r = c.get(f"/appliance/api/certificate-requests/{req['id']}/csr", headers=h)
        assert r.status_code == 200 and r.content == csr_file.read_bytes()
        assert r.headers["content-type"] == "application/pkcs10"
        assert "attachment" in r.headers["content-disposition"]
        assert [q["name"] for q in listing(c, h)["requests"]] == ["site"]

        # an answer for another key is refused and changes nothing
        before = listing(c, h)
        stranger = live.pki.leaf(live.inter, "support.example.com")
        r = c.post("/appliance/api/certificate-requests/answer", headers=h,
                   json={"certificate": stranger.pem, "chain": live.inter.pem + live.root.pem})
        assert r.status_code == 400 and "matches no pending certificate request" in r.json()["message"]
        r = c.post("/appliance/api/certificate-requests/answer", headers=h, json={"certificate": "garbage"})
        assert r.status_code == 422 and r.json()["field"] == "certificate"
        assert listing(c, h) == before

        # the CA's answer (leaf in one file, chain in another, in any order) by the CLI
        signed = live.pki.sign_csr(csr_file.read_text(), live.inter)
        (tmp_path / "answer.pem").write_bytes(signed.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "chain.pem").write_text(live.root.pem + live.inter.pem)
        d = cli_json(a, "install-answer", "--file", str(tmp_path / "answer.pem"), "--chain",
                     str(tmp_path / "chain.pem"))
        assert (d["name"], d["kind"], d["has_private_key"], d["warnings"]) == ("site", "ca-signed", True, [])
        assert [x["issued_to"] for x in d["chain"]] == ["Live Intermediate CA", "Live Root CA"]
        assert d["issued_by"] == "Live Intermediate CA"
        assert listing(c, h)["requests"] == []
        # the answer cannot be installed twice: its request is gone
        r = c.post("/appliance/api/certificate-requests/answer", headers=h,
                   json={"certificate": (tmp_path / "answer.pem").read_text()})
        assert r.status_code == 400
        # and it works on a listener: a client trusting only the root accepts it
        assert c.put("/appliance/api/certificate-assignments/127.0.0.2", headers=h,
                     json={"id": d["id"]}).status_code == 200
        assert verified_handshake(a.info["listen"][1], live.root) == der(signed.public_bytes(
            serialization.Encoding.PEM).decode())
        actions = [e["action"] for e in c.get("/appliance/api/audit", headers=h).json()]
        assert {"cert.request", "cert.install_answer", "cert.assign"} <= set(actions)


def _enc():
    return (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(FAST)
            .key_cert_algorithm(cpk.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
            .build(P12_PASS.encode()))


@pytest.mark.req("CERT-04")
def test_bad_p12_files_are_refused_and_change_nothing(appliance, live, tmp_path):
    good = p12(live.leaf, [live.inter, live.root])
    other_key = ec.generate_private_key(ec.SECP256R1())
    cases = [
        (good, "wrong password", 400, "password is wrong"),
        (good[:200], P12_PASS, 400, "not a valid PKCS#12 file"),
        (good[:-1], P12_PASS, 400, "not a valid PKCS#12 file"),
        (b"this is not a p12 file at all", P12_PASS, 400, "not a valid PKCS#12 file"),
        (cpk.serialize_key_and_certificates(b"k", live.leaf.key, None, None, _enc()), P12_PASS, 422,
         "holds no certificate"),
        (cpk.serialize_key_and_certificates(b"k", other_key, None, [live.leaf.cert], _enc()), P12_PASS, 400,
         "does not match its certificate"),
    ]
    with appliance.client() as c:
        h = first_admin_login(c)
        before = listing(c, h)
        for data, password, status, message in cases:
            r = upload(c, h, data, "imported", password)
            assert r.status_code == status, (message, r.text)
            body = r.json()
            assert message in body["message"] and body["error"] in ("integrity", "invalid"), body
        r = c.post("/appliance/api/certificates/import", headers=h, files={"file": ("x.p12", b"")},
                   data={"password": P12_PASS, "name": "imported"})
        assert r.status_code == 422 and r.json()["field"] == "file"
        r = c.post("/appliance/api/certificates/import", headers=h, files={"file": ("x.p12", good)},
                   data={"password": P12_PASS})
        assert r.status_code == 422 and r.json()["field"] == "name"
        assert listing(c, h) == before
    cp = cli(appliance, "import", "--file", str(_write(tmp_path / "good.p12", good)), "--passphrase-file",
             str(write_secret(tmp_path / "wrong", "not the password")), "--name", "imported", check=False)
    assert cp.returncode == 7 and "password is wrong" in cp.stderr and "Try:" in cp.stderr
    with appliance.client() as c:
        assert listing(c, {"Authorization": "Bearer " + admin_token(c)}) == before
    out = cli(appliance, "import", "--file", str(tmp_path / "good.p12"), "--passphrase-file",
              str(write_secret(tmp_path / "right", P12_PASS)), "--name", "imported").stdout
    assert re.search(r"Imported certificate id \d+", out) and "Private key: yes" in out


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.req("CERT-05")
def test_listing_classifies_and_warns(make_appliance, live):
    other_root = live.pki.root("Other Root CA")
    a = make_appliance(listen=TWO)
    with a.client() as c:
        h = first_admin_login(c)
        files = {
            "complete": p12(live.leaf, [live.inter, live.root]),
            "no-intermediate": p12(live.leaf, [live.root]),
            "no-root": p12(live.leaf, [live.inter]),
            "two-roots": p12(live.leaf, [live.inter, live.root, other_root]),
        }
        for name, data in files.items():
            assert upload(c, h, data, name).status_code == 201, name
        ca_only = cpk.serialize_key_and_certificates(None, None, None, [live.root.cert, live.inter.cert], _enc())
        assert upload(c, h, ca_only, "intermediate").status_code == 201
        root_only = cpk.serialize_key_and_certificates(None, None, None, [live.root.cert], _enc())
        assert upload(c, h, root_only, "root").status_code == 201
        r = c.post("/appliance/api/certificates/self-signed", headers=h, json={"name": "temp", "fqdn": "t.example.com"})
        temp = r.json()
        assert c.put("/appliance/api/certificate-assignments/127.0.0.2", headers=h,
                     json={"id": temp["id"]}).status_code == 200
        certs = {x["name"]: x for x in listing(c, h)["certificates"]}

        full = certs["complete"]
        leaf = live.leaf.cert
        assert full["kind"] == "ca-signed" and full["warnings"] == []
        assert (full["issued_to"], full["issued_by"]) == ("support.example.com", "Live Intermediate CA")
        assert full["alt_names"] == ["support.example.com", "127.0.0.1", "127.0.0.2"]
        assert full["fingerprint_sha256"] == leaf.fingerprint(hashes.SHA256()).hex(":").upper()
        assert full["not_after"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert full["not_before"] == leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert full["has_private_key"] is True
        codes = {n: [w["code"] for w in certs[n]["warnings"]] for n in certs}
        assert codes["no-intermediate"] == ["chain_missing_intermediate"]
        assert codes["no-root"] == ["chain_missing_root"]
        assert "chain_multiple_roots" in codes["two-roots"]
        assert codes["temp"] == ["self_signed_in_use"]
        assert codes["Built-in certificate"] == ["self_signed_in_use"]  # still on 127.0.0.1
        assert (certs["intermediate"]["kind"], certs["intermediate"]["has_private_key"]) == ("intermediate", False)
        assert certs["root"]["kind"] == "root"

        page = c.get("/appliance/certificates", headers={"Cookie": ""}, follow_redirects=False)
        assert page.status_code == 303  # the HTML page needs the session cookie
    # the HTML listing and the CLI show the same facts
    cp = cli(a, "list")
    assert "Private key: no" in cp.stdout and "Private key: yes" in cp.stdout
    assert "Warning: the chain does not end in a root certificate" in cp.stdout
    assert "Issued By: Live Intermediate CA" in cp.stdout
    html = _html_listing(a)
    section = html.split('data-name="no-intermediate"', 1)[1].split("</section>", 1)[0]
    assert '<th>Private key</th><td class="private-key">yes</td>' in section and "Private key: " not in section
    assert "Issued To" in section and "support.example.com" in section
    assert 'data-code="chain_missing_intermediate"' in section
    root_section = html.split('data-name="root"', 1)[1].split("</section>", 1)[0]
    assert '<td class="private-key">no</td>' in root_section and "(root," in root_section


def _html_listing(a) -> str:
    """Log in through the HTML form (cookie session) and fetch the Certificates page."""
    with a.client() as c:
        page = c.get("/appliance/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = c.post("/appliance/login", data={"csrf_token": token, "username": "admin",
                                             "password": NEW_ADMIN_PASSWORD})
        assert r.status_code == 303, r.text
        page = c.get("/appliance/certificates")
        assert page.status_code == 200 and "Certificates" in page.text
        return page.text


@pytest.mark.req("CERT-02")
def test_html_forms_generate_request_answer_and_delete(make_appliance, live):
    """The /appliance Certificates forms (cookie session + CSRF): self-signed, key + CSR with its
    download, the CA's answer as a file upload, refusals shown on the page, deletions."""
    a = make_appliance(listen=TWO)
    with a.client() as c:
        first_admin_login(c)
    with a.client() as c:
        page = c.get("/appliance/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert c.post("/appliance/login", data={"csrf_token": token, "username": "admin",
                                                "password": NEW_ADMIN_PASSWORD}).status_code == 303
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/appliance/certificates").text).group(1)

        r = c.post("/appliance/certificates/generate", data={"csrf_token": csrf, "name": "temp",
                                                             "fqdn": "temp.example.com", "alt_names": "10.1.1.1\n",
                                                             "key_type": "ecdsa-p256", "days": "90"})
        assert r.status_code == 200 and "Self-signed certificate 'temp' generated" in _t(r)
        assert 'data-name="temp"' in _t(r) and "temp.example.com, 10.1.1.1" in _t(r)
        r = c.post("/appliance/certificates/generate", data={"csrf_token": csrf, "name": "temp", "days": "90"})
        assert r.status_code == 409 and "already exists" in _t(r)

        r = c.post("/appliance/certificates/requests", data={"csrf_token": csrf, "name": "site",
                                                             "fqdn": "support.example.com", "key_type": "ecdsa-p256"})
        assert r.status_code == 200 and "-----BEGIN CERTIFICATE REQUEST-----" in _t(r)
        href = re.search(r'id="csr-download" href="([^"]+)"', _t(r)).group(1)
        csr_pem = c.get(href)
        assert csr_pem.status_code == 200 and csr_pem.headers["content-type"] == "application/pkcs10"
        assert 'id="pending-requests"' in _t(r)

        stranger = live.pki.leaf(live.inter, "support.example.com")
        r = c.post("/appliance/certificates/answer", data={"csrf_token": csrf},
                   files={"file": ("answer.pem", stranger.pem.encode())})
        assert r.status_code == 400 and "matches no pending certificate request" in _t(r)
        signed = live.pki.sign_csr(csr_pem.text, live.inter).public_bytes(serialization.Encoding.PEM)
        r = c.post("/appliance/certificates/answer", data={"csrf_token": csrf},
                   files={"file": ("answer.pem", signed),
                          "chain_file": ("chain.pem", (live.inter.pem + live.root.pem).encode())})
        assert r.status_code == 200 and "Certificate 'site' installed" in _t(r)
        assert 'id="pending-requests"' not in _t(r)
        site_id = int(re.search(r'id="cert-(\d+)" data-name="site"', _t(r)).group(1))

        r = c.post("/appliance/certificates/assign", data={"csrf_token": csrf, "id": str(site_id),
                                                           "address": "127.0.0.2"})
        assert r.status_code == 200 and "127.0.0.2 now presents 'site'" in _t(r)
        assert verified_handshake(a.info["listen"][1], live.root) == der(signed.decode())
        r = c.post(f"/appliance/certificates/{site_id}/delete", data={"csrf_token": csrf})
        assert r.status_code == 409 and "is assigned to 127.0.0.2" in _t(r)
        temp_id = int(re.search(r'id="cert-(\d+)" data-name="temp"', _t(r)).group(1))
        r = c.post(f"/appliance/certificates/{temp_id}/delete", data={"csrf_token": csrf})
        assert r.status_code == 200 and 'data-name="temp"' not in _t(r)
        r = c.post("/appliance/certificates/requests",
                   data={"csrf_token": csrf, "name": "später \"2\"", "fqdn": "later.example.com"})
        req_id = re.search(r"/appliance/certificates/requests/(\d+)/csr", _t(r)).group(1)
        d = c.get(f"/appliance/certificates/requests/{req_id}/csr")  # a non-ASCII name makes a safe file name
        assert d.status_code == 200 and d.headers["content-disposition"] == 'attachment; filename="sp_ter_2.csr"'
        r = c.post(f"/appliance/certificates/requests/{req_id}/delete", data={"csrf_token": csrf})
        assert r.status_code == 200 and "Request" in _t(r) and 'id="pending-requests"' not in _t(r)
        r = c.post("/appliance/certificates/assign", data={"csrf_token": "forged", "id": str(site_id),
                                                           "address": "127.0.0.1"})
        assert r.status_code == 403


def _t(r) -> str:
    return html.unescape(r.text)
