"""Traffic follows the primary by shared IP and by NAT swing (FO-07, CL-03),
in Linux network namespaces (netns.py): appliances A and B, a lan client
and a NAT router on one bridge, a client on the router's public side.

keepalived runs beside each appliance with the keepalived.conf of
docs/operations.md, read from the document: the instance follows Tether's
track file and Tether's /health (contrib/keepalived/tether-check), it
never decides the role. The
router DNATs its public address to the primary; the NAT hook
(contrib/nat-hook-nftables) rewrites that rule when the backup takes over.
When A's Tether is killed (its keepalived still runs, its track file still
says primary) the address leaves A, B promotes by itself, takes the address
with a fresh gratuitous ARP seen from the client, the rule is swung, and
the two original jump clients, one through each path, come back on B
without being redeployed."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.clients.conftest import SITE_HOST, Clients, Hosts, online
from tests.helpers import wait_for

from .netns import Host
from .pairs import in_sync, status
from .sharedip import PORT, build, garp, logged_in, nat_rules


def _appliance(make_appliance, host: Host, listen: list[str]):
    return logged_in(make_appliance(site=True, netns=host.ns, listen=listen))


@pytest.mark.req("FO-05", "FO-07", "CL-03")
def test_clients_follow_the_shared_ip_and_the_nat_rule_when_the_primary_dies(lab, make_appliance, vendor, tmp_path):
    pair = build(lab, lambda h, listen: _appliance(make_appliance, h, listen), tmp_path,
                 prepare=vendor["package"])  # the site package both install, built once
    a, b, client, router, wan, vip, public = pair.a.host, pair.b.host, pair.client, pair.router, pair.wan, \
        pair.vip, pair.public
    a_site, b_site, hook, arp_log, pin = pair.a.site_address, pair.b.site_address, pair.hook, pair.arp_log, pair.pin
    pa, ac, ash = pair.a.proc, pair.a.client, pair.a.site_headers
    pb, bc, bsh = pair.b.proc, pair.b.client, pair.b.site_headers
    logs = {a.ns: pair.a.keepalived_log, b.ns: pair.b.keepalived_log}
    vip_on = pair.vip_on
    lan_clients = Clients(tmp_path / "lan-clients", Hosts(tmp_path / "lan-hosts"), prefix=client.prefix)
    wan_clients = Clients(tmp_path / "wan-clients", Hosts(tmp_path / "wan-hosts"), prefix=wan.prefix)
    try:
        lan_clients.tmp.mkdir()
        wan_clients.tmp.mkdir()
        lan_clients.hosts.point(vip)
        wan_clients.hosts.point(public)
        with ThreadPoolExecutor(2) as pool:
            installs = [pool.submit(cl.install, "jump", PORT, cl.deploy(ac, ash, "jump", pin=pin)["token"], name)
                        for cl, name in ((lan_clients, "db-lan"), (wan_clients, "db-wan"))]
        for f in installs:
            f.result()
        jl = lan_clients.run("jump", "db-lan", "--max-backoff", "1")
        jw = wan_clients.run("jump", "db-wan", "--max-backoff", "1")
        wait_for(lambda: online(ac, ash, "jump", "db-lan") and online(ac, ash, "jump", "db-wan"), 30,
                 what=lambda: f"both clients online on A; logs:\n{jl.text()}\n{jw.text()}")
        assert client.neighbour(vip) == a.mac()
        assert wan.run("curl", "-sk", "--max-time", "5", f"https://{public}:{PORT}/health").stdout.startswith(
            "primary (generation 1)")
        wait_for(lambda: in_sync(ac, ash, bc, bsh), 15, what="the backup in sync")

        pa.stop(signal.SIGKILL)  # Tether only: A's keepalived keeps running, as when only the process dies
        died = time.monotonic()
        assert (pa.data / "failover" / "track").read_text() == "0\n"  # the file alone would keep the address
        times = {}
        wait_for(lambda: a.ns not in vip_on(), 15, every=0.1,
                 what=lambda: f"A releasing the shared address; A's keepalived:\n{logs[a.ns].read_text()[-3000:]}")
        times["released_by_a_s"] = time.monotonic() - died
        wait_for(lambda: status(bc, bsh)["role"] == "primary", 20, every=0.1, what="the automatic failover")
        times["backup_serving_s"] = time.monotonic() - died
        wait_for(lambda: vip_on() == b.ns, 20, every=0.1,
                 what=lambda: f"the shared address on B; B's keepalived:\n{logs[b.ns].read_text()[-3000:]}")
        times["address_on_backup_s"] = time.monotonic() - died
        wait_for(lambda: garp(arp_log, b.mac(), vip), 10, every=0.1,
                 what=lambda: f"a gratuitous ARP from B; the client saw:\n{arp_log.read_text()[-2000:]}")
        wait_for(lambda: online(bc, bsh, "jump", "db-lan"), 30, every=0.1,
                 what=lambda: f"db-lan back on B; its log:\n{jl.text()}")
        times["shared_ip_client_back_s"] = time.monotonic() - died
        assert client.neighbour(vip) == b.mac()
        wait_for(lambda: online(bc, bsh, "jump", "db-wan"), 30, every=0.1,
                 what=lambda: f"db-wan back on B; its log:\n{jw.text()}\nB's rule:\n{nat_rules(router)}")
        times["nat_client_back_s"] = time.monotonic() - died

        assert f"dnat to {b_site}:{PORT}" in nat_rules(router) and a_site not in nat_rules(router)
        assert status(bc, bsh)["last_swing"].get("nat_hook") == "ok"
        log_text = pb.log_path.read_text(errors="replace")
        assert f"NAT hook {hook} {a_site} {b_site} exited 0: rewrote: ip tether_nat prerouting handle" in log_text
        assert wan.run("curl", "-sk", "--max-time", "5", f"https://{public}:{PORT}/health").stdout.startswith(
            "primary (generation 2)")
        for j in (jl, jw):
            assert j.proc.poll() is None and j.text().count(f"connected to {SITE_HOST}") >= 2
        print(json.dumps({"primary_timeout_s": 3, "advert_int_s": 0.1,
                          **{k: round(v, 2) for k, v in times.items()}}))
    finally:
        for proc in lan_clients.procs + wan_clients.procs:
            proc.stop()
        pair.close()
