"""CL-02 and CL-03 with real processes: deployed clients trust the site only
through its certificate's key, and come back by themselves after the
appliance is killed and restarted, and after the site is restored onto a
replacement appliance at another address behind the same hostname, once the
original certificate is restored there from its .p12."""

from __future__ import annotations

import signal
import ssl
import time

import httpx
import pytest

from tether.clients.trust import pin_of_pem
from tests.helpers import NEW_SITE_PASSWORD, first_admin_login, first_site_login, free_port

from .conftest import SITE_HOST, Clients, ok, online, wait_for

P12_PASS = "Export-pass-1"
BACKUP_PW = "Backup-pass-1-long"


def presented_pin(host: str, port: int) -> str:
    return pin_of_pem(ssl.get_server_certificate((host, port)))


def logged_in(a) -> tuple[httpx.Client, dict, dict]:
    c = a.client()
    return c, first_admin_login(c), first_site_login(c)


@pytest.mark.req("CL-02", "CL-03")
def test_pinned_clients_survive_kill_restore_and_address_change(make_appliance, clients: Clients, tmp_path):
    port = free_port("127.0.0.3")
    a = make_appliance(site=True, listen=["127.0.0.1:0", f"127.0.0.3:{port}"])
    c, ah, sh = logged_in(a)
    # the site's own certificate on the client-facing address; the pin is its public key
    cert = ok(c.post("/appliance/api/certificates/self-signed", headers=ah,
                     json={"name": "site", "fqdn": SITE_HOST, "days": 365}), 201)
    ok(c.put("/appliance/api/certificate-assignments/127.0.0.3", headers=ah, json={"id": cert["id"]}))
    pin = presented_pin("127.0.0.3", port)
    p12 = c.post(f"/appliance/api/certificates/{cert['id']}/export", headers=ah,
                 json={"passphrase": P12_PASS, "include_key": True})
    assert p12.status_code == 200, p12.text

    clients.hosts.point("127.0.0.3")
    dep = clients.deploy(c, sh, "jump", pin=pin)
    clients.install("jump", port, dep["token"], "db-01")
    jump = clients.run("jump", "db-01", "--max-backoff", "2")
    wait_for(lambda: online(c, sh, "jump", "db-01"), what="db-01 online")
    backup = c.post("/api/backup", headers=sh, json={"password": BACKUP_PW})
    assert backup.status_code == 200, backup.text
    c.close()

    # 1. the appliance process is killed, then started again on the same data
    a.stop(signal.SIGKILL)
    wait_for(lambda: "connection closed" in jump.text() or "ConnectionRefused" in jump.text(),
             what="the client noticing")
    a.start()
    began = time.monotonic()
    c = a.client()
    sh = {"Authorization": "Bearer " + ok(c.post("/api/session", json={"username": "admin",
                                                                       "password": NEW_SITE_PASSWORD}))["token"]}
    wait_for(lambda: online(c, sh, "jump", "db-01"), timeout=20, what="db-01 back after the restart")
    assert time.monotonic() - began < 10
    a.stop(signal.SIGKILL)
    c.close()

    # 2. a replacement appliance behind the same hostname at another address; it presents its own
    #    built-in certificate, which the client refuses without sending its identity
    b = make_appliance(site=True, listen=["127.0.0.1:0", f"127.0.0.4:{port}"])
    c, ah, sh = logged_in(b)
    clients.hosts.point("127.0.0.4")
    mark = len(jump.text())
    wait_for(lambda: "certificate does not match the pinned site key" in jump.text()[mark:], timeout=20,
             what="the client refusing the impostor certificate")
    # the site is restored from the backup: the client is known again, but still refuses the certificate
    r = c.post("/api/restore", headers=sh, files={"file": ("site.nsb", backup.content)}, data={"password": BACKUP_PW})
    assert r.status_code == 200, r.text
    sh = {"Authorization": "Bearer " + ok(c.post("/api/session", json={"username": "admin",
                                                                       "password": NEW_SITE_PASSWORD}))["token"]}
    mark = len(jump.text())
    wait_for(lambda: "certificate does not match" in jump.text()[mark:], timeout=20, what="still refused")
    assert ok(c.get("/api/clients", headers=sh))["connected"]["jump_clients"] == 0
    assert any(j["name"] == "db-01" for j in ok(c.get("/api/clients", headers=sh))["jump_clients"])

    # 3. the original certificate, restored from its .p12 and assigned: the client is back by itself
    imported = c.post("/appliance/api/certificates/import", headers=ah, files={"file": ("site.p12", p12.content)},
                      data={"password": P12_PASS, "name": "site (restored)"})
    assert imported.status_code == 201, imported.text
    ok(c.put("/appliance/api/certificate-assignments/127.0.0.4", headers=ah, json={"id": imported.json()["id"]}))
    assert presented_pin("127.0.0.4", port) == pin
    wait_for(lambda: online(c, sh, "jump", "db-01"), timeout=20, what="db-01 online on the replacement")
    assert jump.proc.poll() is None
    assert "connected to support.tether.test (127.0.0.4)" in jump.text()
    c.close()
