"""A real BIND 9 server (Debian's ``named``) on 127.0.0.1 for the DNS swing
tests: one zone, ``tether.test``, updatable with a TSIG key (RFC 2136), run in
the foreground from a temporary directory and stopped at the end."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import pytest

from tests.helpers import free_port, stop_process

NAMED = shutil.which("named") or "/usr/sbin/named"
ZONE = "tether.test."
KEY_NAME = "tether-swing"


@dataclass
class Bind:
    port: int
    secret: str
    proc: subprocess.Popen
    log: object = None

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)
        if self.log is not None:
            self.log.close()

    def a_record(self, name: str) -> list[str]:
        q = dns.message.make_query(name, "A")
        answer = dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=3)
        return sorted(str(r) for rrset in answer.answer for r in rrset)


def start_bind(tmp: Path, records: dict[str, str]) -> Bind:
    if not os.path.exists(NAMED):
        if os.environ.get("CI"):
            pytest.fail("BIND is missing in CI; scripts/install-system-deps should have installed bind9")
        pytest.skip("BIND (bind9) is not installed (scripts/install-system-deps)")
    d = tmp / "bind"
    d.mkdir()
    port = free_port("127.0.0.1")
    secret = base64.b64encode(os.urandom(32)).decode()
    (d / "named.conf").write_text(
        f'options {{ directory "{d}"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n'
        f' pid-file "{d}/named.pid"; recursion no; allow-query {{ any; }}; dnssec-validation no; }};\n'
        f'controls {{ }};\n'
        f'key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'
        f'zone "tether.test" {{ type primary; file "{d}/tether.test.zone"; allow-update {{ key "{KEY_NAME}"; }}; }};\n')
    lines = ["$TTL 30", "@ IN SOA ns.tether.test. admin.tether.test. (1 60 60 600 30)", "@ IN NS ns.tether.test.",
             "ns IN A 127.0.0.1"] + [f"{name} IN A {ip}" for name, ip in records.items()]
    (d / "tether.test.zone").write_text("\n".join(lines) + "\n")
    log = open(d / "named.log", "wb")
    proc = subprocess.Popen([NAMED, "-g", "-c", str(d / "named.conf")], stdout=log, stderr=subprocess.STDOUT)
    b = Bind(port, secret, proc, log)
    deadline = time.monotonic() + 20
    while True:
        try:
            b.a_record(f"ns.{ZONE}")
            return b
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                raise RuntimeError(f"named did not start: {(d / 'named.log').read_text()[-2000:]}") from None
            time.sleep(0.1)


@pytest.fixture
def bind(tmp_path):
    started: list[Bind] = []

    def make(records: dict[str, str]) -> Bind:
        b = start_bind(tmp_path, records)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()
