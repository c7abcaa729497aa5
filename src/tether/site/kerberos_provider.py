"""The Kerberos security provider (SITE-01): single sign-on on the HTML login
by SPNEGO (HTTP ``Authorization: Negotiate``, RFC 4559) through gssapi,
accepted with the site's keytab (the provider's file). The keytab is written
for the moment of the acceptance only (mode 0600, in the appliance's runtime
directory) and removed at once; no process-wide Kerberos setting is changed.

The client principal must belong to the provider's realm; its first
component is the user name. Kerberos carries no group list this appliance
reads, so the groups of a Kerberos user are those an LDAP provider of the
site reports for the same user name (``lookup``), as with Active Directory.
A user name and password (``POST /api/session``, the representative
console; the HTML form too) are checked by ``password_login`` when the
provider names its KDCs (``host``, ``port``): the KDC checks the password and
its answer is verified with the keytab (``kerberos_password``). Without
``host`` the provider answers tickets only and leaves passwords to the other
providers ("not mine")."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tether.core.errors import Unauthorized

from . import kerberos_password
from .external import ExternalUser, Report, Unavailable
from .users import Users

SPNEGO = "1.3.6.1.5.5.2"


class KerberosProvider:
    def __init__(self, row: dict, users: Users, scratch: Path | None = None):
        self.row, self.users, self.scratch = row, users, scratch
        self.name = row["name"]

    def authenticate(self, username: str, password: str, source_ip: str | None):
        return None  # the chain asks ``password_login`` (the groups come from another provider)

    def _hosts(self) -> list[str]:
        return [h.strip() for h in (self.row.get("host") or "").split(",") if h.strip()]

    def password_login(self, username: str, password: str) -> ExternalUser | None:
        """The user whose password the KDC accepted, its answer verified with the keytab; None when
        the provider names no KDC or has no such principal; Unauthorized on a refused password,
        Unavailable when no KDC answered or the answer did not verify."""
        return self._password(username, password, Report())

    def _password(self, username: str, password: str, report: Report) -> ExternalUser | None:
        hosts = self._hosts()
        if not hosts:
            return None
        if not username or any(ch in username for ch in "@/\\") or not username.isprintable():
            report.add("password", False, f"{username!r} is not a user name of realm {self.row.get('realm')}")
            return None
        if not password:
            report.add("password", False, "an empty password is refused")
            raise Unauthorized("wrong user name or password")
        _gssapi()
        path = self._keytab_file()
        try:
            timeout = (self.row.get("timeout_seconds") or 10) * len(hosts) + 5
            got = kerberos_password.check(self.row["realm"], hosts, self.row.get("port"), path, username, password,
                                          path.parent, timeout)
        finally:
            path.unlink(missing_ok=True)
        for step in got.steps:
            report.add(*step)
        if got.result == "ok":
            return ExternalUser(username=username, display_name=username, email=None, groups=())
        if got.result == "unknown":
            return None
        if got.result == "refused":
            raise Unauthorized("wrong user name or password")
        raise Unavailable(report.steps[-1].detail if report.steps else "the Kerberos check failed")

    def _keytab_file(self) -> Path:
        data = self.row.get("keytab")
        if not data:
            raise Unavailable(f"Kerberos provider {self.name!r} has no keytab")
        if self.scratch is None:
            raise Unavailable("no runtime directory for the keytab")
        self.scratch.mkdir(parents=True, exist_ok=True)
        path = self.scratch / f"keytab-{secrets.token_hex(8)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(data))
        return path

    def accept(self, token: bytes) -> tuple[ExternalUser, bytes | None]:
        """The user a SPNEGO token proves (and the answer token for mutual authentication);
        Unauthorized for a token that does not verify or names another realm."""
        gssapi, GSSError = _gssapi()

        path = self._keytab_file()
        try:
            try:
                creds = gssapi.Credentials(usage="accept", store={"keytab": str(path)})
                ctx = gssapi.SecurityContext(creds=creds, usage="accept")
                out = ctx.step(token)
                complete = ctx.complete  # raises the error of a step that answered with a rejection
                principal = str(ctx.initiator_name) if complete else ""
            except GSSError as e:
                raise Unauthorized(f"the Kerberos ticket was not accepted: {e.gen_message()}") from None
        finally:
            path.unlink(missing_ok=True)
        if not complete:
            raise Unauthorized("the Negotiate exchange needs more steps than a single ticket; not supported")
        user, _, realm = principal.rpartition("@")
        if not user or realm.upper() != (self.row.get("realm") or "").upper() or "/" in user:
            raise Unauthorized(f"the principal {principal} is not a user of realm {self.row.get('realm')}")
        return ExternalUser(username=user, display_name=user, email=None, groups=()), out

    def walk(self, username: str, password: str, report: Report) -> ExternalUser | None:
        """The "test" action: can this appliance accept tickets with the stored keytab? With a password,
        also the password login's steps (kdc, password, verify)."""
        try:
            gssapi, GSSError = _gssapi()
            path = self._keytab_file()
        except Unavailable as e:
            report.add("keytab", False, e.message)
            raise
        try:
            creds = gssapi.Credentials(usage="accept", store={"keytab": str(path)})
            creds.inquire()
        except GSSError as e:
            report.add("keytab", False, f"the keytab cannot be used to accept tickets: {e.gen_message()}")
            raise Unavailable(report.steps[-1].detail) from None
        finally:
            path.unlink(missing_ok=True)
        report.add("keytab", True, f"the keytab is usable to accept tickets of realm {self.row.get('realm')}")
        report.add("negotiate", True, "browsers that hold a ticket of this realm log in at /login/negotiate")
        if not password:
            return None  # a keytab check only
        if not self._hosts():
            report.add("kdc", False, "no KDC is configured (host): passwords are checked by the other providers")
            raise Unavailable(report.steps[-1].detail)
        return self._password(username, password, report)


def _gssapi():
    """(gssapi, GSSError); Unavailable when the optional package is not installed."""
    try:
        import gssapi
        from gssapi.exceptions import GSSError
    except ImportError:
        raise Unavailable("Kerberos needs the gssapi package: pip install 'tether[kerberos]' (it builds against "
                          "MIT krb5: Debian libkrb5-dev and gcc)") from None
    return gssapi, GSSError
