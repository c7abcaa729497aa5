"""Site users (the /login realm): look-up, login with throttling, first-login
password change, and user management by administrators (details with team
membership and last login, edit, enable/disable, delete)."""

from __future__ import annotations

import re
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from tether.core.errors import Conflict, Invalid, NotFound, NotPrimary, Unauthorized
from tether.core.passwords import DEFAULT_PASSWORD, check_new_password, hash_password, verify_password
from tether.core.throttle import LoginThrottle
from tether.core.validate import Bool, parse_model

from . import permissions as P
from .config_tables import team_members
from .config_tables import teams as teams_t
from .tables import users

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
REALM = "site"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    is_admin: bool
    permissions: frozenset[str]
    must_change_password: bool
    enabled: bool

    @property
    def granted(self) -> frozenset[str]:
        return frozenset(P.ALL) if self.is_admin else self.permissions

    def public(self) -> dict:
        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "is_admin": self.is_admin, "permissions": sorted(self.granted), "enabled": self.enabled,
                "must_change_password": self.must_change_password}


def _user(row) -> User:
    return User(row["id"], row["username"], row["display_name"], bool(row["is_admin"]),
                frozenset(row["permissions"] or []), bool(row["must_change_password"]), bool(row["enabled"]))


class Users:
    def __init__(self, engine: sa.Engine, throttle: LoginThrottle):
        self.engine = engine
        self.throttle = throttle

    def get(self, username: str) -> User:
        with self.engine.connect() as c:
            row = c.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        if row is None:
            raise NotFound(f"no user named {username!r}")
        return _user(row)

    def list(self) -> list[User]:
        with self.engine.connect() as c:
            return [_user(r) for r in c.execute(sa.select(users).order_by(users.c.username)).mappings()]

    def with_default_password(self) -> list[str]:
        """Enabled local users whose password is still the default (the readiness audit, DR-01). Only
        users who must change their password at next login are checked: any other has chosen one."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(users.c.username, users.c.password_hash).where(
                users.c.must_change_password.is_(True), users.c.enabled.is_(True))).all()
        return [r.username for r in rows if r.password_hash and not r.password_hash.startswith("!")
                and verify_password(r.password_hash, DEFAULT_PASSWORD)]

    def is_local(self, username: str) -> bool:
        """A local user has this name (not a directory user's row)."""
        from .external import is_directory_hash

        with self.engine.connect() as c:
            stored = c.execute(sa.select(users.c.password_hash).where(users.c.username == username)).scalar()
        return stored is not None and not is_directory_hash(stored)

    def check_password(self, username: str, password: str) -> User | None:
        """The local user whose password this is; None when no local user has this name (a directory
        user's row is not a local user); Unauthorized for a wrong password or a disabled user. Records
        the login time; no throttling (the caller throttles: ``authenticate``, or the login chain)."""
        from .external import is_directory_hash

        with self.engine.connect() as c:
            row = c.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        if row is None or is_directory_hash(row["password_hash"]):
            return None
        if not row["enabled"] or not verify_password(row["password_hash"], password):
            raise Unauthorized("wrong user name or password")
        self._logged_in(row["id"])
        return _user(row)

    def _logged_in(self, user_id: int) -> None:
        try:
            with self.engine.begin() as c:
                c.execute(users.update().where(users.c.id == user_id).values(last_login_at=time.time()))
        except NotPrimary:
            pass  # a backup appliance lets its admins in to see status; last-login is the primary's record

    def authenticate(self, username: str, password: str, source_ip: str | None) -> User:
        """A local user's password check with throttling (the password change's check)."""
        self.throttle.check(REALM, username, source_ip)
        with self.engine.connect() as c:
            row = c.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        if row is None or not row["enabled"] or not verify_password(row["password_hash"], password):
            self.throttle.failure(REALM, username, source_ip)
            raise Unauthorized("wrong user name or password")
        self.throttle.success(REALM, username)
        try:
            with self.engine.begin() as c:
                c.execute(users.update().where(users.c.id == row["id"]).values(last_login_at=time.time()))
        except NotPrimary:
            pass  # a backup appliance lets its admins in to see status; last-login is the primary's record
        return _user(row)

    def change_password(self, username: str, current: str, new: str, source_ip: str | None) -> None:
        from .external import is_directory_hash

        with self.engine.connect() as c:
            stored = c.execute(sa.select(users.c.password_hash).where(users.c.username == username)).scalar()
        if stored and is_directory_hash(stored):
            raise Invalid("this user logs in through a directory; change the password there", field="new_password")
        self.authenticate(username, current, source_ip)
        check_new_password(new, current=current)
        with self.engine.begin() as c:
            c.execute(users.update().where(users.c.username == username)
                      .values(password_hash=hash_password(new), must_change_password=False))

    def create(self, username: str, password: str, *, display_name: str = "", is_admin: bool = False,
               permissions: list[str] = (), must_change_password: bool = True, conn: sa.Connection | None = None) -> User:
        if not isinstance(username, str) or not _USERNAME.match(username):
            raise Invalid("username must be 1-64 letters, digits or . _ @ -, starting with a letter or digit",
                          field="username")
        perms = P.normalize(list(permissions))
        if password != "password" or not must_change_password:
            check_new_password(password, field="password")
        values = dict(username=username, display_name=display_name or username, password_hash=hash_password(password),
                      must_change_password=must_change_password, is_admin=is_admin, permissions=perms,
                      enabled=True, created_at=time.time())
        try:
            if conn is not None:
                conn.execute(users.insert().values(**values))
            else:
                with self.engine.begin() as c:
                    c.execute(users.insert().values(**values))
        except sa.exc.IntegrityError:
            raise Conflict(f"a user named {username!r} already exists", field="username") from None
        return self.get(username) if conn is None else None  # type: ignore[return-value]

    def set_password(self, username: str, new: str, *, must_change: bool = True) -> None:
        """An administrator sets (resets) another user's password."""
        self.get(username)
        check_new_password(new, field="password")
        with self.engine.begin() as c:
            c.execute(users.update().where(users.c.username == username)
                      .values(password_hash=hash_password(new), must_change_password=must_change))


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    display_name: Annotated[str, Field(min_length=1, max_length=128)]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=256)] | None = None
    enabled: Bool = True
    is_admin: Bool = False
    permissions: list[str] = []
    timezone: Annotated[str, Field(max_length=64)] | None = None
    teams: list[Annotated[str, Field(min_length=1, max_length=64)]] = []


class PublicUser(BaseModel):
    """A user as ``User.public`` answers it."""
    id: int
    username: str
    display_name: str
    is_admin: bool
    permissions: list[str]
    enabled: bool
    must_change_password: bool


class UserDetail(PublicUser):
    """A user as ``UserAdmin.detail`` answers it: with e-mail, time zone, teams and last login."""
    email: str | None
    timezone: str | None
    created_at: float
    last_login_at: float | None
    teams: list[str]


class UserAdmin:
    """SITE-01 user accounts as administrators see them: details with team
    membership and last login, editing (enable/disable, teams) and deleting."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def detail(self, username: str, conn: sa.Connection | None = None) -> dict:
        with (nullcontext(conn) if conn else self.engine.connect()) as c:
            row = c.execute(sa.select(users).where(users.c.username == username)).mappings().first()
            if row is None:
                raise NotFound(f"no user named {username!r}")
            teams = [r[0] for r in c.execute(sa.select(team_members.c.team).where(
                team_members.c.username == username).order_by(team_members.c.team))]
        u = _user(row)
        return {**u.public(), "email": row["email"], "timezone": row["timezone"], "created_at": row["created_at"],
                "last_login_at": row["last_login_at"], "teams": teams}

    def list(self) -> list[dict]:
        with self.engine.connect() as c:
            names = [r[0] for r in c.execute(sa.select(users.c.username).order_by(users.c.username))]
            return [self.detail(n, c) for n in names]

    def update(self, username: str, data: object, actor: str) -> dict:
        body = parse_model(UserUpdate, data)
        perms = P.normalize(body.permissions)
        with self.engine.begin() as c:
            if c.execute(sa.select(users.c.id).where(users.c.username == username)).first() is None:
                raise NotFound(f"no user named {username!r}")
            if username == actor and (not body.enabled or not body.is_admin and self._is_admin(c, username)):
                raise Conflict("you cannot disable yourself or remove your own administrator rights",
                               field="enabled" if not body.enabled else "is_admin")
            for i, t in enumerate(body.teams):
                if c.execute(sa.select(teams_t.c.name).where(teams_t.c.name == t)).first() is None:
                    raise Invalid(f"teams.{i}: no team named {t!r}", field=f"teams.{i}")
            c.execute(users.update().where(users.c.username == username).values(
                display_name=body.display_name, email=body.email, enabled=body.enabled, is_admin=body.is_admin,
                permissions=perms, timezone=body.timezone))
            current = {r[0] for r in c.execute(sa.select(team_members.c.team).where(
                team_members.c.username == username))}
            for t in sorted(current - set(body.teams)):
                c.execute(team_members.delete().where(team_members.c.team == t, team_members.c.username == username))
            for t in sorted(set(body.teams) - current):
                c.execute(team_members.insert().values(team=t, username=username, role="member"))
        return self.detail(username)

    @staticmethod
    def _is_admin(c, username: str) -> bool:
        return bool(c.execute(sa.select(users.c.is_admin).where(users.c.username == username)).scalar())

    def delete(self, username: str, actor: str) -> dict:
        from .resources import referrers

        if username == actor:
            raise Conflict("you cannot delete yourself", field="username")
        with self.engine.begin() as c:
            if c.execute(sa.select(users.c.id).where(users.c.username == username)).first() is None:
                raise NotFound(f"no user named {username!r}")
            c.execute(team_members.delete().where(team_members.c.username == username))
            used = referrers(c, users, username)
            if used:
                raise Conflict(f"user {username!r} is still used by {', '.join(used)}",
                               hint="remove the user from group policies and presentations first")
            c.execute(users.delete().where(users.c.username == username))
        return {"username": username, "deleted": True}
