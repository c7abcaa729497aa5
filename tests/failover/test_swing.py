"""Traffic follows the primary (FO-07, CL-03, PERF-01 in the small): the NAT
hook's runner (logged, killed whole at its timeout); a real BIND server
holds the site's A record; when the primary dies, the backup
takes over by itself, updates the record with an RFC 2136 update signed
with TSIG (only while it still names the old primary), runs the NAT hook,
and the original jump client, which re-resolves the site's name on every
reconnect and trusts only the site's certificate key, comes back on the new
primary without being redeployed."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tether.core.errors import TetherError
from tether.failover import swing
from tether.site.models import DnsSwing
from tests.clients.conftest import SITE_HOST, Clients, Hosts, online
from tests.helpers import first_admin_login, first_site_login, free_port, ok, wait_for

from .bind import KEY_NAME, ZONE
from .pairs import PSK, cli, in_sync, presented_pin, set_psk, share_site_certificate, status

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


def _swing_settings(c, sh, b, own_ip: str, hook: str, probe_port: int) -> None:
    fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "automatic_failover": True,
          "primary_timeout_seconds": 3, "connectivity_test_ips": ["127.0.0.4"], "connectivity_test_method": "tcp",
          "connectivity_test_port": probe_port, "nat_hook": hook, "dns_tsig_secret": b.secret,
          "dns_swing": {"enabled": True, "server": "127.0.0.1", "port": b.port, "zone": ZONE, "record": RECORD,
                        "ttl": 5, "tsig_name": KEY_NAME, "address": own_ip}}
    fs.pop("dns_tsig_secret_set", None)
    ok(c.put("/api/config/settings/failover", headers=sh, json=fs))


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"  # a zombie: dead
    except FileNotFoundError:
        return True


@pytest.mark.req("FO-07")
def test_the_nat_hook_is_logged_and_killed_whole_at_its_timeout(tmp_path, caplog):
    hook = tmp_path / "hook"
    hook.write_text('#!/bin/sh\necho "moving $1 to $2"\necho "router said no" >&2\nexit ${FAIL:-0}\n')
    hook.chmod(0o755)
    with caplog.at_level(logging.INFO, "tether.failover"):
        assert swing.run_hook(str(hook), "10.0.0.1", "10.0.0.2", 5) == "moving 10.0.0.1 to 10.0.0.2\nrouter said no"
    assert f"NAT hook {hook} 10.0.0.1 10.0.0.2 exited 0: moving 10.0.0.1 to 10.0.0.2" in caplog.text

    hook.write_text('#!/bin/sh\necho "no route to the router" >&2\nexit 4\n')
    with pytest.raises(TetherError, match=r"failed \(exit 4\): no route to the router"):
        swing.run_hook(str(hook), None, "10.0.0.2", 5)

    child = tmp_path / "child.pid"  # a hook that hangs in a child of its own (an ssh that never answers)
    hook.write_text(f'#!/bin/sh\necho "asking the router"\nsleep 120 &\necho $! > {child}\nwait\n')
    caplog.clear()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, "tether.failover"), \
            pytest.raises(TetherError, match="did not finish within 1 s and was killed"):
        swing.run_hook(str(hook), "10.0.0.1", "10.0.0.2", 1)
    assert time.monotonic() - started < 6  # not the child's 120 s: the group was killed and the pipes closed
    wait_for(lambda: _gone(int(child.read_text())), 5, what="the hook's child killed with it")
    assert "killed after 1 s: asking the router" in caplog.text

    hook.chmod(0o644)
    with pytest.raises(TetherError, match="cannot be run") as e:
        swing.run_hook(str(hook), "10.0.0.1", "10.0.0.2", 5)
    assert "chmod 755" in e.value.hint
    with pytest.raises(TetherError, match="does not exist"):
        swing.run_hook(str(tmp_path / "missing"), "10.0.0.1", "10.0.0.2", 5)


@pytest.mark.req("FO-05", "FO-07", "CL-03")
def test_the_jump_client_follows_the_dns_swing_after_the_primary_dies(make_appliance, bind, tmp_path):
    port = free_port("127.0.0.3")
    # the first listener (built-in certificate) for the admin and the CLI; the site's address for clients and peers
    p = make_appliance(site=True, listen=["127.0.0.1:0", f"127.0.0.3:{port}"])
    b = make_appliance(site=True, listen=["127.0.0.1:0", f"127.0.0.2:{port}"])
    pc, bc = p.client(), b.client()
    pah, psh = first_admin_login(pc), first_site_login(pc)
    bah, bsh = first_admin_login(bc), first_site_login(bc)
    share_site_certificate(pc, pah, bc, bah, SITE_HOST, ["127.0.0.3"], ["127.0.0.2"])
    pin = presented_pin("127.0.0.3", port)
    assert presented_pin("127.0.0.2", port) == pin

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
