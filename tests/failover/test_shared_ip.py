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
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.clients.conftest import SITE_HOST, Clients, Hosts, online
from tests.helpers import first_admin_login, first_site_login, ok, wait_for

from .netns import Host, Lab, require
from .pairs import PSK, cli, in_sync, presented_pin, set_psk, share_site_certificate, status

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "contrib" / "keepalived" / "tether-check"
NAT_HOOK = ROOT / "contrib" / "nat-hook-nftables"
PORT = 443  # each namespace has its own ports
PROBE_PORT = 9  # the connectivity test: the router answers with a reset, which counts (FO-05)


def keepalived_conf(me: str, peer: str, vip: str, track: Path) -> str:
    """docs/operations.md's keepalived.conf for appliance A, taken from the document (so what it shows is
    what is tested), with the lab's addresses and paths put in; ``me`` is the appliance's own address."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    conf = doc.split("`/etc/keepalived/keepalived.conf` on appliance A", 1)[1].split("```\n", 2)[1]
    for old, new in (("192.0.2.11", me), ("192.0.2.12", peer), ("192.0.2.100/24", f"{vip}/25"),
                     ("/var/lib/tether/failover/track", str(track)),
                     ("/usr/local/lib/tether/tether-check", str(CHECK)), ("router_id tether-a", f"router_id {me}")):
        assert old in conf, f"docs/operations.md's keepalived.conf no longer has {old!r}"
        conf = conf.replace(old, new)
    return conf


def start_keepalived(lab: Lab, host: Host, me: str, peer: str, vip: str, track: Path) -> Path:
    """keepalived in ``host`` (its lan interface is eth0, as in the document), in the foreground."""
    conf = lab.tmp / f"keepalived-{host.ns}.conf"
    conf.write_text(keepalived_conf(me, peer, vip, track))
    log = lab.tmp / f"keepalived-{host.ns}.log"
    keepalived = shutil.which("keepalived") or "/usr/sbin/keepalived"
    lab.spawn(host, [keepalived, "--dont-fork", "--log-console", "--log-detail", "--vrrp", "-f", str(conf),
                     "-p", str(lab.tmp / f"keepalived-{host.ns}.pid"),
                     "-r", str(lab.tmp / f"vrrp-{host.ns}.pid")], log)
    return log


def nat_rules(router: Host) -> str:
    return router.run("nft", "list", "chain", "ip", "tether_nat", "prerouting").stdout


def _appliance(make_appliance, host: Host, listen: list[str]):
    """A started appliance in ``host`` with its site, both first logins done: (appliance, client, /appliance
    headers, site headers)."""
    p = make_appliance(site=True, netns=host.ns, listen=listen)
    c = p.client()
    try:
        return p, c, first_admin_login(c), first_site_login(c)
    except BaseException:
        c.close()
        raise


def _settings(c, sh, hook: Path, router: Host) -> None:
    fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "automatic_failover": True,
          "primary_timeout_seconds": 3, "connectivity_test_ips": [router.ip], "connectivity_test_method": "tcp",
          "connectivity_test_port": PROBE_PORT, "nat_hook": str(hook), "nat_hook_timeout_seconds": 10}
    fs.pop("dns_tsig_secret_set", None)
    ok(c.put("/api/config/settings/failover", headers=sh, json=fs))


def _garp(tcpdump_log: Path, mac: str, vip: str) -> bool:
    """A gratuitous ARP (sender and target the shared address) sent from ``mac``, as tcpdump -e prints it."""
    return any(line.split(" > ", 1)[0].endswith(mac) and f"who-has {vip}" in line and f"tell {vip}," in line
               for line in tcpdump_log.read_text(errors="replace").splitlines())


@pytest.mark.req("FO-05", "FO-07", "CL-03")
def test_clients_follow_the_shared_ip_and_the_nat_rule_when_the_primary_dies(lab, make_appliance, vendor, tmp_path):
    require("keepalived", "nft", "tcpdump", "curl")
    a = lab.host("a", 1, gateway=126)
    b = lab.host("b", 2, gateway=126)
    client = lab.host("c", 9)
    router = lab.host("n", 126)
    wan = lab.link(router, "wan", 129, "w", 130)  # a client on the router's public side
    vip, public = lab.addr(100), lab.addr(129)
    # each appliance: the built-in certificate on its first address (the test's API calls, the CLI), the
    # site's on its site address (peers, the router's DNAT) and on the shared address (clients)
    a_site, b_site = a.add_address(lab.addr(11)), b.add_address(lab.addr(12))
    router.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    nft = (f"table ip tether_nat {{ chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; "
           f"ip daddr {public} tcp dport {PORT} dnat to {a_site}:{PORT} ; }} ; }}")
    router.run("nft", nft)
    for h in (a, b):  # listen on the shared address before it is here (keepalived adds it on the primary)
        h.run("sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")
    hook = tmp_path / "nat-hook"  # the shipped example, told to reach the router's nft
    hook.write_text(f'#!/bin/sh\nTETHER_NFT="ip netns exec {router.ns} nft" exec {NAT_HOOK} "$@"\n')
    hook.chmod(0o755)

    # both appliances at once (each is a few CLI runs and a start: mostly waiting on a loaded machine);
    # the site package they install is built first, once
    vendor["package"]()
    with ThreadPoolExecutor(2) as pool:
        made = [pool.submit(_appliance, make_appliance, h, [f"{h.ip}:{PORT}", f"{site}:{PORT}", f"{vip}:{PORT}"])
                for h, site in ((a, a_site), (b, b_site))]
    opened = [f.result()[1] for f in made if f.exception() is None]
    lan_clients = Clients(tmp_path / "lan-clients", Hosts(tmp_path / "lan-hosts"), prefix=client.prefix)
    wan_clients = Clients(tmp_path / "wan-clients", Hosts(tmp_path / "wan-hosts"), prefix=wan.prefix)
    try:
        (pa, ac, aah, ash), (pb, bc, bah, bsh) = (f.result() for f in made)
        share_site_certificate(ac, aah, bc, bah, SITE_HOST, [a_site, vip], [b_site, vip])
        logs = {a.ns: start_keepalived(lab, a, a_site, b_site, vip, pa.data / "failover" / "track"),
                b.ns: start_keepalived(lab, b, b_site, a_site, vip, pb.data / "failover" / "track")}
        arp_log = tmp_path / "client-arp.log"
        lab.spawn(client, ["tcpdump", "-i", client.ifname, "-n", "-l", "-e", "arp"], arp_log)
        wait_for(lambda: "listening on" in arp_log.read_text(errors="replace"), 15, what="tcpdump listening")

        def vip_on() -> str:
            return ",".join(h.ns for h in (a, b) if vip in h.addresses())

        for log in logs.values():  # neither is primary yet: both instances up, in FAULT
            wait_for(lambda: "entering FAULT state" in log.read_text(), 15, what=lambda: f"FAULT in {log}")
        assert vip_on() == ""

        set_psk(ac, ash, PSK)
        set_psk(bc, bsh, PSK)
        cli(pa, "establish", "--peer", f"{b_site}:{PORT}", "--self-address", f"{a_site}:{PORT}")
        wait_for(lambda: status(bc, bsh)["role"] == "backup", 15, what="the backup role")
        _settings(bc, bsh, hook, router)
        _settings(ac, ash, hook, router)
        wait_for(lambda: vip_on() == a.ns, 20, what=lambda: f"the shared address on A (on: {vip_on()!r}); "
                 f"A's keepalived:\n{logs[a.ns].read_text()[-3000:]}")

        pin = presented_pin(vip, PORT)  # A's, through the shared address
        assert presented_pin(b_site, PORT) == pin == presented_pin(a_site, PORT)

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
        wait_for(lambda: _garp(arp_log, b.mac(), vip), 10, every=0.1,
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
        print(json.dumps({"primary_timeout_s": 3, "advert_int_s": 0.5,
                          **{k: round(v, 2) for k, v in times.items()}}))
    finally:
        for proc in lan_clients.procs + wan_clients.procs:
            proc.stop()
        for c in opened:
            c.close()
