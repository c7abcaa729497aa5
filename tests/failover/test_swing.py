"""Traffic follows the primary (FO-07, CL-03, PERF-01 in the small): a real
BIND server holds the site's A record; when the primary dies, the backup
takes over by itself, updates the record with an RFC 2136 update signed
with TSIG (only while it still names the old primary), runs the NAT hook,
and the original jump client, which re-resolves the site's name on every
reconnect and trusts only the site's certificate key, comes back on the new
primary without being redeployed."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import time

import pytest

from tether.clients.trust import pin_of_pem
from tether.core.errors import TetherError
from tether.failover import swing
from tether.site.models import DnsSwing
from tests.clients.conftest import SITE_HOST, Clients, Hosts, online
from tests.helpers import first_admin_login, first_site_login, free_port, ok, wait_for

from .bind import KEY_NAME, ZONE
from .pairs import PSK, cli, in_sync, set_psk, status

P12_PASS = "Export-pass-1"
RECORD = f"{SITE_HOST}."


@pytest.mark.req("FO-07")
def test_dns_update_only_while_the_record_names_the_old_primary(bind):
    b = bind({SITE_HOST.removesuffix(".tether.test"): "127.0.0.3"})
    cfg = DnsSwing(enabled=True, server="127.0.0.1", port=b.port, zone=ZONE, record=RECORD, ttl=5,
                   tsig_name=KEY_NAME)
    assert "127.0.0.2" in swing.dns_update(cfg, b.secret, "127.0.0.3", "127.0.0.2")
    assert b.a_record(RECORD) == ["127.0.0.2"]
    with pytest.raises(TetherError, match="NXRRSET"):  # a stale appliance cannot swing it back
        swing.dns_update(cfg, b.secret, "127.0.0.3", "127.0.0.9")
    with pytest.raises(TetherError, match="refused the TSIG key"):  # without the key
        swing.dns_update(cfg, "c2VjcmV0LXRoYXQtaXMtd3Jvbmc=", "127.0.0.2", "127.0.0.9")
    assert b.a_record(RECORD) == ["127.0.0.2"]


def _presented_pin(host: str, port: int) -> str:
    return pin_of_pem(ssl.get_server_certificate((host, port)))


def _swing_settings(c, sh, b, own_ip: str, hook: str, probe_port: int) -> None:
    fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "automatic_failover": True,
          "primary_timeout_seconds": 3, "connectivity_test_ips": ["127.0.0.4"], "connectivity_test_method": "tcp",
          "connectivity_test_port": probe_port, "nat_hook": hook, "dns_tsig_secret": b.secret,
          "dns_swing": {"enabled": True, "server": "127.0.0.1", "port": b.port, "zone": ZONE, "record": RECORD,
                        "ttl": 5, "tsig_name": KEY_NAME, "address": own_ip}}
    fs.pop("dns_tsig_secret_set", None)
    ok(c.put("/api/config/settings/failover", headers=sh, json=fs))


@pytest.mark.req("FO-05", "FO-07", "CL-03")
def test_the_jump_client_follows_the_dns_swing_after_the_primary_dies(make_appliance, bind, tmp_path):
    port = free_port("127.0.0.3")
    # the first listener (built-in certificate) for the admin and the CLI; the site's address for clients and peers
    p = make_appliance(site=True, listen=["127.0.0.1:0", f"127.0.0.3:{port}"])
    b = make_appliance(site=True, listen=["127.0.0.1:0", f"127.0.0.2:{port}"])
    pc, bc = p.client(), b.client()
    pah, psh = first_admin_login(pc), first_site_login(pc)
    bah, bsh = first_admin_login(bc), first_site_login(bc)
    # the site's certificate on both (the original key: the one clients pin)
    cert = ok(pc.post("/appliance/api/certificates/self-signed", headers=pah,
                      json={"name": "site", "fqdn": SITE_HOST, "days": 365}), 201)
    ok(pc.put("/appliance/api/certificate-assignments/127.0.0.3", headers=pah, json={"id": cert["id"]}))
    p12 = pc.post(f"/appliance/api/certificates/{cert['id']}/export", headers=pah,
                  json={"passphrase": P12_PASS, "include_key": True})
    assert p12.status_code == 200, p12.text
    imported = bc.post("/appliance/api/certificates/import", headers=bah, files={"file": ("site.p12", p12.content)},
                       data={"password": P12_PASS, "name": "site"})
    assert imported.status_code == 201, imported.text
    ok(bc.put("/appliance/api/certificate-assignments/127.0.0.2", headers=bah, json={"id": imported.json()["id"]}))
    pin = _presented_pin("127.0.0.3", port)
    assert _presented_pin("127.0.0.2", port) == pin

    dns = bind({SITE_HOST.removesuffix(".tether.test"): "127.0.0.3"})
    probe = socket.socket()
    probe.bind(("127.0.0.4", 0))
    probe.listen(16)
    hook_out = tmp_path / "hook.out"
    hook = tmp_path / "nat-hook"
    hook.write_text(f"#!/bin/sh\necho \"$1 -> $2\" >> {hook_out}\necho swung\n")
    hook.chmod(0o755)
    clients = Clients(tmp_path / "clients", Hosts(tmp_path / "hosts"))
    try:
        set_psk(pc, psh, PSK)
        set_psk(bc, bsh, PSK)
        cli(p, "establish", "--peer", f"127.0.0.2:{port}", "--self-address", f"127.0.0.3:{port}")
        wait_for(lambda: status(bc, bsh)["role"] == "backup", 10, what="the backup role")
        _swing_settings(bc, bsh, dns, "127.0.0.2", str(hook), probe.getsockname()[1])
        _swing_settings(pc, psh, dns, "127.0.0.3", str(hook), probe.getsockname()[1])

        clients.tmp.mkdir()
        clients.hosts.path.write_text("# empty: the name is resolved through BIND\n")
        os.environ["TETHER_DNS_SERVER"] = dns.server
        try:
            dep = clients.deploy(pc, psh, "jump", pin=pin)
            clients.install("jump", port, dep["token"], "db-01")
            jump = clients.run("jump", "db-01", "--max-backoff", "1")
        finally:
            del os.environ["TETHER_DNS_SERVER"]
        wait_for(lambda: online(pc, psh, "jump", "db-01"), 30, what="db-01 online on the primary")
        wait_for(lambda: in_sync(pc, psh, bc, bsh), 15, what="the backup in sync")

        p.stop(signal.SIGKILL)
        died = time.monotonic()
        wait_for(lambda: status(bc, bsh)["role"] == "primary", 20, every=0.05, what="the automatic failover")
        serving = time.monotonic() - died
        wait_for(lambda: dns.a_record(RECORD) == ["127.0.0.2"], 10, what="the DNS swing")
        wait_for(lambda: online(bc, bsh, "jump", "db-01"), 30, every=0.1,
                 what=lambda: f"db-01 back on the new primary; its log:\n{jump.text()}")
        back = time.monotonic() - died
        assert f"connected to {SITE_HOST} (127.0.0.2)" in jump.text()
        assert jump.proc.poll() is None
        assert "127.0.0.3 -> 127.0.0.2" in hook_out.read_text()
        s = status(bc, bsh)
        assert s["last_swing"]["nat_hook"] == "ok" and "127.0.0.2" in s["last_swing"]["dns"]
        print(json.dumps({"primary_timeout_s": 3, "backup_serving_after_s": round(serving, 2),
                          "client_back_after_s": round(back, 2)}))
        assert serving < 3 + 2 + 3  # T + 2 s is PERF-01's target (bench/); here a loose bound on a loaded machine
    finally:
        for proc in clients.procs:
            proc.stop()
        probe.close()
        pc.close()
        bc.close()
