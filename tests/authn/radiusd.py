"""A real FreeRADIUS server (Debian's ``freeradius``) for the RADIUS provider tests: a minimal
configuration of its own in a temp dir (PAP, the ``files`` module reading a users file the test
writes, one client entry for loopback with the test's shared secret), listening for Access-Requests
on one loopback address, in the foreground (``-f``), stopped by the fixture."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.helpers import free_port, stop_process, wait_for

FREERADIUS = shutil.which("freeradius") or "/usr/sbin/freeradius"


def available() -> bool:
    return Path(FREERADIUS).exists() and Path("/usr/share/freeradius/dictionary").exists()


def _udp_free(ip: str) -> int:
    import socket

    while True:
        port = free_port(ip)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((ip, port))
                return port
            except OSError:
                continue


class Radiusd:
    def __init__(self, root: Path, ip: str, secret: str, users: str):
        self.root, self.ip, self.secret = root, ip, secret
        self.port = _udp_free(ip)
        (root / "dictionary").write_text("$INCLUDE /usr/share/freeradius/dictionary\n")
        (root / "users").write_text(users)
        (root / "radiusd.conf").write_text(f"""
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {root}
raddbdir = {root}
radacctdir = {root}
name = freeradius
confdir = {root}
modconfdir = {root}
run_dir = {root}
db_dir = {root}
libdir = /usr/lib/freeradius
pidfile = {root}/radiusd.pid
max_request_time = 10
cleanup_delay = 1
max_requests = 256
hostname_lookups = no
log {{
    destination = files
    file = {root}/radius.log
    auth = yes
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
}}
thread pool {{
    start_servers = 1
    max_servers = 2
    min_spare_servers = 1
    max_spare_servers = 2
    max_requests_per_server = 0
}}
client loopback {{
    ipaddr = 127.0.0.0/8
    secret = {secret}
    require_message_authenticator = no
    nas_type = other
}}
modules {{
    pap {{
        normalise = yes
    }}
    files {{
        filename = {root}/users
    }}
}}
server default {{
    listen {{
        type = auth
        ipaddr = {ip}
        port = {self.port}
    }}
    authorize {{
        files
        pap
    }}
    authenticate {{
        Auth-Type PAP {{
            pap
        }}
    }}
}}
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Radiusd":
        self.out = open(self.root / "radiusd.out", "ab")
        self.proc = subprocess.Popen([FREERADIUS, "-f", "-d", str(self.root), "-n", "radiusd", "-l", "stdout"],
                                     stdout=self.out, stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.proc.poll() is None, (self.root / "radiusd.out").read_text()
            return "Ready to process requests" in (self.root / "radiusd.out").read_text(errors="replace") or \
                "Ready to process requests" in (self.root / "radius.log").read_text(errors="replace") \
                if (self.root / "radius.log").exists() else \
                "Ready to process requests" in (self.root / "radiusd.out").read_text(errors="replace")
        wait_for(up, timeout=20, what="freeradius ready")
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.out.close()
