"""The CLI's TLS trust against an appliance presenting the site's own
CA-signed certificate (chain: intermediate and root), on an IP address while
the certificate names the host (issue 17 item 2): ``--pin-cert`` of that
exact certificate works whatever the chain, a different certificate of the
same CA is refused; ``--cacert`` on the address is refused with a hint, and
works with ``tether --server-name HOST``."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.certs.conftest import Pki
from tests.certs.e2e import p12
from tests.helpers import NEW_ADMIN_PASSWORD, first_admin_login, free_port, ok, run_cli

HOST = "support.example.com"
ADDR = "127.0.31.4"


@pytest.mark.req("OPS-02")
def test_pin_and_cacert_with_the_sites_ca_signed_certificate(make_appliance, tmp_path):
    port = free_port(ADDR)
    a = make_appliance(listen=[f"{ADDR}:{port}"])
    c = a.client()
    ah = first_admin_login(c)
    pki = Pki(start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    root = pki.root("Trust Root CA")
    inter = pki.intermediate(root, "Trust Intermediate CA")
    leaf, other = pki.leaf(inter, fqdn=HOST), pki.leaf(inter, fqdn=HOST)
    cert = ok(c.post("/appliance/api/certificates/import", headers=ah,
                     files={"file": ("site.p12", p12(leaf, [inter, root]))},
                     data={"password": "import-pass-1", "name": "site"}), 201)
    ok(c.put(f"/appliance/api/certificate-assignments/{ADDR}", headers=ah, json={"id": cert["id"]}))
    c.close()
    files = {}
    for name, pem in (("leaf", leaf.pem), ("other", other.pem), ("root", root.pem)):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text(pem)
    url = f"https://{ADDR}:{port}"
    env = {"TETHER_PASSWORD": NEW_ADMIN_PASSWORD}

    # pinning exactly the certificate the address presents: trusted whatever its chain
    r = run_cli("cert", "list", "--url", url, "--pin-cert", str(files["leaf"]), env=env)
    assert r.returncode == 0 and "site (id" in r.stdout, r.stderr
    # another certificate of the same CA is not the pinned one
    r = run_cli("cert", "list", "--url", url, "--pin-cert", str(files["other"]), env=env)
    assert r.returncode == 8 and "CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr
    # the CA on the address: the certificate names the host, so the name to check must be given
    r = run_cli("cert", "list", "--url", url, "--cacert", str(files["root"]), env=env)
    assert r.returncode == 8 and "--server-name" in r.stderr and ADDR in r.stderr, r.stderr
    r = run_cli("--server-name", HOST, "cert", "list", "--url", url, "--cacert", str(files["root"]), env=env)
    assert r.returncode == 0 and "site (id" in r.stdout, r.stderr
    r = run_cli("cert", "list", "--url", url, "--cacert", str(files["root"]),
                env={**env, "TETHER_SERVER_NAME": "other.example.com"})
    assert r.returncode == 8 and "CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr
