"""API accounts (SITE-06): a client id and secret exchanged at the token
endpoint (OAuth 2 client-credentials style) for a short-lived bearer token
that carries exactly the permissions the account was granted.

The client secret is shown once at creation and stored only as an argon2id
hash; tokens are random and stored as SHA-256 hashes with their expiry, which
runs on ``tether.core.clock``.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import BaseModel

from tether.core import clock
from tether.core.errors import Conflict, Invalid, NotFound, Unauthorized
from tether.core.passwords import hash_password, verify_password
from tether.core.shapes import of_table
from tether.core.sessions import token_hash
from tether.core.throttle import LoginThrottle

from . import permissions as P
from .tables import api_accounts, api_tokens

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
REALM = "api"


@dataclass(frozen=True)
class ApiPrincipal:
    account_id: int
    name: str
    granted: frozenset[str]


LISTED = ("id", "name", "client_id", "permissions", "enabled", "token_ttl", "created_at", "created_by")
ApiAccount = of_table(api_accounts, "ApiAccount", only=LISTED)  # as ``ApiAccounts.list`` answers it


class ApiAccountRef(BaseModel):
    name: str
    client_id: str


class NewApiAccountSecret(ApiAccountRef):
    """A new account, with its client secret: the only time it is shown."""
    client_secret: str
    permissions: list[str]
    token_ttl: int


class IssuedToken(BaseModel):
    """The token endpoint's answer (OAuth 2 client credentials)."""
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class ApiAccounts:
    def __init__(self, engine: sa.Engine, throttle: LoginThrottle):
        self.engine = engine
        self.throttle = throttle

    def create(self, name: str, permissions: list[str], created_by: str, token_ttl: int = 900) -> dict:
        if not isinstance(name, str) or not _NAME.match(name):
            raise Invalid("name must be 1-64 letters, digits, spaces or . _ -", field="name")
        perms = P.normalize(list(permissions))
        if not perms:
            raise Invalid("grant at least one permission", field="permissions")
        if not isinstance(token_ttl, int) or not 1 <= token_ttl <= 86400:
            raise Invalid("token_ttl must be between 1 and 86400 seconds", field="token_ttl")
        client_id = "tc_" + secrets.token_hex(12)
        secret = secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as c:
                c.execute(api_accounts.insert().values(
                    name=name, client_id=client_id, secret_hash=hash_password(secret), permissions=perms,
                    enabled=True, token_ttl=token_ttl, created_at=time.time(), created_by=created_by))
        except sa.exc.IntegrityError:
            raise Conflict(f"an API account named {name!r} already exists", field="name") from None
        return {"name": name, "client_id": client_id, "client_secret": secret, "permissions": perms,
                "token_ttl": token_ttl}

    def list(self) -> list[dict]:
        cols = [api_accounts.c[n] for n in LISTED]
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(sa.select(*cols).order_by(api_accounts.c.name)).mappings()]

    def delete(self, client_id: str) -> dict:
        with self.engine.begin() as c:
            row = c.execute(sa.select(api_accounts).where(api_accounts.c.client_id == client_id)).mappings().first()
            if row is None:
                raise NotFound(f"no API account with client id {client_id!r}")
            c.execute(api_tokens.delete().where(api_tokens.c.account_id == row["id"]))
            c.execute(api_accounts.delete().where(api_accounts.c.id == row["id"]))
        return {"name": row["name"], "client_id": client_id}

    def issue_token(self, client_id: str, client_secret: str, source_ip: str | None) -> dict:
        self.throttle.check(REALM, client_id, source_ip)
        with self.engine.connect() as c:
            row = c.execute(sa.select(api_accounts).where(api_accounts.c.client_id == client_id)).mappings().first()
        if row is None or not row["enabled"] or not verify_password(row["secret_hash"], client_secret):
            self.throttle.failure(REALM, client_id, source_ip)
            raise Unauthorized("invalid client credentials")
        self.throttle.success(REALM, client_id)
        token = secrets.token_urlsafe(32)
        now = clock.now()
        with self.engine.begin() as c:
            c.execute(api_tokens.delete().where(api_tokens.c.expires_at < now))
            c.execute(api_tokens.insert().values(token_hash=token_hash(token), account_id=row["id"],
                                                 expires_at=now + row["token_ttl"], created_at=now))
        return {"access_token": token, "token_type": "Bearer", "expires_in": row["token_ttl"],
                "scope": " ".join(row["permissions"])}

    def principal(self, token: str) -> ApiPrincipal | None:
        q = (sa.select(api_accounts.c.id, api_accounts.c.name, api_accounts.c.permissions, api_accounts.c.enabled,
                       api_tokens.c.expires_at)
             .join(api_tokens, api_tokens.c.account_id == api_accounts.c.id)
             .where(api_tokens.c.token_hash == token_hash(token)))
        with self.engine.connect() as c:
            row = c.execute(q).mappings().first()
        if row is None or not row["enabled"] or row["expires_at"] < clock.now():
            return None
        return ApiPrincipal(row["id"], row["name"], frozenset(row["permissions"]))
