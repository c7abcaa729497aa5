"""Site users (the /login realm): look-up, login with throttling, first-login
password change, and user management by administrators."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import sqlalchemy as sa

from tether.core.errors import Conflict, Invalid, NotFound, Unauthorized
from tether.core.passwords import check_new_password, hash_password, verify_password
from tether.core.throttle import LoginThrottle

from . import permissions as P
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

    def authenticate(self, username: str, password: str, source_ip: str | None) -> User:
        self.throttle.check(REALM, username, source_ip)
        with self.engine.connect() as c:
            row = c.execute(sa.select(users).where(users.c.username == username)).mappings().first()
        if row is None or not row["enabled"] or not verify_password(row["password_hash"], password):
            self.throttle.failure(REALM, username, source_ip)
            raise Unauthorized("wrong user name or password")
        self.throttle.success(REALM, username)
        with self.engine.begin() as c:
            c.execute(users.update().where(users.c.id == row["id"]).values(last_login_at=time.time()))
        return _user(row)

    def change_password(self, username: str, current: str, new: str, source_ip: str | None) -> None:
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
