"""A real MIT Kerberos KDC (Debian ``krb5-kdc``) for the Kerberos provider tests: a realm of its own
in a temp dir (``kdb5_util create``), principals and the service's keytab made with
``kadmin.local`` (``addprinc``, ``ktadd``), ``krb5kdc -n`` listening on one loopback address, and
``kinit`` for the users' tickets; every program runs with the temp dir's krb5.conf and kdc.conf."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers import free_port, stop_process, wait_for

REALM = "TETHER.TEST"
KRB5KDC = shutil.which("krb5kdc") or "/usr/sbin/krb5kdc"
KDB5_UTIL = shutil.which("kdb5_util") or "/usr/sbin/kdb5_util"
KADMIN = shutil.which("kadmin.local") or "/usr/sbin/kadmin.local"


def available() -> bool:
    return all(Path(p).exists() for p in (KRB5KDC, KDB5_UTIL, KADMIN)) and shutil.which("kinit") is not None


class Kdc:
    def __init__(self, root: Path, ip: str, service_host: str, realm: str = REALM):
        self.root, self.ip, self.realm = root, ip, realm
        self.port = free_port(ip)
        self.service = f"HTTP/{service_host}"
        (root / "krb5.conf").write_text(f"""[libdefaults]
    default_realm = {realm}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
[realms]
    {realm} = {{
        kdc = {ip}:{self.port}
    }}
[domain_realm]
    {service_host} = {realm}
""")
        (root / "kdc.conf").write_text(f"""[kdcdefaults]
    kdc_ports = {self.port}
    kdc_tcp_ports = {self.port}
    kdc_listen = {ip}:{self.port}
    kdc_tcp_listen = {ip}:{self.port}
[realms]
    {realm} = {{
        database_name = {root}/principal
        key_stash_file = {root}/stash
        acl_file = {root}/kadm5.acl
        max_life = 1h
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}
[logging]
    kdc = FILE:{root}/kdc.log
""")
        self.env = {**os.environ, "KRB5_CONFIG": str(root / "krb5.conf"), "KRB5_KDC_PROFILE": str(root / "kdc.conf")}
        subprocess.run([KDB5_UTIL, "create", "-s", "-r", self.realm, "-P", "Master-pass-for-tests-1"], env=self.env,
                       check=True, capture_output=True, timeout=60)
        self.keytab = root / "http.keytab"
        self.kadmin(f"addprinc -randkey {self.service}")
        self.kadmin(f"ktadd -k {self.keytab} {self.service}")
        self.proc: subprocess.Popen | None = None

    def kadmin(self, query: str) -> str:
        r = subprocess.run([KADMIN, "-r", self.realm, "-q", query], env=self.env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stdout + r.stderr
        return r.stdout

    def add_user(self, name: str, password: str) -> None:
        self.kadmin(f"addprinc -pw {password} {name}")

    def start(self) -> "Kdc":
        self.log = open(self.root / "krb5kdc.out", "ab")
        self.proc = subprocess.Popen([KRB5KDC, "-n", "-r", self.realm], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.proc.poll() is None, (self.root / "krb5kdc.out").read_text()
            log = self.root / "kdc.log"
            return log.exists() and "commencing operation" in log.read_text(errors="replace")
        wait_for(up, timeout=20, what="krb5kdc ready")
        return self

    def kinit(self, name: str, password: str, ccache: Path) -> dict:
        """A ticket-granting ticket for ``name`` in ``ccache``; the environment that uses it."""
        env = {**self.env, "KRB5CCNAME": f"FILE:{ccache}"}
        r = subprocess.run(["kinit", name], input=password + "\n", env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        return env

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()
