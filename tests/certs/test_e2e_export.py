"""CERT-03 end to end: a chosen certificate exported as a passphrase-
protected .p12 over HTTPS (JSON API and HTML form) and by the CLI, read back
by the system openssl with and without the key and chain; then the
runbook's recovery path: the exported file imported on a replacement
appliance and presented there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.helpers import NEW_ADMIN_PASSWORD, first_admin_login, run_cli

from .e2e import TWO, by_name, der, live_pki, p12, presented_chain, upload

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")

PASS = "Export-passphrase-9"


@pytest.fixture(scope="module")
def live():
    return live_pki()


def openssl(path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "pkcs12", "-in", str(path), *args], capture_output=True, text=True, timeout=60)


def pem_blocks(text: str, kind: str) -> list[str]:
    return re.findall(rf"-----BEGIN {kind}-----.+?-----END {kind}-----", text, re.S)


def subjects(text: str) -> list[str]:
    return [x509.load_pem_x509_certificate(b.encode()).subject.rfc4514_string()
            for b in pem_blocks(text, "CERTIFICATE")]


def cli(a, *args, check=True):
    return run_cli("cert", *args, env={**a.cli_env(), "TETHER_PASSWORD": NEW_ADMIN_PASSWORD}, check=check)


@pytest.mark.req("CERT-03")
def test_export_over_https_is_read_by_openssl(appliance, live, tmp_path):
    with appliance.client() as c:
        h = first_admin_login(c)
        assert upload(c, h, p12(live.leaf, [live.inter, live.root]), "site").status_code == 201
        site = by_name(c, h, "site")
        url = f"/appliance/api/certificates/{site['id']}/export"
        r = c.post(url, headers=h, json={"passphrase": PASS})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/x-pkcs12"
        assert r.headers["content-disposition"] == 'attachment; filename="site.p12"'
        assert r.headers["cache-control"] == "no-store"
        full = tmp_path / "full.p12"
        full.write_bytes(r.content)

        info = openssl(full, "-info", "-passin", f"pass:{PASS}", "-nodes")
        assert info.returncode == 0, info.stderr
        assert "MAC: sha256" in info.stderr and "PBES2, PBKDF2, AES-256-CBC" in info.stderr
        plain = openssl(full, "-nodes", "-passin", f"pass:{PASS}")
        assert plain.returncode == 0, plain.stderr
        assert subjects(plain.stdout) == ["CN=support.example.com", "CN=Live Intermediate CA", "CN=Live Root CA"]
        [key_pem] = pem_blocks(plain.stdout, "PRIVATE KEY")
        key = serialization.load_pem_private_key(key_pem.encode(), None)
        assert key.private_numbers() == live.leaf.key.private_numbers()
        assert openssl(full, "-nodes", "-passin", "pass:not-the-passphrase").returncode != 0

        for options, want_key, want in [
            ({"include_key": False}, False, ["CN=support.example.com", "CN=Live Intermediate CA", "CN=Live Root CA"]),
            ({"include_chain": False}, True, ["CN=support.example.com"]),
            ({"include_certificate": False}, True, ["CN=Live Intermediate CA", "CN=Live Root CA"]),
        ]:
            r = c.post(url, headers=h, json={"passphrase": PASS, **options})
            assert r.status_code == 200, (options, r.text)
            part = tmp_path / "part.p12"
            part.write_bytes(r.content)
            out = openssl(part, "-nodes", "-passin", f"pass:{PASS}")
            assert out.returncode == 0, out.stderr
            assert subjects(out.stdout) == want, options
            assert bool(pem_blocks(out.stdout, "PRIVATE KEY")) is want_key, options

        # refusals: a short passphrase, nothing to export, a passphrase in the URL is not a route
        r = c.post(url, headers=h, json={"passphrase": "short"})
        assert r.status_code == 422 and r.json()["field"] == "passphrase"
        r = c.post(url, headers=h, json={"passphrase": PASS, "include_certificate": False, "include_key": False,
                                         "include_chain": False})
        assert r.status_code == 422
        assert c.post(url, headers=h).status_code == 422
        assert c.get(url + f"?passphrase={PASS}", headers=h).status_code == 405
        assert c.post("/appliance/api/certificates/999/export", headers=h, json={"passphrase": PASS}).status_code == 404
        audit = c.get("/appliance/api/audit", headers=h).json()
        exports = [e for e in audit if e["action"] == "cert.export"]
        assert len(exports) == 4 and exports[-1]["details"]["private_key"] is True
        assert PASS not in str(audit)
    assert PASS not in appliance.log_path.read_text()


@pytest.mark.req("CERT-03")
def test_export_from_the_html_form(appliance, live, tmp_path):
    with appliance.client() as c:
        h = first_admin_login(c)
        assert upload(c, h, p12(live.leaf, [live.inter, live.root]), "site").status_code == 201
        site = by_name(c, h, "site")
    with appliance.client() as c:
        page = c.get("/appliance/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert c.post("/appliance/login", data={"csrf_token": token, "username": "admin",
                                                "password": NEW_ADMIN_PASSWORD}).status_code == 303
        page = c.get("/appliance/certificates")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert f'action="/appliance/certificates/{site["id"]}/export"' in page.text
        r = c.post(f"/appliance/certificates/{site['id']}/export",
                   data={"csrf_token": csrf, "passphrase": PASS, "include_certificate": "on", "include_chain": "on"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-pkcs12"
        (tmp_path / "html.p12").write_bytes(r.content)
        out = openssl(tmp_path / "html.p12", "-nodes", "-passin", f"pass:{PASS}")
        assert out.returncode == 0 and len(subjects(out.stdout)) == 3
        assert not pem_blocks(out.stdout, "PRIVATE KEY")  # the key box was left unticked
        r = c.post(f"/appliance/certificates/{site['id']}/export", data={"csrf_token": csrf, "passphrase": "short"})
        assert r.status_code == 422 and "at least 8 characters" in r.text
        r = c.post(f"/appliance/certificates/{site['id']}/export", data={"csrf_token": "wrong", "passphrase": PASS})
        assert r.status_code == 403


@pytest.mark.req("CERT-03", "CERT-04", "CERT-06")
def test_cli_export_then_import_on_a_replacement_appliance(make_appliance, live, tmp_path):
    """The runbook (docs/operations.md): export with the CLI, check with openssl, import on a new
    appliance, assign, and the new appliance presents the original certificate and chain."""
    old = make_appliance()
    with old.client() as c:
        h = first_admin_login(c)
        assert upload(c, h, p12(live.leaf, [live.inter, live.root]), "site").status_code == 201
        site = by_name(c, h, "site")
    passfile = tmp_path / "site-p12.pass"
    passfile.write_text(PASS + "\n")
    kit = tmp_path / "site-kit.p12"
    out = cli(old, "export", "--id", str(site["id"]), "--out", str(kit), "--passphrase-file", str(passfile)).stdout
    assert f"exported to {kit}" in out and oct(kit.stat().st_mode & 0o777) == "0o600"
    info = openssl(kit, "-info", "-passin", f"file:{passfile}", "-noout")
    assert info.returncode == 0 and "MAC: sha256" in info.stderr and "PBES2, PBKDF2, AES-256-CBC" in info.stderr
    leaf = openssl(kit, "-passin", f"file:{passfile}", "-nokeys", "-clcerts")
    assert subjects(leaf.stdout) == ["CN=support.example.com"]
    nokey = tmp_path / "public.p12"
    cli(old, "export", "--id", str(site["id"]), "--out", str(nokey), "--passphrase-file", str(passfile),
        "--no-key", "--no-chain")
    pub = openssl(nokey, "-nodes", "-passin", f"pass:{PASS}")
    assert subjects(pub.stdout) == ["CN=support.example.com"] and not pem_blocks(pub.stdout, "PRIVATE KEY")

    new = make_appliance(listen=TWO)
    with new.client() as c:
        first_admin_login(c)
    got = cli(new, "import", "--file", str(kit), "--passphrase-file", str(passfile), "--name", "site", "--json")
    imported = json.loads(got.stdout)
    assert imported["fingerprint_sha256"] == site["fingerprint_sha256"] and imported["has_private_key"]
    assert imported["warnings"] == []
    cli(new, "assign", "--id", str(imported["id"]), "--address", "127.0.0.2")
    assert presented_chain(new.info["listen"][1]) == [der(live.leaf), der(live.inter), der(live.root)]
    listed = cli(new, "list").stdout
    assert f"SHA-256 fingerprint: {site['fingerprint_sha256']}" in listed and "Assigned to: 127.0.0.2" in listed
