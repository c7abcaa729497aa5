"""The RADIUS security provider (SITE-01) through pyrad: an Access-Request
(PAP: User-Password hidden with the shared secret, RFC 2865; NAS-Identifier;
a Message-Authenticator, RFC 3579) to each server in order of preference,
``timeout_seconds`` per try and ``RETRIES`` more tries per server. pyrad
accepts only replies whose Response Authenticator is right for the request
and the shared secret, so a forged reply (or a wrong shared secret) is no
answer at all: that server is "unavailable".

Access-Accept logs in (the Class attributes are the user's groups, matched
against group policies' provider_group members); Access-Reject refuses;
Access-Challenge (one-time codes) raises ``ChallengeRequired`` with the
server's Reply-Message and State, and ``respond`` sends the code back with
that State."""

from __future__ import annotations

import io
import socket

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from tether.core.errors import Unauthorized

from .external import ChallengeRequired, ExternalUser, Report, Unavailable, provision
from .ldap_provider import servers_of
from .users import Users

RETRIES = 2  # more tries per server after the first, each after timeout_seconds
_DICTIONARY = """
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string encrypt=1
ATTRIBUTE NAS-IP-Address 4 ipaddr
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE State 24 octets
ATTRIBUTE Class 25 octets
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Message-Authenticator 80 octets
"""
_CODES = {packet.AccessAccept: "Access-Accept", packet.AccessReject: "Access-Reject",
          packet.AccessChallenge: "Access-Challenge"}


def _text(reply, attr: str) -> str:
    try:
        vals = reply[attr]
    except KeyError:
        return ""
    return " ".join(v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in vals)


class RadiusProvider:
    def __init__(self, row: dict, users: Users):
        self.row, self.users = row, users
        self.name = row["name"]

    def _ask(self, username: str, password: str, state: bytes | None, report: Report):
        hosts = servers_of(self.row.get("host") or "")
        secret = (self.row.get("radius_secret") or "").encode()
        if not hosts or not secret:
            report.add("configuration", False, "a RADIUS provider needs a server and a shared secret")
            raise Unavailable(report.steps[-1].detail)
        port = self.row.get("port") or 1812
        timeout = self.row.get("timeout_seconds") or 5
        nas = self.row.get("bind_dn") or "tether"  # a RADIUS provider's NAS identifier is kept in this column
        failures = []
        for host in hosts:
            client = Client(server=host, authport=port, secret=secret, dict=Dictionary(io.StringIO(_DICTIONARY)))
            client.timeout, client.retries = timeout, RETRIES + 1
            req = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=username, NAS_Identifier=nas)
            req["User-Password"] = req.PwCrypt(password)
            if state is not None:
                req["State"] = state
            req.add_message_authenticator()
            try:
                reply = client.SendPacket(req)
            except Timeout:
                report.add("request", False, f"no valid answer from {host}:{port} after {RETRIES + 1} tries of "
                                             f"{timeout} s: the server is down, does not know this appliance as a "
                                             f"client, or answered with a wrong authenticator (wrong shared "
                                             f"secret, or a forged reply)")
                failures.append(report.steps[-1].detail)
                continue
            except (OSError, socket.error) as e:
                report.add("request", False, f"cannot send to {host}:{port}: {e}")
                failures.append(report.steps[-1].detail)
                continue
            finally:
                client._CloseSocket()  # pyrad keeps one socket per client; close it with the attempt
            report.add("request", True, f"{host}:{port} answered {_CODES.get(reply.code, reply.code)} "
                                        f"(the reply's authenticator is valid)")
            return reply
        raise Unavailable("; ".join(failures))

    def _outcome(self, username: str, reply, report: Report) -> ExternalUser:
        message = _text(reply, "Reply-Message")
        if reply.code == packet.AccessAccept:
            groups = tuple(sorted({v.decode(errors="replace") for v in reply.get("Class", [])
                                   if isinstance(v, bytes)}))
            report.add("groups", True, f"Class: {', '.join(groups) or 'none'}")
            return ExternalUser(username=username, display_name=username, email=None, groups=groups)
        if reply.code == packet.AccessChallenge:
            state = (reply.get("State") or [None])[0]
            report.add("challenge", True, f"the server asks for more: {message or '(no message)'}")
            raise ChallengeRequired(message or "Enter the one-time code", state=state)
        report.add("reject", False, f"Access-Reject{': ' + message if message else ''}")
        raise Unauthorized("wrong user name or password")

    def walk(self, username: str, password: str, report: Report) -> ExternalUser | None:
        if not password:
            report.add("request", False, "an empty password is refused")
            raise Unauthorized("wrong user name or password")
        return self._outcome(username, self._ask(username, password, None, report), report)

    def respond(self, username: str, response: str, state: bytes | None):
        report = Report()
        ext = self._outcome(username, self._ask(username, response, state, report), report)
        return provision(self.users.engine, self.name, ext), ext

    def authenticate(self, username: str, password: str, source_ip: str | None):
        ext = self.walk(username, password, Report())
        return provision(self.users.engine, self.name, ext), ext
