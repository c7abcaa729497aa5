"""Helpers for the failover tests: two appliances with the same site on
loopback addresses, the pre-shared key, the ``tether failover`` CLI, status,
the site's certificate shared by both; the ``pair`` fixture is registered in
conftest.py."""

from __future__ import annotations

import ssl

import pytest

from tether.clients.trust import pin_of_pem

from tests.helpers import NEW_SITE_PASSWORD, first_admin_login, first_site_login, ok, run_cli

PSK = "a pre-shared key for the pair test, long enough"
OTHER_PSK = "another pre-shared key that does not match at all"
P12_PASS = "Export-pass-1"


def _site(make_appliance, host: str):
    a = make_appliance(site=True, listen=[f"{host}:0"])
    c = a.client()
    first_admin_login(c)
    sh = first_site_login(c)
    return a, c, sh


def set_psk(c, sh, psk: str) -> None:
    ok(c.put("/api/config/settings/inter-appliance-psk", headers=sh, json={"psk": psk}))


def share_site_certificate(pc, pah, bc, bah, fqdn: str, p_addresses: list[str], b_addresses: list[str]) -> None:
    """The site's certificate (the original key: the one clients pin) made on the primary, exported as .p12
    with its key, imported on the backup, and assigned to ``p_addresses`` and ``b_addresses``."""
    cert = ok(pc.post("/appliance/api/certificates/self-signed", headers=pah,
                      json={"name": "site", "fqdn": fqdn, "days": 365}), 201)
    for address in p_addresses:
        ok(pc.put(f"/appliance/api/certificate-assignments/{address}", headers=pah, json={"id": cert["id"]}))
    p12 = pc.post(f"/appliance/api/certificates/{cert['id']}/export", headers=pah,
                  json={"passphrase": P12_PASS, "include_key": True})
    assert p12.status_code == 200, p12.text
    imported = bc.post("/appliance/api/certificates/import", headers=bah, files={"file": ("site.p12", p12.content)},
                       data={"password": P12_PASS, "name": "site"})
    assert imported.status_code == 201, imported.text
    for address in b_addresses:
        ok(bc.put(f"/appliance/api/certificate-assignments/{address}", headers=bah,
                  json={"id": imported.json()["id"]}))


def presented_pin(host: str, port: int) -> str:
    """The pin (tether.clients.trust) of the certificate presented at host:port, as a client sees it."""
    return pin_of_pem(ssl.get_server_certificate((host, port)))


def cli(a, *args, check=True):
    env = {**a.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_SITE_PASSWORD}
    cp = run_cli("failover", *args, env=env)
    if check:
        assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp


def status(c, sh) -> dict:
    return ok(c.get("/api/failover/status", headers=sh))


def in_sync(pc, psh, bc, bsh) -> bool:
    """The backup has applied the primary's whole log, asked of both (the backup alone knows the primary's
    head only as of its last batch or heartbeat: a write just made is not yet counted in its lag)."""
    head = status(pc, psh)["sync"]["head"]
    return (status(bc, bsh).get("sync") or {}).get("applied_seq") == head


@pytest.fixture
def pair(make_appliance):
    """Two appliances with the same site and pre-shared key, not paired yet. Not on 127.0.0.1: that is
    where the tests' own requests come from, and links are cut by address (netcut.py)."""
    p, pc, psh = _site(make_appliance, "127.0.0.3")
    b, bc, bsh = _site(make_appliance, "127.0.0.2")
    set_psk(pc, psh, PSK)
    set_psk(bc, bsh, PSK)
    yield p, pc, psh, b, bc, bsh
    pc.close()
    bc.close()


def peer_addr(a) -> str:
    return a.info["listen"][0]
