"""A failover pair behind a keepalived shared address, in network namespaces
(FO-07), shared by tests/failover/test_shared_ip.py and the shared-IP mode
of bench/failover_time.py.

``build(lab, make, ...)`` lays out, on one lab (netns.py): appliances A
(.1, site address .11) and B (.2, .12), a lan client C (.9), a NAT router
N (.126) with a client W on its public side (.130 via .129), and the shared
address .100. keepalived runs beside each appliance with the
keepalived.conf of docs/operations.md, read from the document (what it
shows is what is tested): the instance follows Tether's track file and
Tether's /health (contrib/keepalived/tether-check), it never decides the
role. The router DNATs its public address to the primary's site address;
the NAT hook (contrib/nat-hook-nftables) rewrites that rule when the backup
takes over. A is paired with B (A primary), automatic failover is on with
T = 3 s and the router as connectivity test address, and ``build`` returns
once the shared address is on A. ``make(host, listen)`` starts one
appliance with its site in ``host`` and returns (process, client,
/appliance headers, site headers): the test passes pytest's factory, the
bench its own."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.clients.conftest import SITE_HOST
from tests.helpers import first_admin_login, first_site_login, ok, wait_for

from .netns import Host, Lab, require
from .pairs import PSK, cli, presented_pin, set_psk, share_site_certificate, status

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "contrib" / "keepalived" / "tether-check"
NAT_HOOK = ROOT / "contrib" / "nat-hook-nftables"
PORT = 443  # each namespace has its own ports
PROBE_PORT = 9  # the connectivity test: the router answers with a reset, which counts (FO-05)
TIMEOUT = 3  # the primary timeout T


def keepalived_conf(me: str, peer: str, vip: str, track: Path) -> str:
    """docs/operations.md's keepalived.conf for appliance A, taken from the document, with the lab's
    addresses and paths put in; ``me`` is the appliance's own address."""
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


def garp(tcpdump_log: Path, mac: str, vip: str) -> bool:
    """A gratuitous ARP (sender and target the shared address) sent from ``mac``, as tcpdump -e prints it."""
    return any(line.split(" > ", 1)[0].endswith(mac) and f"who-has {vip}" in line and f"tell {vip}," in line
               for line in tcpdump_log.read_text(errors="replace").splitlines())


def failover_settings(c, sh, hook: Path, router: Host) -> None:
    fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "automatic_failover": True,
          "primary_timeout_seconds": TIMEOUT, "connectivity_test_ips": [router.ip],
          "connectivity_test_method": "tcp", "connectivity_test_port": PROBE_PORT, "nat_hook": str(hook),
          "nat_hook_timeout_seconds": 10}
    fs.pop("dns_tsig_secret_set", None)
    ok(c.put("/api/config/settings/failover", headers=sh, json=fs))


def logged_in(proc) -> tuple:
    """A started appliance with its site, both first logins done: (process, client, /appliance headers, site
    headers), what ``build``'s ``make`` returns."""
    c = proc.client()
    try:
        return proc, c, first_admin_login(c), first_site_login(c)
    except BaseException:
        c.close()
        raise


@dataclass
class Side:
    """One appliance of the pair and its namespace."""

    host: Host
    site_address: str
    proc: object  # tests.helpers.ApplianceProc
    client: object  # httpx.Client on its first address
    admin_headers: dict
    site_headers: dict
    keepalived_log: Path | None = None

    @property
    def track(self) -> Path:
        return self.proc.data / "failover" / "track"


@dataclass
class SharedIpPair:
    lab: Lab
    a: Side
    b: Side
    client: Host  # on the lan: reaches the shared address
    router: Host
    wan: Host  # on the router's public side: reaches the DNAT
    vip: str
    public: str
    hook: Path
    arp_log: Path
    pin: str = ""
    opened: list = field(default_factory=list)

    def vip_on(self) -> str:
        return ",".join(s.host.ns for s in (self.a, self.b) if self.vip in s.host.addresses())

    def holder(self) -> "Side | None":
        on = [s for s in (self.a, self.b) if self.vip in s.host.addresses()]
        return on[0] if len(on) == 1 else None

    def other(self, side: Side) -> Side:
        return self.b if side is self.a else self.a

    def close(self) -> None:
        for c in self.opened:
            c.close()


def build(lab: Lab, make: Callable[[Host, list[str]], tuple], tmp: Path,
          prepare: Callable[[], object] | None = None) -> SharedIpPair:
    """The lab, both appliances (started at once), the site's certificate on both, keepalived in both, the
    pair (A primary) with automatic failover and the NAT hook; returns once the shared address is on A.
    ``prepare()`` runs before the appliances are made (e.g. building the site package once)."""
    require("keepalived", "nft", "tcpdump", "curl")
    a = lab.host("a", 1, gateway=126)
    b = lab.host("b", 2, gateway=126)
    client = lab.host("c", 9)
    router = lab.host("n", 126)
    wan = lab.link(router, "wan", 129, "w", 130)
    vip, public = lab.addr(100), lab.addr(129)
    # each appliance: the built-in certificate on its first address (API calls, the CLI), the site's on its
    # site address (peers, the router's DNAT) and on the shared address (clients)
    a_site, b_site = a.add_address(lab.addr(11)), b.add_address(lab.addr(12))
    router.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    nft = (f"table ip tether_nat {{ chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; "
           f"ip daddr {public} tcp dport {PORT} dnat to {a_site}:{PORT} ; }} ; }}")
    router.run("nft", nft)
    for h in (a, b):  # listen on the shared address before it is here (keepalived adds it on the primary)
        h.run("sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")
    hook = tmp / "nat-hook"  # the shipped example, told to reach the router's nft
    hook.write_text(f'#!/bin/sh\nTETHER_NFT="ip netns exec {router.ns} nft" exec {NAT_HOOK} "$@"\n')
    hook.chmod(0o755)
    if prepare is not None:
        prepare()
    with ThreadPoolExecutor(2) as pool:  # each is a few CLI runs and a start: mostly waiting
        made = [pool.submit(make, h, [f"{h.ip}:{PORT}", f"{site}:{PORT}", f"{vip}:{PORT}"])
                for h, site in ((a, a_site), (b, b_site))]
    opened = [f.result()[1] for f in made if f.exception() is None]
    try:
        (pa, ac, aah, ash), (pb, bc, bah, bsh) = (f.result() for f in made)  # raises what failed
    except BaseException:
        for c in opened:
            c.close()
        raise
    pair = SharedIpPair(lab, Side(a, a_site, pa, ac, aah, ash), Side(b, b_site, pb, bc, bah, bsh), client, router,
                        wan, vip, public, hook, tmp / "client-arp.log", opened=opened)
    try:
        _join(pair)
    except BaseException:
        pair.close()
        raise
    return pair


def _join(pair: SharedIpPair) -> None:
    """keepalived beside both, the pair (A primary), failover settings; until the shared address is on A."""
    lab, a, vip, hook, router, client = pair.lab, pair.a.host, pair.vip, pair.hook, pair.router, pair.client
    (pa, ac, aah, ash), (pb, bc, bah, bsh) = ((s.proc, s.client, s.admin_headers, s.site_headers)
                                              for s in (pair.a, pair.b))
    a_site, b_site = pair.a.site_address, pair.b.site_address
    share_site_certificate(ac, aah, bc, bah, SITE_HOST, [a_site, vip], [b_site, vip])
    for me, peer in ((pair.a, pair.b), (pair.b, pair.a)):
        me.keepalived_log = start_keepalived(lab, me.host, me.site_address, peer.site_address, vip, me.track)
    lab.spawn(client, ["tcpdump", "-i", client.ifname, "-n", "-l", "-e", "arp"], pair.arp_log)
    wait_for(lambda: "listening on" in pair.arp_log.read_text(errors="replace"), 15, what="tcpdump listening")
    for side in (pair.a, pair.b):  # neither is primary yet: both instances up, in FAULT
        wait_for(lambda: "entering FAULT state" in side.keepalived_log.read_text(), 15,
                 what=lambda: f"FAULT in {side.keepalived_log}")
    assert pair.vip_on() == ""
    set_psk(ac, ash, PSK)
    set_psk(bc, bsh, PSK)
    cli(pa, "establish", "--peer", f"{b_site}:{PORT}", "--self-address", f"{a_site}:{PORT}")
    wait_for(lambda: status(bc, bsh)["role"] == "backup", 15, what="the backup role")
    failover_settings(bc, bsh, hook, router)
    failover_settings(ac, ash, hook, router)
    wait_for(lambda: pair.vip_on() == a.ns, 20, what=lambda: f"the shared address on A (on: {pair.vip_on()!r}); "
             f"A's keepalived:\n{pair.a.keepalived_log.read_text()[-3000:]}")
    pair.pin = presented_pin(vip, PORT)  # A's, through the shared address
    assert presented_pin(b_site, PORT) == pair.pin == presented_pin(a_site, PORT)
