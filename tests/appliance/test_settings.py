"""APPL-01..03 through /appliance/api and real TLS/UDP/TCP: Status > Basics,
Networking and Security settings, validated, stored and enforced."""

import json
import socket
import ssl
import threading

import httpx
import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, first_admin_login, pinned_context, wait_for

NETWORKING = {
    "hostname": "support.example.com",
    "interfaces": [{"name": "eth0", "addresses": [{"address": "192.0.2.10", "netmask": "255.255.255.0"},
                                                  {"address": "192.0.2.11", "netmask": "24"}]},
                   {"name": "eth1", "addresses": [{"address": "2001:db8::10", "netmask": "64"}]}],
    "default_gateway": "192.0.2.1",
    "dns_servers": ["192.0.2.53", "2001:db8::53"],
    "ntp_servers": ["ntp1.example.com", "192.0.2.123"],
    "static_routes": [{"destination": "10.20.0.0/16", "gateway": "192.0.2.254", "interface": "eth0"}],
    "snmp": {"enabled": True, "version": "v2c", "community": "monitor", "allowed_networks": ["192.0.2.0/24"]},
}


@pytest.mark.req("APPL-01")
def test_status_basics_and_identity_survive_restart(appliance):
    with appliance.client() as c:
        h = first_admin_login(c)
        b = c.get("/appliance/api/status", headers=h).json()
    for key in ("model", "serial_number", "appliance_version", "base_software_version", "system_time",
                "uptime_seconds"):
        assert b[key] not in (None, ""), key
    assert b["serial_number"].startswith("TTH") and len(b["serial_number"]) == 13
    appliance.stop()
    appliance.start()
    with appliance.client() as c:
        b2 = c.get("/appliance/api/status", headers={"Authorization": "Bearer " + c.post(
            "/appliance/api/session", json={"username": "admin", "password": NEW_ADMIN_PASSWORD}).json()["token"]}).json()
    assert (b2["serial_number"], b2["model"]) == (b["serial_number"], b["model"])
    assert b2["uptime_seconds"] < 30


@pytest.mark.req("APPL-02")
def test_networking_settings_are_validated_and_stored(appliance):
    with appliance.client() as c:
        h = first_admin_login(c)
        r = c.put("/appliance/api/networking", headers=h, json=NETWORKING)
        assert r.status_code == 200, r.text
        saved = c.get("/appliance/api/networking", headers=h).json()
        assert saved["interfaces"][0]["addresses"][1] == {"address": "192.0.2.11", "netmask": "24"}
        assert saved["dns_servers"] == ["192.0.2.53", "2001:db8::53"]
        assert saved["static_routes"][0]["destination"] == "10.20.0.0/16"
        bad_cases = [
            ({**NETWORKING, "dns_servers": ["192.0.2.53", "999.1.1.1"]}, "dns_servers.1"),
            ({**NETWORKING, "default_gateway": "not-an-ip"}, "default_gateway"),
            ({**NETWORKING, "hostname": "bad_host!"}, "hostname"),
            ({**NETWORKING, "interfaces": [{"name": "eth0", "addresses": [{"address": "192.0.2.9",
                                                                           "netmask": "255.0.255.0"}]}]},
             "interfaces.0.addresses.0.netmask"),
            ({**NETWORKING, "static_routes": [{"destination": "10.0.0.0/33", "gateway": "192.0.2.1"}]},
             "static_routes.0.destination"),
            ({**NETWORKING, "unknown": 1}, "unknown"),
        ]
        for body, field in bad_cases:
            r = c.put("/appliance/api/networking", headers=h, json=body)
            assert r.status_code == 422, (field, r.text)
            assert r.json()["field"] == field
            assert field.split(".")[0] in r.json()["message"]
        assert c.get("/appliance/api/networking", headers=h).json() == saved


def _tls_version_ok(host: str, port: int, cafile: str, version: ssl.TLSVersion) -> bool:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    ctx.minimum_version = ctx.maximum_version = version
    try:
        with socket.create_connection((host, port), timeout=5) as s, ctx.wrap_socket(s) as t:
            return t.version() is not None
    except (ssl.SSLError, ConnectionError):
        return False


@pytest.mark.req("APPL-03")
def test_tls_settings_apply_to_the_listener_without_restart(appliance):
    host, port = appliance.info["listen"][0].rsplit(":", 1)
    port = int(port)
    with appliance.client() as c:
        h = first_admin_login(c)
        sec = c.get("/appliance/api/security", headers=h).json()
        assert _tls_version_ok(host, port, appliance.cert_path, ssl.TLSVersion.TLSv1_2)
        sec["tls"]["min_version"] = "TLSv1.3"
        assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200
    assert not _tls_version_ok(host, port, appliance.cert_path, ssl.TLSVersion.TLSv1_2)
    assert _tls_version_ok(host, port, appliance.cert_path, ssl.TLSVersion.TLSv1_3)
    with appliance.client() as c:
        h = {"Authorization": "Bearer " + c.post("/appliance/api/session", json={
            "username": "admin", "password": NEW_ADMIN_PASSWORD}).json()["token"]}
        sec["tls"] = {"min_version": "TLSv1.2", "max_version": "TLSv1.2", "ciphers": "ECDHE+CHACHA20"}
        assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200
        ctx = ssl.create_default_context(cafile=appliance.cert_path)
        ctx.check_hostname = False
        with socket.create_connection((host, port), timeout=5) as s, ctx.wrap_socket(s) as t:
            assert t.version() == "TLSv1.2" and "CHACHA20" in t.cipher()[0]
        bad = json.loads(json.dumps(sec))
        bad["tls"]["ciphers"] = "NOT-A-CIPHER"
        r = c.put("/appliance/api/security", headers=h, json=bad)
        assert r.status_code == 422 and r.json()["field"] == "tls.ciphers"
        bad["tls"] = {"min_version": "TLSv1.3", "max_version": "TLSv1.2", "ciphers": "ECDHE+AESGCM"}
        assert c.put("/appliance/api/security", headers=h, json=bad).status_code == 422
        assert c.get("/appliance/api/security", headers=h).json()["tls"]["ciphers"] == "ECDHE+CHACHA20"


@pytest.mark.req("APPL-03")
def test_allowed_networks_and_ports_gate_the_appliance_face(make_appliance):
    a = make_appliance(listen=["127.0.0.1:0", "127.0.0.2:0"])
    with a.client() as c:
        h = first_admin_login(c)
        sec = c.get("/appliance/api/security", headers=h).json()
        # a setting that would lock the admin out is refused
        sec["administration"]["allowed_networks"] = ["10.0.0.0/8"]
        r = c.put("/appliance/api/security", headers=h, json=sec)
        assert r.status_code == 422 and r.json()["field"] == "administration.allowed_networks"
        sec["administration"]["allowed_networks"] = ["127.0.0.1/32"]
        assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200
    other = httpx.Client(base_url=a.url, verify=pinned_context(a.cert_path),
                         transport=httpx.HTTPTransport(local_address="127.0.0.3", verify=pinned_context(a.cert_path)))
    with other:
        r = other.get("/appliance/login")
        assert r.status_code == 403 and "not reachable from this network" in r.json()["message"]
        r = other.get("/health")  # the rest of the appliance still answers (503: no site is installed)
        assert (r.status_code, r.text) == (503, "no site\n")
    port2 = int(a.info["listen"][1].rsplit(":", 1)[1])
    with a.client() as c:
        h = {"Authorization": "Bearer " + c.post("/appliance/api/session", json={
            "username": "admin", "password": NEW_ADMIN_PASSWORD}).json()["token"]}
        sec["administration"] = {"allowed_networks": ["127.0.0.0/8"], "allowed_ports": [port2]}
        assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200
        assert c.get("/appliance/login").status_code == 403  # first listener's port no longer allowed
    with a.client(base=a.url_at(1)) as c2:
        assert c2.get("/appliance/login").status_code == 200


@pytest.mark.req("APPL-03")
def test_login_agreement_gates_the_login(appliance):
    with appliance.client() as c:
        h = first_admin_login(c)
        sec = c.get("/appliance/api/security", headers=h).json()
        sec["login_agreement"] = {"enabled": True, "title": "Authorised use only",
                                  "text": "Activity on this appliance is monitored."}
        assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200
    with appliance.client() as c:
        page = c.get("/appliance/login")
        assert "Activity on this appliance is monitored." in page.text and 'name="password"' not in page.text
        r = c.post("/appliance/api/session", json={"username": "admin", "password": NEW_ADMIN_PASSWORD})
        assert r.status_code == 422 and r.json()["field"] == "accept_agreement"
        assert c.get("/appliance/api/agreement").json()["title"] == "Authorised use only"
        r = c.post("/appliance/api/session", json={"username": "admin", "password": NEW_ADMIN_PASSWORD,
                                                   "accept_agreement": True})
        assert r.status_code == 200


class _Receiver:
    """A syslog receiver on loopback (UDP or TCP with octet counting)."""

    def __init__(self, transport: str):
        self.messages: list[str] = []
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.transport = transport
        if transport == "tcp":
            self.sock.listen(5)
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                if self.transport == "udp":
                    self.messages.append(self.sock.recv(65535).decode())
                else:
                    conn, _ = self.sock.accept()
                    with conn:
                        conn.settimeout(2)
                        data = b""
                        while chunk := conn.recv(65535):
                            data += chunk
                    while data:
                        n, _, rest = data.partition(b" ")
                        self.messages.append(rest[:int(n)].decode())
                        data = rest[int(n):]
            except (socket.timeout, OSError):
                continue

    def wait_for(self, text: str, timeout: float = 10) -> str:
        return wait_for(lambda: next((m for m in self.messages if text in m), None), timeout, every=0.05,
                        what=lambda: f"{text!r}; got {self.messages}")

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.mark.req("APPL-03", "SEC-06")
@pytest.mark.parametrize("transport,fmt", [("udp", "rfc5424"), ("tcp", "rfc3164")])
def test_audit_events_are_forwarded_to_syslog(appliance, transport, fmt):
    rx = _Receiver(transport)
    try:
        with appliance.client() as c:
            h = first_admin_login(c)
            sec = c.get("/appliance/api/security", headers=h).json()
            sec["syslog"] = {"enabled": True, "host": "127.0.0.1", "port": rx.port, "transport": transport,
                             "format": fmt}
            assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200
            c.put("/appliance/api/networking", headers=h, json=NETWORKING)
        msg = rx.wait_for("settings.networking.update")
        assert msg.startswith("<109>")  # facility log-audit (13), severity notice (5)
        if fmt == "rfc5424":
            assert msg.startswith("<109>1 ")
        payload = json.loads(msg[msg.index("{"):])
        assert payload["actor"] == "admin" and payload["source_ip"] == "127.0.0.1"
        assert NEW_ADMIN_PASSWORD not in "".join(rx.messages)
    finally:
        rx.close()


@pytest.mark.req("APPL-03")
def test_security_settings_validation_names_the_field(appliance):
    with appliance.client() as c:
        h = first_admin_login(c)
        sec = c.get("/appliance/api/security", headers=h).json()
        cases = [("syslog", {"enabled": True, "host": None, "port": 514, "transport": "udp", "format": "rfc5424"},
                  "syslog"),
                 ("syslog", {"enabled": True, "host": "127.0.0.1", "port": 70000, "transport": "udp",
                             "format": "rfc5424"}, "syslog.port"),
                 ("smtp", {**sec["smtp"], "host": "mail..example"}, "smtp.host"),
                 ("administration", {"allowed_networks": ["300.0.0.0/8"], "allowed_ports": []},
                  "administration.allowed_networks.0")]
        for key, value, field in cases:
            r = c.put("/appliance/api/security", headers=h, json={**sec, key: value})
            assert r.status_code == 422, r.text
            assert r.json()["field"] == field
        assert c.get("/appliance/api/security", headers=h).json() == sec
