"""Who may log in to the representative console, and how: an ordered chain
of authentication providers. Local site users are always first; the
security providers configured under /login (LDAP, RADIUS, Kerberos: SITE-01)
follow in priority order, each through the implementation registered for
its kind in ``PROVIDERS``. No external kind is wired yet: configured
providers of those kinds are skipped (and said so in the log), so adding
LDAP means registering one class here, nothing in the hub or the clients."""

from __future__ import annotations

import logging
from typing import Callable, Protocol

import sqlalchemy as sa

from tether.core.errors import Unauthorized

from .config_tables import security_providers
from .users import User, Users

log = logging.getLogger("tether.site.authn")


class Provider(Protocol):
    name: str

    def authenticate(self, username: str, password: str, source_ip: str | None) -> User | None:
        """The user, None when the provider does not know this user; raise Unauthorized on a wrong password."""


class LocalProvider:
    name = "local"

    def __init__(self, users: Users):
        self.users = users

    def authenticate(self, username: str, password: str, source_ip: str | None) -> User | None:
        return self.users.authenticate(username, password, source_ip)


# kind -> factory(provider row, users) for external directories; filled as they are wired
PROVIDERS: dict[str, Callable[[dict, Users], Provider]] = {}


class Authenticator:
    def __init__(self, engine: sa.Engine, users: Users):
        self.engine, self.users = engine, users

    def chain(self) -> list[Provider]:
        out: list[Provider] = [LocalProvider(self.users)]
        with self.engine.connect() as c:
            rows = c.execute(sa.select(security_providers).where(security_providers.c.enabled.is_(True))
                             .order_by(security_providers.c.priority, security_providers.c.name)).mappings()
            for row in rows:
                factory = PROVIDERS.get(row["kind"])
                if factory is None:
                    log.info("security provider %r (%s) is configured but its kind is not wired yet; skipped",
                             row["name"], row["kind"])
                    continue
                out.append(factory(dict(row), self.users))
        return out

    def authenticate(self, username: str, password: str, source_ip: str | None) -> User:
        last: Unauthorized | None = None
        for provider in self.chain():
            try:
                user = provider.authenticate(username, password, source_ip)
            except Unauthorized as e:
                last = e
                continue
            if user is not None:
                return user
        raise last or Unauthorized("wrong user name or password")
