"""CERT-06 end to end: one appliance listening on 127.0.0.1 and 127.0.0.2;
certificates assigned per address over HTTPS and by the CLI are presented
(leaf and chain) by the listener on that address at once, without a
restart, while a connection opened earlier keeps its certificate and keeps
working; assignments survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from tests.helpers import NEW_ADMIN_PASSWORD, admin_token, first_admin_login, run_cli

from .e2e import (TWO, OpenConnection, by_name, der, listing, live_pki, p12, presented_chain, presented_leaf,
                  sha256, upload, verified_handshake)


@pytest.fixture(scope="module")
def live():
    return live_pki()


@pytest.mark.req("CERT-06")
def test_assignment_switches_the_listener_without_restart(make_appliance, live):
    a = make_appliance(listen=TWO)
    one, two = a.info["listen"]
    builtin = der(Path(a.cert_path).read_text())
    with a.client() as c:
        h = first_admin_login(c)
        assert upload(c, h, p12(live.leaf, [live.inter, live.root]), "site").status_code == 201
        site = by_name(c, h, "site")
        r = c.post("/appliance/api/certificates/self-signed", headers=h,
                   json={"name": "temp", "fqdn": "temp.example.com", "key_type": "rsa-2048"})
        assert r.status_code == 201, r.text
        temp = r.json()
        assert presented_leaf(one) == presented_leaf(two) == builtin

        early = OpenConnection(two)  # opened before any change
        try:
            assert early.leaf == builtin and early.get().startswith("HTTP/1.1")
            r = c.put("/appliance/api/certificate-assignments/127.0.0.2", headers=h, json={"id": site["id"]})
            assert r.status_code == 200, r.text
            assert r.json()["assignments"] == {"127.0.0.2": site["id"]}
            # the address presents the CA-signed leaf with its chain; a client trusting only the root accepts it
            assert presented_chain(two) == [der(live.leaf), der(live.inter), der(live.root)]
            assert verified_handshake(two, live.root) == der(live.leaf)
            assert presented_leaf(one) == builtin  # the other address is untouched
            # the connection opened before keeps the certificate it was given, and still works
            assert early.sock.getpeercert(binary_form=True) == builtin
            assert early.get().startswith("HTTP/1.1")

            # reassign: an RSA self-signed certificate replaces the ECDSA one entirely
            run_cli("cert", "assign", "--id", str(temp["id"]), "--address", "127.0.0.2",
                    env={**a.cli_env(), "TETHER_PASSWORD": NEW_ADMIN_PASSWORD}, check=True)
            leaf_two = presented_leaf(two)
            assert presented_chain(two) == [leaf_two]  # self-signed: no chain
            assert x509_subject(leaf_two) == "CN=temp.example.com" and sha256(leaf_two) == temp["fingerprint_sha256"]
            assert x509.load_der_x509_certificate(leaf_two).public_key().key_size == 2048  # RSA, not the old ECDSA
            assert early.get().startswith("HTTP/1.1")
        finally:
            early.close()

        # one certificate on several addresses; the listing shows where each is presented
        assert c.put("/appliance/api/certificate-assignments/127.0.0.1", headers=h,
                     json={"id": site["id"]}).status_code == 200
        assert presented_leaf(one) == der(live.leaf)
        data = listing(c, h)
        assert data["assignments"] == {"127.0.0.1": site["id"], "127.0.0.2": temp["id"]}
        assert by_name(c, h, "site")["addresses"] == ["127.0.0.1"]
        assert by_name(c, h, "temp")["addresses"] == ["127.0.0.2"]
        assert [w["code"] for w in by_name(c, h, "temp")["warnings"]] == ["self_signed_in_use"]
        audit = c.get("/appliance/api/audit", headers=h).json()
        assert [e["target"] for e in audit if e["action"] == "cert.assign"][:3] == [
            "127.0.0.1", "127.0.0.2", "127.0.0.2"]

    # assignments persist and are applied at startup
    a.stop()
    a.start()
    one, two = a.info["listen"]
    assert presented_leaf(one) == der(live.leaf)
    assert x509_subject(presented_leaf(two)) == "CN=temp.example.com"


def x509_subject(leaf: bytes) -> str:
    return x509.load_der_x509_certificate(leaf).subject.rfc4514_string()


@pytest.mark.req("CERT-06")
def test_assignment_rules(make_appliance, live):
    a = make_appliance(listen=TWO)
    one, two = a.info["listen"]
    builtin = der(Path(a.cert_path).read_text())
    with a.client() as c:
        h = first_admin_login(c)
        assert upload(c, h, p12(live.leaf, [live.inter, live.root]), "site").status_code == 201
        assert upload(c, h, p12(live.leaf, [live.inter], key=False), "no-key").status_code == 201
        site, nokey = by_name(c, h, "site"), by_name(c, h, "no-key")
        builtin_id = next(x["id"] for x in listing(c, h)["certificates"] if x["builtin"])
        assert nokey["has_private_key"] is False
        before = listing(c, h)

        r = c.put("/appliance/api/certificate-assignments/127.0.0.2", headers=h, json={"id": nokey["id"]})
        assert r.status_code == 422 and r.json()["field"] == "id" and "no private key" in r.json()["message"]
        r = c.put("/appliance/api/certificate-assignments/192.0.2.99", headers=h, json={"id": site["id"]})
        assert r.status_code == 422 and r.json()["field"] == "address" and "127.0.0.2" in r.json()["hint"]
        r = c.put("/appliance/api/certificate-assignments/not-an-ip", headers=h, json={"id": site["id"]})
        assert r.status_code == 422 and r.json()["field"] == "address"
        r = c.put("/appliance/api/certificate-assignments/127.0.0.2", headers=h, json={"id": 999})
        assert r.status_code == 404
        assert listing(c, h) == before and presented_leaf(two) == builtin

        assert c.put("/appliance/api/certificate-assignments/127.0.0.2", headers=h,
                     json={"id": site["id"]}).status_code == 200
        r = c.delete(f"/appliance/api/certificates/{site['id']}", headers=h)
        assert r.status_code == 409 and "127.0.0.2" in r.json()["message"] and r.json()["hint"]
        r = c.delete(f"/appliance/api/certificates/{builtin_id}", headers=h)
        assert r.status_code == 409
        # assigning the built-in certificate undoes the assignment; then deletion is allowed
        assert c.put("/appliance/api/certificate-assignments/127.0.0.2", headers=h,
                     json={"id": builtin_id}).status_code == 200
        assert presented_leaf(two) == builtin and listing(c, h)["assignments"] == {}
        assert c.delete(f"/appliance/api/certificates/{site['id']}", headers=h).status_code == 200
        assert "site" not in [x["name"] for x in listing(c, h)["certificates"]]

        # an address recorded under Networking (no listener here) can be assigned too
        net = c.get("/appliance/api/networking", headers=h).json()
        net["interfaces"] = [{"name": "eth0", "addresses": [{"address": "192.0.2.10", "netmask": "24"}]}]
        assert c.put("/appliance/api/networking", headers=h, json=net).status_code == 200
        assert "192.0.2.10" in listing(c, h)["addresses"]
        # unauthenticated and wrong-CSRF cookie requests are refused
        assert c.get("/appliance/api/certificates").status_code == 401
    with a.client() as c2:
        tok = admin_token(c2)
        assert c2.get("/appliance/api/certificates", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
