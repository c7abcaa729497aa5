"""Kerberos password logins (SITE-01): a user name and password typed into
``POST /api/session`` or the representative console, checked against the
provider's KDC and then verified with the site's keytab.

The check runs in a short-lived child process (``python -m
tether.site.kerberos_password``) whose environment alone carries the
provider's Kerberos configuration: a krb5.conf written for the call (the
provider's realm and its KDCs, ``host`` and ``port``; no DNS lookups) and an
in-memory credential cache. MIT krb5 takes its configuration from the process
environment, so doing this in the appliance's own process would let one
provider's realm leak into every other Kerberos call of its threads.

In the child, gssapi obtains the user's initial credentials with the
password (``acquire_cred_with_password``: the KDC checks the password), then
the credentials are verified: a security context is initiated from them to
the keytab's service principal (the KDC issues a service ticket) and
accepted with the keytab. Only a KDC that knows the service's key can make
that ticket, so a forged KDC answer is never trusted. The password reaches
the child on its standard input, never its command line or environment.

``check`` returns the steps (kdc, password, verify) and the outcome:
``ok``, ``unknown`` (no such principal), ``refused`` (wrong password,
disabled or expired principal), ``unavailable`` (no KDC answered, or the
ticket did not verify with the keytab)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# MIT krb5 minor status codes (com_err table "krb5", base -1765328384) this module tells apart
_BASE = 0x96C73A00
C_PRINCIPAL_UNKNOWN = _BASE + 6
REFUSED = {_BASE + 18: "the principal is disabled (client revoked)", _BASE + 23: "the password has expired",
           _BASE + 24: "the KDC refused the password (pre-authentication failed)",
           _BASE + 31: "the KDC refused the password (the reply does not decrypt with it)",
           _BASE + 12: "the KDC's policy refused the login"}
UNREACHABLE = {_BASE + 156: "no KDC of the realm answered", _BASE + 154: "the realm is unknown to the configuration"}


@dataclass
class Outcome:
    result: str  # ok, unknown, refused, unavailable
    steps: list[tuple[str, bool, str]] = field(default_factory=list)
    service: str | None = None


def krb5_conf(realm: str, hosts: list[str], port: int | None) -> str:
    """The krb5.conf of one provider: its realm, its KDCs in order, TCP (no DNS, no reverse lookups)."""
    def kdc(h: str) -> str:
        h = f"[{h}]" if ":" in h else h  # an IPv6 address
        return f"        kdc = {h}:{port}\n" if port else f"        kdc = {h}\n"
    return (f"[libdefaults]\n    default_realm = {realm}\n    dns_lookup_kdc = false\n"
            f"    dns_lookup_realm = false\n    dns_canonicalize_hostname = false\n    rdns = false\n"
            f"    udp_preference_limit = 1\n[realms]\n    {realm} = {{\n{''.join(kdc(h) for h in hosts)}    }}\n")


def _write(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def check(realm: str, hosts: list[str], port: int | None, keytab: Path, username: str, password: str,
          scratch: Path, timeout: float) -> Outcome:
    """Ask the KDC about ``username@realm`` with ``password`` and verify the answer with ``keytab``."""
    conf = _write(scratch / f"krb5-{secrets.token_hex(8)}.conf", krb5_conf(realm, hosts, port).encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRB5")}
    env.update(KRB5_CONFIG=str(conf), KRB5CCNAME="MEMORY:tether-login")
    request = json.dumps({"principal": f"{username}@{realm}", "password": password, "keytab": str(keytab)})
    try:
        r = subprocess.run([sys.executable, "-m", __name__], input=request, capture_output=True, text=True,
                           env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Outcome("unavailable", [("kdc", False, f"no KDC answered within {timeout:g} s ({', '.join(hosts)})")])
    finally:
        conf.unlink(missing_ok=True)
    try:
        got = json.loads(r.stdout)
        return Outcome(got["result"], [tuple(s) for s in got["steps"]], got.get("service"))
    except (ValueError, KeyError, TypeError):
        return Outcome("unavailable", [("kdc", False, f"the Kerberos check failed (exit {r.returncode}): "
                                                      f"{r.stderr.strip()[-300:]}")])


def _child(request: dict) -> dict:
    """The check itself, in the child process (its environment names the provider's krb5.conf)."""
    import gssapi
    import gssapi.raw as graw
    from gssapi.exceptions import GSSError

    steps: list[tuple[str, bool, str]] = []
    principal = request["principal"]
    try:
        acceptor = gssapi.Credentials(usage="accept", store={"keytab": request["keytab"]})
        service = str(acceptor.inquire().name)
    except GSSError as e:
        steps.append(("verify", False, f"the keytab cannot accept tickets: {e.gen_message()}"))
        return {"result": "unavailable", "steps": steps}
    try:
        name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
        creds = graw.acquire_cred_with_password(name, request["password"].encode(), usage="initiate").creds
    except GSSError as e:
        code = (e.min_code or 0) & 0xFFFFFFFF
        if code in UNREACHABLE:
            steps.append(("kdc", False, f"{UNREACHABLE[code]}: {e.gen_message()}"))
            return {"result": "unavailable", "steps": steps}
        steps.append(("kdc", True, "the KDC answered"))
        if code == C_PRINCIPAL_UNKNOWN:
            steps.append(("password", False, f"the KDC has no principal {principal}"))
            return {"result": "unknown", "steps": steps}
        steps.append(("password", False, f"{REFUSED.get(code, 'the KDC refused the login')} for {principal}"))
        return {"result": "refused", "steps": steps}
    steps.append(("kdc", True, "the KDC answered"))
    steps.append(("password", True, f"the KDC accepted the password of {principal}"))
    try:
        target = gssapi.Name(service, gssapi.NameType.kerberos_principal)
        initiator = gssapi.SecurityContext(name=target, creds=gssapi.Credentials(creds), usage="initiate",
                                           mech=gssapi.MechType.kerberos)
        token = initiator.step()
        acceptor_ctx = gssapi.SecurityContext(creds=acceptor, usage="accept")
        acceptor_ctx.step(token)
        who = str(acceptor_ctx.initiator_name) if acceptor_ctx.complete else ""
    except GSSError as e:
        steps.append(("verify", False, f"the KDC's ticket for {service} does not verify with the keytab (a re-keyed "
                                       f"service, or a KDC that is not the realm's): {e.gen_message()}"))
        return {"result": "unavailable", "steps": steps, "service": service}
    if who != principal:
        steps.append(("verify", False, f"the verified ticket names {who or 'nobody'}, not {principal}"))
        return {"result": "unavailable", "steps": steps, "service": service}
    steps.append(("verify", True, f"the ticket was verified with the keytab of {service}"))
    return {"result": "ok", "steps": steps, "service": service}


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.stdin.read()))))
