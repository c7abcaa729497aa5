"""The Kerberos security provider (SITE-01): single sign-on on the HTML login
by SPNEGO (HTTP ``Authorization: Negotiate``, RFC 4559) through gssapi,
accepted with the site's keytab (the provider's file). The keytab is written
for the moment of the acceptance only (mode 0600, in the appliance's runtime
directory) and removed at once; no process-wide Kerberos setting is changed.

The client principal must belong to the provider's realm; its first
component is the user name. Kerberos carries no group list this appliance
reads, so the groups of a Kerberos user are those an LDAP provider of the
site reports for the same user name (``lookup``), as with Active Directory.
Kerberos does not check passwords typed into forms: for those the chain asks
the other providers (``authenticate`` answers "not mine")."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tether.core.errors import Unauthorized

from .external import ExternalUser, Report, Unavailable
from .users import Users

SPNEGO = "1.3.6.1.5.5.2"


class KerberosProvider:
    def __init__(self, row: dict, users: Users, scratch: Path | None = None):
        self.row, self.users, self.scratch = row, users, scratch
        self.name = row["name"]

    def authenticate(self, username: str, password: str, source_ip: str | None):
        return None  # SPNEGO only (``accept``); typed passwords are for the other providers

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
        """The "test" action: can this appliance accept tickets with the stored keytab?"""
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
        report.add("negotiate", True, "browsers that hold a ticket of this realm log in at /login/negotiate; "
                                      "passwords typed into the form are checked by the other providers")
        return None


def _gssapi():
    """(gssapi, GSSError); Unavailable when the optional package is not installed."""
    try:
        import gssapi
        from gssapi.exceptions import GSSError
    except ImportError:
        raise Unavailable("Kerberos needs the gssapi package: pip install 'tether[kerberos]' (it builds against "
                          "MIT krb5: Debian libkrb5-dev and gcc)") from None
    return gssapi, GSSError
