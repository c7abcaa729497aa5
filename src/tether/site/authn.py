"""Who may log in to the site, and how: the one ordered chain of
authentication providers behind every login (the HTML /login form,
``POST /api/session`` and the representative console's first frame).

The chain holds the local site users, then the enabled security providers
configured under /login (SITE-01) in priority order, each through the
implementation registered for its kind in ``PROVIDERS``. A name that
belongs to a local user is answered by the local users alone: a directory
never takes over a local account (a directory entry named "admin" is not the
site's admin), so a local administrator neither waits for nor depends on any
directory. For other names each provider answers "not mine" (None: the next
one is asked), a user, or a refusal (Unauthorized: the next one is still
asked, so one directory's refusal does not hide another's user). A provider
that cannot be asked (``Unavailable``:
unreachable, TLS or service bind refused) is skipped with an audit entry
``authn.provider_unavailable``. Throttling (SEC-01) counts the chain's
outcome once per attempt, whoever answered.

A provider may ask for more (RADIUS Access-Challenge): the chain raises
``Challenge`` with a one-use token (kept in memory here for
``CHALLENGE_SECONDS``) and ``respond`` takes the one-time code. Kerberos
answers tickets (``negotiate`` takes a SPNEGO token) and, through its KDC,
passwords (``password_login``); either way the groups of a Kerberos user are
those of the first LDAP provider that knows the name. An
unexpected error of a provider is treated like an unavailable provider.

``check_provider`` is the per-provider "test" action's domain half: it runs
one provider's steps for a given username and password and reports each."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import sqlalchemy as sa
from pydantic import BaseModel

from tether.core.audit import AuditLog
from tether.core.errors import NotFound, Unauthorized

from .config_tables import security_providers
from .external import Challenge, ChallengeRequired, ExternalUser, Report, Unavailable
from .users import REALM, User, Users


class TestedStep(BaseModel):
    step: str
    ok: bool
    detail: str


class TestedUser(BaseModel):
    username: str
    display_name: str
    email: str | None
    groups: list[str]


class ProviderTest(BaseModel):
    """A security provider's test (``check_provider``), with the group policies the user would get
    when one was found (``actions.config.test_provider``)."""
    provider: str
    kind: str
    enabled: bool
    ok: bool
    outcome: str
    steps: list[TestedStep]
    user: TestedUser | None
    group_policies: list[str] | None = None

log = logging.getLogger("tether.site.authn")


class Provider(Protocol):
    name: str

    def authenticate(self, username: str, password: str,
                     source_ip: str | None) -> tuple[User, ExternalUser | None] | None:
        """(user, what the directory said) or None when the provider does not know this user;
        raise Unauthorized on a wrong password, Unavailable when it cannot be asked."""


class Checkable(Protocol):
    def walk(self, username: str, password: str, report: Report) -> ExternalUser | None: ...


@dataclass(frozen=True)
class Login:
    """A successful login: the site user, the provider that vouched ("local" or a provider's name) and
    the directory groups it reported (matched against group policies' provider_group members)."""

    user: User
    provider: str
    groups: tuple[str, ...] = ()
    groups_from: str | None = None  # the provider that reported the groups, when not ``provider`` (Kerberos)

    @property
    def group_provider(self) -> str:
        return self.groups_from or self.provider


class LocalProvider:
    name = "local"

    def __init__(self, users: Users):
        self.users = users

    def authenticate(self, username: str, password: str, source_ip: str | None):
        user = self.users.check_password(username, password)
        return None if user is None else (user, None)


def _ldap(row: dict, users: Users) -> Provider:
    from .ldap_provider import LdapProvider

    return LdapProvider(row, users)


def _radius(row: dict, users: Users) -> Provider:
    from .radius_provider import RadiusProvider

    return RadiusProvider(row, users)


def _kerberos(row: dict, users: Users) -> Provider:
    from .kerberos_provider import KerberosProvider

    return KerberosProvider(row, users)


# kind -> factory(provider row, users)
PROVIDERS: dict[str, Callable[[dict, Users], Provider]] = {"ldap": _ldap, "radius": _radius,
                                                           "kerberos": _kerberos}
CHALLENGE_SECONDS = 180  # how long a pending one-time-code challenge may be answered
MAX_PENDING = 1000


class Authenticator:
    def __init__(self, engine: sa.Engine, users: Users, audit: AuditLog, scratch: Path | None = None):
        """``scratch``: the appliance's runtime directory (a Kerberos keytab is written there for the
        moment of an acceptance)."""
        self.engine, self.users, self.audit, self.scratch = engine, users, audit, scratch
        self._pending: dict[str, tuple[str, str, bytes | None, float]] = {}  # token -> provider, user, state, until
        self._lock = threading.Lock()

    def chain(self) -> list[Provider]:
        ordered: list[tuple[tuple, Provider]] = [((-1, 0, ""), LocalProvider(self.users))]
        with self.engine.connect() as c:
            rows = c.execute(sa.select(security_providers).where(security_providers.c.enabled.is_(True))).mappings()
            for row in rows:
                factory = PROVIDERS.get(row["kind"])
                if factory is None:
                    log.info("security provider %r (%s) is configured but its kind is not wired yet; skipped",
                             row["name"], row["kind"])
                    continue
                provider = self._build(factory, row)
                ordered.append(((row["priority"], 1, row["name"]), provider))
        return [p for _k, p in sorted(ordered, key=lambda kp: kp[0])]

    def _build(self, factory, row) -> Provider:
        provider = factory(dict(row), self.users)
        if hasattr(provider, "scratch"):
            provider.scratch = self.scratch  # where a Kerberos provider writes its keytab for a moment
        return provider

    def has_kind(self, kind: str) -> bool:
        with self.engine.connect() as c:
            return c.execute(sa.select(security_providers.c.name).where(
                security_providers.c.enabled.is_(True), security_providers.c.kind == kind)).first() is not None

    def _directory_of(self, ext: ExternalUser, chain: list[Provider], source_ip: str | None,
                      report: Report | None = None) -> tuple[ExternalUser, str | None]:
        """A Kerberos user's entry and groups from the first LDAP provider of ``chain`` that knows the
        name: (the user with them, that provider's name), or (the user without groups, None)."""
        for other in chain:
            if not hasattr(other, "lookup"):
                continue
            try:
                found = other.lookup(ext.username)  # type: ignore[attr-defined]
            except Exception as e:  # Unavailable, or what the directory's library did not expect
                reason = e.message if isinstance(e, Unavailable) else f"unexpected error: {type(e).__name__}"
                self.audit.record("-", "authn.provider_unavailable", other.name, source_ip,
                                  {"username": ext.username, "reason": reason[:500]})
                if report is not None:
                    report.add("groups", False, f"LDAP provider {other.name!r} could not be asked: {reason}")
                continue
            if found is not None:
                if report is not None:
                    report.add("groups", True, f"from LDAP provider {other.name!r}: "
                                               f"{', '.join(found.groups) or 'no groups'}")
                return ExternalUser(ext.username, found.display_name, found.email, found.groups), other.name
        if report is not None:
            report.add("groups", True, f"no LDAP provider of the site knows {ext.username!r}: no groups")
        return ext, None

    def _vouched(self, provider: Provider, ext: ExternalUser, chain: list[Provider], source_ip: str | None) -> Login:
        """The login of a user a Kerberos provider vouched for (ticket or password), with the groups of
        the first LDAP provider that knows the name. The directory account is that LDAP provider's when
        there is one (form, password and SSO logins then share one site user), else the Kerberos one's."""
        from .external import provision

        ext, groups_from = self._directory_of(ext, chain, source_ip)
        user = provision(self.engine, groups_from or provider.name, ext)
        return Login(user, provider.name, ext.groups if groups_from else (), groups_from)

    def negotiate(self, token: bytes, source_ip: str | None) -> tuple[Login, bytes | None]:
        """SPNEGO single sign-on (``Authorization: Negotiate``): the first enabled Kerberos provider
        whose keytab accepts the ticket vouches for the user; the user's groups are those the first
        LDAP provider that knows the name reports. (Login, answer token for mutual authentication);
        Unauthorized when no provider accepts the ticket."""
        chain = self.chain()
        last: Unauthorized | None = None
        for provider in chain:
            if not hasattr(provider, "accept"):
                continue
            try:
                ext, out = provider.accept(token)  # type: ignore[attr-defined]
            except Unavailable as e:
                self.audit.record("-", "authn.provider_unavailable", provider.name, source_ip,
                                  {"reason": e.message[:500]})
                continue
            except Unauthorized as e:
                last = e
                continue
            return self._vouched(provider, ext, chain, source_ip), out
        if last is not None:
            log.info("a Negotiate login was refused: %s", last.message)
        raise Unauthorized("the Kerberos ticket was not accepted" if last else "no Kerberos provider is enabled")

    def authenticate(self, username: str, password: str, source_ip: str | None) -> Login:
        throttle = self.users.throttle
        throttle.check(REALM, username, source_ip)
        last: Unauthorized | None = None
        chain = [LocalProvider(self.users)] if self.users.is_local(username) else self.chain()
        for provider in chain:
            try:
                if hasattr(provider, "password_login"):  # Kerberos: the KDC vouches, LDAP tells the groups
                    ext = provider.password_login(username, password)  # type: ignore[attr-defined]
                    login = None if ext is None else self._vouched(provider, ext, chain, source_ip)
                else:
                    got = provider.authenticate(username, password, source_ip)
                    login = None if got is None else Login(got[0], provider.name, got[1].groups if got[1] else ())
            except Unavailable as e:
                log.warning("security provider %r skipped: %s", provider.name, e.message)
                self.audit.record("-", "authn.provider_unavailable", provider.name, source_ip,
                                  {"username": username[:64], "reason": e.message[:500]})
                continue
            except ChallengeRequired as e:
                raise Challenge(e.message, self._remember(provider.name, username, e.state)) from None
            except Unauthorized as e:
                last = e
                continue
            except Exception as e:  # a provider's bug or an answer its library did not expect: skip it
                log.exception("security provider %r failed", provider.name)
                self.audit.record("-", "authn.provider_unavailable", provider.name, source_ip,
                                  {"username": username[:64], "reason": f"unexpected error: {type(e).__name__}"})
                continue
            if login is not None:
                throttle.success(REALM, username)
                return login
        throttle.failure(REALM, username, source_ip)
        if last is not None and last.message != "wrong user name or password":
            log.info("login of %r refused: %s", username[:64], last.message)
        raise Unauthorized("wrong user name or password")

    def _remember(self, provider: str, username: str, state: bytes | None) -> str:
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for t in [t for t, v in self._pending.items() if v[3] < now]:
                del self._pending[t]
            if len(self._pending) >= MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
            self._pending[token] = (provider, username, state, now + CHALLENGE_SECONDS)
        return token

    def respond(self, token: str, response: str, source_ip: str | None) -> Login:
        """Answer a challenge (a one-time code) of a login the chain started; the provider may
        accept, refuse or challenge again."""
        with self._lock:
            pending = self._pending.pop(token or "", None)
        if pending is None or pending[3] < time.monotonic():
            raise Unauthorized("this one-time code request has expired or was already answered; log in again")
        name, username, state, _until = pending
        throttle = self.users.throttle
        throttle.check(REALM, username, source_ip)
        provider = next((p for p in self.chain() if p.name == name), None)
        if provider is None:
            raise Unauthorized("the provider that asked for the code is no longer configured; log in again")
        try:
            user, ext = provider.respond(username, response, state)  # type: ignore[attr-defined]
        except ChallengeRequired as e:
            raise Challenge(e.message, self._remember(name, username, e.state)) from None
        except Unavailable as e:
            self.audit.record("-", "authn.provider_unavailable", name, source_ip,
                              {"username": username[:64], "reason": e.message[:500]})
            throttle.failure(REALM, username, source_ip)
            raise Unauthorized("wrong user name or password") from None
        except Unauthorized:
            throttle.failure(REALM, username, source_ip)
            raise Unauthorized("wrong user name or password") from None
        throttle.success(REALM, username)
        return Login(user, name, ext.groups if ext else ())

    def check_provider(self, name: str, username: str, password: str) -> dict:
        """The steps of asking provider ``name`` about ``username``/``password``, for its "test" action."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(security_providers).where(security_providers.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"no security provider named {name!r}")
        factory = PROVIDERS.get(row["kind"])
        report = Report()
        outcome = "ok"
        if factory is None:
            report.add("configuration", False, f"{row['kind']} providers are not supported yet")
            outcome = "unsupported"
        else:
            provider = self._build(factory, row)
            try:
                report.user = provider.walk(username, password, report)  # type: ignore[attr-defined]
                if report.user is not None and row["kind"] == "kerberos":
                    report.user, _from = self._directory_of(report.user, self.chain(), None, report)
                if report.user is None:
                    outcome = "unknown_user"
            except Unavailable:
                outcome = "unavailable"
            except ChallengeRequired:
                outcome = "challenge"  # the password is right; the server asks for a one-time code next
            except Unauthorized:
                outcome = "refused"
            except Exception as e:
                log.exception("security provider %r failed its test", name)
                report.add("error", False, f"unexpected error: {type(e).__name__}: {e}")
                outcome = "unavailable"
        if row["kind"] == "kerberos" and outcome == "unknown_user" and report.steps and \
                all(s.ok for s in report.steps):
            outcome = "ok"  # a keytab check: no user is looked up
        u = report.user
        passed = report.ok or outcome in ("challenge", "ok") and all(s.ok for s in report.steps) and \
            bool(report.steps)
        return {"provider": name, "kind": row["kind"], "enabled": bool(row["enabled"]), "ok": passed,
                "outcome": outcome, "steps": [s.public() for s in report.steps],
                "user": None if u is None else {"username": u.username, "display_name": u.display_name,
                                                "email": u.email, "groups": list(u.groups)}}
