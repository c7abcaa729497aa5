"""Login sessions for both realms (/appliance admins, /login site users).

A session is a random 256-bit token handed to the browser in a cookie
(Secure, HttpOnly, SameSite=Strict) or to scripts as a bearer token. Only its
SHA-256 is stored. Each session has its own CSRF token, which HTML forms and
cookie-authenticated JSON calls must echo back (SEC-01). Lifetimes run on
``tether.core.clock``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from tether.core import clock

SESSION_TTL = 8 * 3600.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    username: str
    csrf_token: str
    expires_at: float


class SessionStore:
    def __init__(self, engine: sa.Engine, table: sa.Table, ttl: float = SESSION_TTL):
        self.engine = engine
        self.table = table
        self.ttl = ttl

    def create(self, username: str, source_ip: str | None) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = clock.now()
        s = Session(username, secrets.token_urlsafe(24), now + self.ttl)
        with self.engine.begin() as c:
            c.execute(self.table.delete().where(self.table.c.expires_at < now))
            c.execute(self.table.insert().values(
                token_hash=token_hash(token), username=username, csrf_token=s.csrf_token,
                created_at=now, expires_at=s.expires_at, source_ip=source_ip))
        return token, s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        t = self.table
        with self.engine.connect() as c:
            row = c.execute(sa.select(t).where(t.c.token_hash == token_hash(token))).mappings().first()
        if row is None or row["expires_at"] < clock.now():
            return None
        return Session(row["username"], row["csrf_token"], row["expires_at"])

    def delete(self, token: str) -> None:
        with self.engine.begin() as c:
            c.execute(self.table.delete().where(self.table.c.token_hash == token_hash(token)))

    def delete_user(self, username: str, keep: str | None = None) -> None:
        """End every session of a user (after a password change), except ``keep``."""
        t = self.table
        q = t.delete().where(t.c.username == username)
        if keep:
            q = q.where(t.c.token_hash != token_hash(keep))
        with self.engine.begin() as c:
            c.execute(q)
