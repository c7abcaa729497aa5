"""The /appliance administrator account (APPL-05): admin / password on a fresh
appliance, a forced password change at first login, throttled logins."""

from __future__ import annotations

import time

import sqlalchemy as sa

from tether.core.errors import Unauthorized
from tether.core.passwords import DEFAULT_PASSWORD, check_new_password, hash_password, verify_password
from tether.core.throttle import LoginThrottle

from .store import admin_account

REALM = "appliance"
DEFAULT_ADMIN = "admin"


def create_default(conn: sa.Connection) -> None:
    conn.execute(admin_account.insert().values(username=DEFAULT_ADMIN, password_hash=hash_password(DEFAULT_PASSWORD),
                                               must_change_password=True, password_changed_at=None))


class AdminAccount:
    def __init__(self, engine: sa.Engine, throttle: LoginThrottle):
        self.engine = engine
        self.throttle = throttle

    def _row(self, username: str):
        with self.engine.connect() as c:
            return c.execute(sa.select(admin_account).where(admin_account.c.username == username)).mappings().first()

    def must_change_password(self, username: str) -> bool:
        row = self._row(username)
        return bool(row and row["must_change_password"])

    def with_default_password(self) -> list[str]:
        """The /appliance accounts whose password is still the default (the readiness audit, DR-01)."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(admin_account.c.username, admin_account.c.password_hash).where(
                admin_account.c.must_change_password.is_(True))).all()  # a chosen password is never the default
        return [r.username for r in rows if verify_password(r.password_hash, DEFAULT_PASSWORD)]

    def authenticate(self, username: str, password: str, source_ip: str | None) -> None:
        self.throttle.check(REALM, username, source_ip)
        row = self._row(username)
        if row is None or not verify_password(row["password_hash"], password):
            self.throttle.failure(REALM, username, source_ip)
            raise Unauthorized("wrong user name or password")
        self.throttle.success(REALM, username)

    def change_password(self, username: str, current: str, new: str, source_ip: str | None) -> None:
        self.authenticate(username, current, source_ip)
        check_new_password(new, current=current)
        with self.engine.begin() as c:
            c.execute(admin_account.update().where(admin_account.c.username == username).values(
                password_hash=hash_password(new), must_change_password=False, password_changed_at=time.time()))
