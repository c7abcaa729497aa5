"""A small network in Linux network namespaces for the failover tests
(FO-07): a bridge in a "lan" namespace, one namespace per host with a veth
on that bridge, one veth from the test's own (root) namespace onto the
bridge so the test reaches the hosts' APIs, and point-to-point links (a NAT
router's public side). Processes started in the hosts are the lab's.

Names carry the pid (parallel pytest workers never collide); the lab's
subnet is a 10.x.y.0/24 chosen from the pid and not in use in the root
namespace; the lan is its lower half (.0/25), the rest is left for links.
``close()`` (the fixture's teardown, failed test or not) stops every
process the lab started, kills whatever else still runs in its namespaces,
and deletes them, which removes their veths and the bridge with them.
Needs root and iproute2: without them the test fails with a clear message,
it is never skipped (CI runs as root)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    cp = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and cp.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed ({cp.returncode}): {cp.stderr.strip()}")
    return cp


def require(*programs: str) -> None:
    """Fail (never skip) when the lab cannot be built here."""
    if os.geteuid() != 0:
        pytest.fail("the network-namespace tests need root (ip netns, veth, bridges); CI runs them as root")
    missing = [p for p in ("ip", *programs) if shutil.which(p) is None and not os.path.exists(f"/usr/sbin/{p}")]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; run scripts/install-system-deps as root")


@dataclass
class Host:
    """A namespace with one interface ``ifname`` at ``ip`` on the lab's lan."""

    ns: str
    ifname: str
    ip: str

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program here (``ip netns exec`` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.ns]

    def run(self, *args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
        cp = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=timeout)
        if check and cp.returncode != 0:
            raise AssertionError(f"in {self.ns}: {' '.join(args)} failed ({cp.returncode}): {cp.stderr.strip()}")
        return cp

    def mac(self, ifname: str | None = None) -> str:
        out = ip("-n", self.ns, "-o", "link", "show", ifname or self.ifname).stdout
        return re.search(r"link/ether ([0-9a-f:]{17})", out).group(1)

    def addresses(self, ifname: str | None = None) -> list[str]:
        out = ip("-n", self.ns, "-o", "-4", "addr", "show", "dev", ifname or self.ifname).stdout
        return re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)

    def add_address(self, address: str, prefixlen: int = 25) -> str:
        ip("-n", self.ns, "addr", "add", f"{address}/{prefixlen}", "dev", self.ifname)
        return address

    def neighbour(self, address: str) -> str | None:
        """The MAC this host's neighbour table holds for ``address`` (None when it has none)."""
        out = ip("-n", self.ns, "neigh", "show", address).stdout
        m = re.search(r"lladdr ([0-9a-f:]{17})", out)
        return m.group(1) if m else None


def _pick_subnet() -> str:
    used = ip("-4", "-o", "addr", "show").stdout + ip("-4", "route", "show", "table", "all").stdout
    pid = os.getpid()
    for k in range(256):
        n = (pid + k * 7919) % (128 * 256)
        net = f"10.{64 + n // 256}.{n % 256}"
        if f" {net}." not in used and f"\n{net}." not in used and not used.startswith(f"{net}."):
            return net
    raise AssertionError("no free 10.x.y.0/24 for the lab")


class Lab:
    """Build with ``start()``; ``close()`` removes whatever was built, however far ``start()`` got."""

    ROOT = 125  # the test's own address on the lan

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.tag = f"tk{os.getpid()}"  # + one letter: 15 characters at most (interface names)
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self._logs: list = []
        self.root_if = f"{self.tag}h"

    def start(self) -> "Lab":
        require()
        self.net = _pick_subnet()
        self.lan = self.namespace("l")
        ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        ip("-n", self.lan, "link", "set", "br0", "up")
        # the test's own way in: a veth from the root namespace onto the bridge
        ip("link", "add", self.root_if, "type", "veth", "peer", "name", "root", "netns", self.lan)
        ip("-n", self.lan, "link", "set", "root", "master", "br0", "up")
        ip("addr", "add", f"{self.addr(self.ROOT)}/25", "dev", self.root_if)
        ip("link", "set", self.root_if, "up")
        return self

    def addr(self, last: int) -> str:
        return f"{self.net}.{last}"

    def namespace(self, letter: str) -> str:
        name = f"{self.tag}{letter}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def host(self, letter: str, last: int, gateway: int | None = None) -> Host:
        """A namespace on the lan at ``.last`` (a /25), with a default route via ``.gateway`` if given."""
        ns = self.namespace(letter)
        ip("-n", self.lan, "link", "add", f"p{letter}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", self.lan, "link", "set", f"p{letter}", "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{self.addr(last)}/25", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        if gateway is not None:
            ip("-n", ns, "route", "add", "default", "via", self.addr(gateway))
        return Host(ns, "eth0", self.addr(last))

    def link(self, a: Host, a_if: str, a_last: int, letter: str, b_last: int) -> Host:
        """A new namespace joined to ``a`` by a point-to-point veth in the lab's upper half (.128/25):
        ``a`` gets ``a_if`` at ``.a_last``, the new host ``eth0`` at ``.b_last`` and a default route via ``a``."""
        ns = self.namespace(letter)
        ip("-n", a.ns, "link", "add", a_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", a.ns, "addr", "add", f"{self.addr(a_last)}/25", "dev", a_if)
        ip("-n", a.ns, "link", "set", a_if, "up")
        ip("-n", ns, "addr", "add", f"{self.addr(b_last)}/25", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "route", "add", "default", "via", self.addr(a_last))
        return Host(ns, "eth0", self.addr(b_last))

    def spawn(self, host: Host, args: list[str], log: Path) -> subprocess.Popen:
        """Start ``args`` in ``host``; output to ``log``; stopped by close()."""
        f = open(log, "ab")
        self._logs.append(f)
        proc = subprocess.Popen([*host.prefix, *args], stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for ns in self.namespaces:  # anything still inside (a child of a killed process) is the lab's
            for pid in ip("netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for f in self._logs:
            f.close()
        for ns in reversed(self.namespaces):
            ip("netns", "del", ns, check=False)
        ip("link", "del", self.root_if, check=False)  # gone with the lan namespace already, normally


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab.start()
    finally:
        lab.close()
