"""What every external security provider (LDAP, RADIUS, Kerberos: SITE-01)
shares with the login chain: the identity a directory vouches for
(``ExternalUser``), the steps of a provider check in an administrator's words
(``Step``, ``Report``), the error that makes the chain skip a provider it
cannot reach (``Unavailable``), and the site's record of a directory user.

A directory user who logs in gets a row in ``users`` (so that sessions, the
audit log and user lists work as for local users) whose password hash is the
marker ``!directory:<provider>``: it never verifies as a password, so such a
user can only log in through that provider, and the directory stays the
authority (a user disabled or removed there cannot log in any more). A local
user of the same name is never taken over by a directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from tether.core.errors import NotPrimary, TetherError, Unauthorized

from .tables import users

MARKER = "!directory:"


class Unavailable(TetherError):
    """The provider could not be asked (unreachable, TLS refused, service bind refused, misconfigured):
    the chain skips it and audits why."""

    status = 503
    code = "provider_unavailable"


class ChallengeRequired(TetherError):
    """The provider accepted the password and asks for more (RADIUS Access-Challenge: a one-time
    code); ``state`` is what must be sent back with the answer."""

    status = 401
    code = "challenge_required"

    def __init__(self, message: str, *, state: bytes | None):
        super().__init__(message)
        self.state = state


class Challenge(TetherError):
    """What a login face gets for a challenge: the server's message and the token that names the
    pending login (``Authenticator.respond``)."""

    status = 401
    code = "challenge_required"

    def __init__(self, message: str, token: str):
        super().__init__(message, hint="send the one-time code with this challenge token")
        self.token = token

    def to_dict(self) -> dict:
        return {**super().to_dict(), "challenge": self.token}


@dataclass(frozen=True)
class ExternalUser:
    username: str
    display_name: str
    email: str | None
    groups: tuple[str, ...]  # group names as the directory gives them (cn, or the RADIUS Class)


@dataclass(frozen=True)
class Step:
    step: str  # connect, tls, bind, search, user-bind, groups, request, ...
    ok: bool
    detail: str

    def public(self) -> dict:
        return {"step": self.step, "ok": self.ok, "detail": self.detail}


@dataclass
class Report:
    """The steps of one provider check, in order; the check stops at the first failed step."""

    steps: list[Step] = field(default_factory=list)
    user: ExternalUser | None = None

    def add(self, step: str, ok: bool, detail: str) -> Step:
        s = Step(step, ok, detail)
        self.steps.append(s)
        return s

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps) and self.user is not None


def provision(engine: sa.Engine, provider: str, ext: ExternalUser):
    """The ``users`` row of a directory user, created on first login and refreshed (display name, e-mail)
    at every login. Refuses a name that belongs to a local user or to another provider's user."""
    from .users import _user  # the row -> User mapping lives with the users

    marker = MARKER + provider
    try:
        return _provision(engine, marker, provider, ext)
    except NotPrimary:  # a backup appliance lets known directory users in to see status, changing nothing
        with engine.connect() as c:
            row = c.execute(sa.select(users).where(users.c.username == ext.username)).mappings().first()
        if row is None or row["password_hash"] != marker or not row["enabled"]:
            raise Unauthorized("this directory user has never logged in on the primary") from None
        return _user(row)


def _provision(engine: sa.Engine, marker: str, provider: str, ext: ExternalUser):
    from .users import _user

    now = time.time()
    with engine.begin() as c:
        row = c.execute(sa.select(users).where(users.c.username == ext.username)).mappings().first()
        if row is None:
            c.execute(users.insert().values(
                username=ext.username, display_name=(ext.display_name or ext.username)[:128], email=ext.email,
                password_hash=marker, must_change_password=False, is_admin=False, permissions=[], enabled=True,
                created_at=now, last_login_at=now))
        else:
            if row["password_hash"] != marker:
                owner = "a local user" if not row["password_hash"].startswith(MARKER) else \
                    f"a user of provider {row['password_hash'][len(MARKER):]!r}"
                raise Unauthorized(f"the user name {ext.username!r} belongs to {owner}, not to provider {provider!r}")
            if not row["enabled"]:
                raise Unauthorized("this user is disabled on this site")
            c.execute(users.update().where(users.c.id == row["id"]).values(
                display_name=(ext.display_name or ext.username)[:128], email=ext.email, last_login_at=now))
        row = c.execute(sa.select(users).where(users.c.username == ext.username)).mappings().first()
    return _user(row)


def is_directory_hash(password_hash: str) -> bool:
    return password_hash.startswith(MARKER)
