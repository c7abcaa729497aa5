"""The drill with a real failover pair (DR-02): ``tether drill`` on the
primary rehearses the restore, then a planned failover (data sync first) to
the backup and back, while a real jump client is connected and a probe
workload writes; the report gives RTO (fault to the jump client back on the
new primary, as its client hub saw it) and RPO (acknowledged probe writes
missing on the new primary: none in a planned failover), and the pair ends
in its original roles. With the peer down the drill fails, changing nothing."""

from __future__ import annotations

import json
import socket

import pytest

from tests.clients.conftest import SITE_HOST, Clients, Hosts, online
from tests.dr.test_drill_restore import drill
from tests.failover.pairs import PSK, cli, in_sync, presented_pin, set_psk, share_site_certificate, status
from tests.helpers import first_admin_login, first_site_login, free_port, ok, wait_for

P_IP, B_IP = "127.0.33.1", "127.0.33.2"


@pytest.mark.req("DR-02")
def test_failover_drills_measure_rto_and_rpo_and_restore_the_roles(make_appliance, tmp_path):
    port = free_port(P_IP)
    p = make_appliance(site=True, listen=["127.0.0.1:0", f"{P_IP}:{port}"])
    b = make_appliance(site=True, listen=["127.0.0.1:0", f"{B_IP}:{port}"])
    pc, bc = p.client(), b.client()
    pah, psh = first_admin_login(pc), first_site_login(pc)
    bah, bsh = first_admin_login(bc), first_site_login(bc)
    share_site_certificate(pc, pah, bc, bah, SITE_HOST, [P_IP], [B_IP])
    pin = presented_pin(P_IP, port)
    # the traffic swing: the NAT hook of each appliance points the clients' name at the new primary
    hosts = Hosts(tmp_path / "hosts")
    hosts.point(P_IP)
    hook = tmp_path / "nat-hook"
    hook.write_text(f"#!/bin/sh\nprintf '%s {SITE_HOST}\\n' \"$2\" > {hosts.path}.tmp && mv {hosts.path}.tmp "
                    f"{hosts.path}\necho swung to $2\n")
    hook.chmod(0o755)
    clients = Clients(tmp_path / "clients", hosts)
    clients.tmp.mkdir()
    try:
        set_psk(pc, psh, PSK)
        set_psk(bc, bsh, PSK)
        cli(p, "establish", "--peer", f"{B_IP}:{port}", "--self-address", f"{P_IP}:{port}")
        wait_for(lambda: status(bc, bsh)["role"] == "backup", 10, what="the backup role")
        for c, sh in ((pc, psh), (bc, bsh)):
            fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "nat_hook": str(hook)}
            fs.pop("dns_tsig_secret_set", None)
            ok(c.put("/api/config/settings/failover", headers=sh, json=fs))
        dep = clients.deploy(pc, psh, "jump", pin=pin)
        clients.install("jump", port, dep["token"], "db-01")
        jump = clients.run("jump", "db-01", "--max-backoff", "1")
        wait_for(lambda: online(pc, psh, "jump", "db-01"), 30, what="db-01 online on the primary")
        wait_for(lambda: in_sync(pc, psh, bc, bsh), 15, what="the backup in sync")
        gen = status(pc, psh)["generation"]

        rc, r = drill(p)
        print(json.dumps(r, indent=1))  # the figures quoted in the closing note
        assert rc == 0 and r["result"] == "pass", json.dumps(r, indent=1)
        assert r["restore"]["result"] == "pass"
        fo = r["failover"]
        assert fo["result"] == "pass" and fo["mode"] == "planned" and fo["clients_before"] == 1
        over = fo["over"]
        o = over["offsets"]
        # the timeline in order: fault, detection (the old primary stepped down), promotion, swing, clients back
        assert o["fault"] == 0 <= o["detection"] <= o["promotion"] <= o["traffic_swing"] <= o["clients_back"]
        assert over["rto_to"] == "first client back" and fo["rto_seconds"] == o["clients_back"]
        assert 0 < fo["rto_seconds"] < 60
        rpo = fo["rpo"]
        assert rpo["acknowledged"] >= 5 and rpo["lost"] == 0 and fo["rpo_writes_lost"] == 0
        assert rpo["on_new_primary"] == rpo["acknowledged"] and rpo["orphan_files"] == 0 and rpo["checked_in_sync"]
        assert fo["back"]["rto_seconds"] is not None and fo["back"]["offsets"]["clients_back"] > 0
        assert fo["roles_restored"] is True and fo["generation_after"] >= gen + 2

        # the report page draws the timeline from the same figures (server-rendered SVG)
        html = pc.get(f"/appliance/drills/{r['id']}", headers=pah).text
        for step in ("fault", "detection", "promotion", "traffic_swing", "clients_back"):
            assert f'data-step="{step}" data-seconds="{o[step]:.3f}"' in html, step
        assert html.count("<svg") == 2  # over and back

        # the pair is back as it was, the client on the original primary, and the probe setting gone
        assert status(pc, psh)["role"] == "primary" and status(bc, bsh)["role"] == "backup"
        assert pc.get("/health").status_code == 200 and bc.get("/health").status_code == 503
        wait_for(lambda: online(pc, psh, "jump", "db-01"), 30, what="db-01 back on the original primary")
        assert jump.proc.poll() is None
        import sqlite3

        with sqlite3.connect(f"file:{p.data / 'site' / 'site.db'}?mode=ro", uri=True) as db:
            assert db.execute("select count(*) from site_settings where key='drill_probe'").fetchone()[0] == 0

        # unplanned: the primary's serving stopped (silent to its peer, no clients, no writes), the backup takes
        # over by itself after its primary timeout, the old primary yields, and the drill takes the role back
        probe = socket.socket()  # the backup's connectivity test address
        probe.bind(("127.0.33.4", 0))
        probe.listen(16)
        fs = {**ok(bc.get("/api/config/settings/failover", headers=bsh)), "automatic_failover": True,
              "primary_timeout_seconds": 3, "connectivity_test_ips": ["127.0.33.4"],
              "connectivity_test_method": "tcp", "connectivity_test_port": probe.getsockname()[1]}
        fs.pop("dns_tsig_secret_set", None)
        ok(bc.put("/api/config/settings/failover", headers=bsh, json=fs))
        wait_for(lambda: in_sync(pc, psh, bc, bsh), 15, what="the backup in sync")
        rc, u = drill(p, "--unplanned")
        print(json.dumps(u, indent=1))
        probe.close()
        assert rc == 0 and u["result"] in ("pass", "warn"), json.dumps(u, indent=1)
        fo = u["failover"]
        assert fo["mode"] == "unplanned" and fo["roles_restored"] is True
        o = fo["over"]["offsets"]
        assert o["fault"] == 0 < 2 <= o["detection"] <= o["promotion"] <= o["traffic_swing"] <= o["clients_back"]
        assert fo["rto_seconds"] == o["clients_back"] < 60
        rpo = fo["rpo"]
        assert rpo["acknowledged"] >= 5 and rpo["lost"] == rpo["acknowledged"] - rpo["on_new_primary"] >= 0
        assert (fo["result"] == "warn") == bool(rpo["lost"] or rpo["orphan_files"])
        assert status(pc, psh)["role"] == "primary" and status(bc, bsh)["role"] == "backup"
        assert pc.get("/health").status_code == 200
        wait_for(lambda: online(pc, psh, "jump", "db-01"), 30, what="db-01 back on the original primary")

        # with the peer down the failover part fails before anything changes
        b.stop()
        wait_for(lambda: (status(pc, psh).get("peer_contact_age_seconds") or 0) > 3, 20, what="the peer silent")
        rc, r = drill(p, "--backup", "latest")  # (no backup kept either: both parts fail, each with its reason)
        assert rc == 9 and r["result"] == "fail" and "no site backup is kept" in r["restore"]["error"]
        assert r["failover"]["result"] == "fail" and "unreachable" in r["failover"]["error"]
        assert "nothing was changed" in r["failover"]["error"] and r["failover"]["role_now"] == "primary"
        assert status(pc, psh)["role"] == "primary"
    finally:
        for proc in clients.procs:
            proc.stop()
        pc.close()
        bc.close()
