"""A real OpenLDAP server (Debian's ``slapd``) for the LDAP provider tests: its own configuration
and mdb database in a temp dir, StartTLS with a certificate from a test CA, people and groups loaded
with ``slapadd`` before it starts (the memberof overlay keeps ``memberOf`` for groups added while it
runs, as Active Directory does for all), listening on one loopback address; changed while running with
``ldapmodify``/``ldapdelete`` as its root DN, and stopped by the fixture."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from tests.helpers import free_port, stop_process, wait_for

from .pki import make_ca, make_server_cert

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SLAPPASSWD = shutil.which("slappasswd") or "/usr/sbin/slappasswd"
SUFFIX = "dc=tether,dc=test"
ROOT_DN, ROOT_PW = f"cn=admin,{SUFFIX}", "root-secret-for-tests"
READER_DN, READER_PW = f"cn=reader,ou=services,{SUFFIX}", "Reader-pass-1"


def available() -> bool:
    return Path(SLAPD).exists() and Path(SLAPADD).exists() and shutil.which("ldapmodify") is not None


def _hash(password: str) -> str:
    return subprocess.run([SLAPPASSWD, "-s", password], capture_output=True, text=True, check=True).stdout.strip()


def person(uid: str, password: str, display: str, extra: str = "") -> str:
    return (f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {display}\n"
            f"sn: {display.split()[-1]}\ndisplayName: {display}\nmail: {uid}@tether.test\n"
            f"userPassword: {_hash(password)}\n{extra}\n")


def group(cn: str, *uids: str) -> str:
    members = "".join(f"member: uid={u},ou=people,{SUFFIX}\n" for u in uids)
    return f"dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n"


class Slapd:
    def __init__(self, root: Path, ip: str, ldif: str):
        self.root, self.ip = root, ip
        self.port = free_port(ip)
        self.ca, ca_key, ca_cert = make_ca(root, "Tether Test Directory CA")
        self.cert, self.key = make_server_cert(root, ca_key, ca_cert, ip)
        self.other_ca = make_ca(root, "Some Other CA")[0]  # trusts nothing of this server
        (root / "db").mkdir()
        self.conf = root / "slapd.conf"
        self.conf.write_text(f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {root}/slapd.pid
TLSCACertificateFile {self.ca}
TLSCertificateFile {self.cert}
TLSCertificateKeyFile {self.key}
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {root}/db
overlay memberof
access to attrs=userPassword by anonymous auth by self write by * none
access to * by dn.exact="{READER_DN}" read by self read by * none
""")
        base = (f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: tether\no: Tether test\n\n"
                f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
                f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n"
                f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n"
                f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
                f"userPassword: {_hash(READER_PW)}\n\n")
        (root / "data.ldif").write_text(base + ldif)
        subprocess.run([SLAPADD, "-f", str(self.conf), "-l", str(root / "data.ldif")], check=True,
                       capture_output=True, timeout=60)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ldap://{self.ip}:{self.port}"

    def start(self) -> "Slapd":
        self.log = open(self.root / "slapd.log", "ab")
        self.proc = subprocess.Popen([SLAPD, "-f", str(self.conf), "-h", self.url + "/", "-d", "0"],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.proc.poll() is None, (self.root / "slapd.log").read_text()
            try:
                socket.create_connection((self.ip, self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, timeout=20, what="slapd listening")
        return self

    def modify(self, ldif: str) -> None:
        subprocess.run(["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW], input=ldif, text=True,
                       check=True, capture_output=True, timeout=20)

    def delete(self, dn: str) -> None:
        subprocess.run(["ldapdelete", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW, dn], check=True,
                       capture_output=True, timeout=20)

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()
