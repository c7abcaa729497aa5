"""The appliance process on its listeners: the built-in certificate is what
HTTPS presents, on every --listen address; plain HTTP gets no answer."""

import hashlib
import socket
import ssl

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization


@pytest.mark.req("OPS-02", "APPL-01")
def test_builtin_certificate_on_every_listener_and_no_plain_http(make_appliance):
    a = make_appliance(listen=["127.0.0.1:0", "127.0.0.2:0"])
    pem = (a.data / "builtin-cert.pem").read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert a.info["builtin_cert_sha256"].replace(":", "") == hashlib.sha256(der).hexdigest()
    for addr in a.info["listen"]:
        host, port = addr.rsplit(":", 1)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # we look at what is presented
        with socket.create_connection((host, int(port)), timeout=5) as s, ctx.wrap_socket(s) as t:
            assert t.getpeercert(binary_form=True) == der
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the HTTPS port is refused
            httpx.get(f"http://{addr}/health", timeout=5)
    with a.client(base=a.url_at(1)) as c:
        assert c.get("/health").status_code == 503  # no site yet
    assert a.stop() == 0


@pytest.mark.req("OPS-02")
def test_ipv6_addresses_are_bracketed_in_every_printed_or_built_url(make_appliance):
    from tests.helpers import first_site_login, ok

    a = make_appliance(listen=["[::1]:0"], site=True)
    port = a.info["listen"][0].rsplit(":", 1)[1]
    assert a.info["listen"] == [f"[::1]:{port}"] and a.url == f"https://[::1]:{port}"
    printed = a.log_path.read_text()
    assert f"/appliance  https://[::1]:{port}/appliance" in printed and f"https://[::1]:{port}/login" in printed
    assert "https://::1" not in printed
    with a.client() as c:
        h = first_site_login(c)
        dep = ok(c.post("/api/clients/deployments", headers=h, json={"kind": "jump", "target": None}), 201)
    assert dep["command"].startswith(f"tether-jump install --site [::1]:{port} --token "), dep["command"]
