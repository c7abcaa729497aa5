"""The LDAP security provider (SITE-01), Active Directory conventions
included, through ldap3: servers in order of preference, StartTLS or LDAPS
checked against the provider's CA bundle (or the system's), a service bind
(or anonymous), a search for the user under the search base with the user
filter and the username attribute (the username escaped, RFC 4515), a bind
as the user's DN with the password given, then the user's groups: the
``memberOf`` attribute of the entry, or (any other ``attr_groups``) a search
for groups whose membership attribute holds the user's DN (``memberUid``:
the username). Group names are the groups' ``cn``.

``check`` runs these steps and reports each one (connect, tls, bind, search,
user-bind, groups); ``authenticate`` is the same walk for the login chain.
A server that cannot be reached, a TLS or service-bind failure is
``Unavailable`` (the next server is tried, then the chain skips the
provider); a wrong password is ``Unauthorized``; an unknown user is None."""

from __future__ import annotations

import ssl

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as lx
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from tether.core.errors import Unauthorized

from .external import ExternalUser, Report, Unavailable, provision
from .users import User, Users


def servers_of(host: str) -> list[str]:
    """``host`` holds one server or several, comma-separated, in order of preference."""
    return [h.strip() for h in (host or "").split(",") if h.strip()]


def _cn(dn: str) -> str:
    try:
        first = parse_dn(dn)[0]
        return first[1] if first[0].lower() == "cn" else dn
    except (lx.LDAPInvalidDnError, IndexError):
        return dn


def _first(entry: dict, attr: str | None) -> str | None:
    if not attr:
        return None
    v = entry.get(attr)
    if isinstance(v, list):
        v = v[0] if v else None
    return None if v in (None, "") else str(v)


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except (lx.LDAPException, OSError):
        pass  # already closed by a failed TLS handshake or by the server


class LdapProvider:
    def __init__(self, row: dict, users: Users):
        self.row, self.users = row, users
        self.name = row["name"]

    # --- the walk ----------------------------------------------------------------------------
    def _tls(self) -> Tls | None:
        if (self.row.get("tls_mode") or "starttls") == "none":
            return None
        ca = self.row.get("keytab")  # for LDAP, the provider's file is the CA bundle to trust (PEM)
        return Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
                   ca_certs_data=ca.decode() if ca else None)

    def _connect(self, host: str, report: Report) -> Connection:
        """An open, TLS-protected (unless tls_mode none), service-bound connection to one server."""
        mode = self.row.get("tls_mode") or "starttls"
        port = self.row.get("port") or (636 if mode == "ldaps" else 389)
        timeout = self.row.get("timeout_seconds") or 10
        server = Server(host, port=port, use_ssl=mode == "ldaps", tls=self._tls(), get_info=NONE,
                        connect_timeout=timeout)
        conn = Connection(server, user=self.row.get("bind_dn") or None, password=self.row.get("bind_password"),
                          receive_timeout=timeout, raise_exceptions=False, auto_referrals=False)
        where = f"{host}:{port}"
        try:
            conn.open()
        except lx.LDAPSocketOpenError as e:
            text = str(e)
            if mode == "ldaps" and ("certificate" in text.lower() or "ssl" in text.lower()):
                report.add("connect", True, f"reached {where}")
                report.add("tls", False, f"the server's certificate is not trusted (LDAPS): {text}")
            else:
                report.add("connect", False, f"cannot reach {where}: {text}")
            raise Unavailable(report.steps[-1].detail) from None
        except lx.LDAPException as e:
            report.add("connect", False, f"cannot reach {where}: {e}")
            raise Unavailable(report.steps[-1].detail) from None
        report.add("connect", True, f"reached {where}")
        if mode == "starttls":
            try:
                ok = conn.start_tls()
            except (lx.LDAPException, ssl.SSLError, OSError) as e:
                _close(conn)
                report.add("tls", False, f"StartTLS failed: the server's certificate is not trusted or TLS was "
                                         f"refused ({e})")
                raise Unavailable(report.steps[-1].detail) from None
            if not ok:
                _close(conn)
                report.add("tls", False, f"the server refused StartTLS: {conn.result.get('description')}")
                raise Unavailable(report.steps[-1].detail)
            report.add("tls", True, "StartTLS negotiated; the server's certificate is trusted")
        elif mode == "ldaps":
            report.add("tls", True, "LDAPS; the server's certificate is trusted")
        else:
            report.add("tls", True, "no TLS (tls_mode none): the bind password crosses the network in clear")
        who = self.row.get("bind_dn") or "anonymous"
        if not conn.bind():
            desc = conn.result.get("description")
            _close(conn)
            report.add("bind", False, f"the service bind as {who} was refused: {desc}")
            raise Unavailable(report.steps[-1].detail)
        report.add("bind", True, f"bound as {who}")
        return conn

    def walk(self, username: str, password: str, report: Report) -> ExternalUser | None:
        """None when the directory has no such user; Unauthorized on a wrong password; Unavailable
        when no server could be asked."""
        hosts = servers_of(self.row.get("host") or "")
        if not hosts:
            report.add("connect", False, "no server is configured")
            raise Unavailable("no server is configured")
        conn, failures = None, []
        for host in hosts:
            try:
                conn = self._connect(host, report)
                break
            except Unavailable as e:
                failures.append(e.message)
        if conn is None:
            raise Unavailable("; ".join(failures))
        try:
            return self._find_and_bind(conn, username, password, report)
        finally:
            _close(conn)

    def _service_connection(self, report: Report) -> Connection:
        failures = []
        for host in servers_of(self.row.get("host") or ""):
            try:
                return self._connect(host, report)
            except Unavailable as e:
                failures.append(e.message)
        raise Unavailable("; ".join(failures) or "no server is configured")

    def lookup(self, username: str) -> ExternalUser | None:
        """The directory's entry and groups for a user another provider vouched for (Kerberos), with
        the service bind only; None when the directory has no such user."""
        report = Report()
        conn = self._service_connection(report)
        try:
            found = self._search(conn, username, report)
            if found is None:
                return None
            dn, a = found
            return self._user(conn, dn, a, username, report)
        finally:
            _close(conn)

    def _search(self, conn: Connection, username: str, report: Report) -> tuple[str, dict] | None:
        """(DN, attributes) of the one entry for ``username``; None when there is none."""
        r = self.row
        base, attr_user = r["search_base"], r.get("attr_username") or "sAMAccountName"
        groups_attr = r.get("attr_groups") or "memberOf"
        filt = f"(&{r.get('user_filter') or '(objectClass=person)'}({attr_user}={escape_filter_chars(username)}))"
        attrs = [a for a in (attr_user, r.get("attr_display_name"), r.get("attr_email")) if a]
        if groups_attr.lower() == "memberof":
            attrs.append(groups_attr)
        if not conn.search(base, filt, SUBTREE, attributes=attrs, size_limit=2):
            if conn.result.get("result") not in (0, 32):  # 32: noSuchObject (base missing) is a misconfiguration too
                report.add("search", False, f"the search under {base} failed: {conn.result.get('description')} "
                                            f"({conn.result.get('message') or 'no message'})")
                raise Unavailable(report.steps[-1].detail)
            if conn.result.get("result") == 32:
                report.add("search", False, f"the search base {base} does not exist")
                raise Unavailable(report.steps[-1].detail)
        found = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if not found:
            report.add("search", False, f"no entry matches {filt} under {base} (unknown, disabled or removed user)")
            return None
        if len(found) > 1:
            report.add("search", False, f"more than one entry matches {filt} under {base}; refusing to guess")
            raise Unauthorized("wrong user name or password")
        entry = found[0]
        report.add("search", True, f"found {entry['dn']}")
        return entry["dn"], entry.get("attributes", {})

    def _user(self, conn: Connection, dn: str, a: dict, username: str, report: Report) -> ExternalUser:
        r = self.row
        attr_user = r.get("attr_username") or "sAMAccountName"
        groups = self._groups(conn, dn, _first(a, attr_user) or username, a, r.get("attr_groups") or "memberOf",
                              report)
        return ExternalUser(username=_first(a, attr_user) or username,
                            display_name=_first(a, r.get("attr_display_name")) or username,
                            email=_first(a, r.get("attr_email")), groups=groups)

    def _find_and_bind(self, conn: Connection, username: str, password: str, report: Report) -> ExternalUser | None:
        found = self._search(conn, username, report)
        if found is None:
            return None
        dn, a = found
        r = self.row
        if not password:  # an empty password would be an unauthenticated bind (RFC 4513 5.1.2): always refused
            report.add("user-bind", False, "an empty password is refused")
            raise Unauthorized("wrong user name or password")
        user_conn = Connection(conn.server, user=dn, password=password, receive_timeout=conn.receive_timeout,
                               raise_exceptions=False, auto_referrals=False)
        try:
            user_conn.open()
            if (r.get("tls_mode") or "starttls") == "starttls" and not user_conn.start_tls():
                report.add("user-bind", False, "StartTLS failed on the connection for the user's bind")
                raise Unavailable(report.steps[-1].detail)
            if not user_conn.bind():
                report.add("user-bind", False, f"the directory refused the password of {dn}: "
                                               f"{user_conn.result.get('description')}")
                raise Unauthorized("wrong user name or password")
        except lx.LDAPException as e:
            report.add("user-bind", False, f"the bind as {dn} failed: {e}")
            raise Unavailable(report.steps[-1].detail) from None
        finally:
            _close(user_conn)
        report.add("user-bind", True, f"the password of {dn} is correct")
        return self._user(conn, dn, a, username, report)

    def _groups(self, conn: Connection, dn: str, username: str, attrs: dict, groups_attr: str,
                report: Report) -> tuple[str, ...]:
        if groups_attr.lower() == "memberof":
            vals = attrs.get(groups_attr) or []
            names = tuple(sorted({_cn(v) for v in (vals if isinstance(vals, list) else [vals])}))
            report.add("groups", True, f"memberOf: {', '.join(names) or 'no groups'}")
            return names
        value = username if groups_attr.lower() == "memberuid" else dn
        filt = f"({groups_attr}={escape_filter_chars(value)})"
        if not conn.search(self.row["search_base"], filt, SUBTREE, attributes=["cn"]):
            if conn.result.get("result") != 0:
                report.add("groups", False, f"the group search {filt} failed: {conn.result.get('description')}")
                return ()
        names = tuple(sorted({_first(e.get("attributes", {}), "cn") or _cn(e["dn"])
                              for e in conn.response or [] if e.get("type") == "searchResEntry"}))
        report.add("groups", True, f"groups with {groups_attr}={value}: {', '.join(names) or 'none'}")
        return names

    # --- the chain's interface ---------------------------------------------------------------
    def authenticate(self, username: str, password: str, source_ip: str | None) -> tuple[User, ExternalUser] | None:
        ext = self.walk(username, password, Report())
        if ext is None:
            return None
        return provision(self.users.engine, self.name, ext), ext
