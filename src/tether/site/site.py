"""One installed site: its database engine and the services over it (users,
API accounts, sessions, audit log, site information)."""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa

from tether.core.audit import AuditLog
from tether.core.db import make_engine, sqlite_url
from tether.core.paths import DataDir
from tether.core.sessions import SessionStore
from tether.core.throttle import LoginThrottle

from .api_accounts import ApiAccounts
from .install import SiteInfo, read_info
from .tables import audit_log, sessions
from .users import Users


class Site:
    def __init__(self, data: DataDir, throttle: LoginThrottle, forward: Callable[[dict], None] | None = None,
                 url: str | None = None):
        self.data = data
        self.engine: sa.Engine = make_engine(url or sqlite_url(data.site_db))
        self.users = Users(self.engine, throttle)
        self.api_accounts = ApiAccounts(self.engine, throttle)
        self.sessions = SessionStore(self.engine, sessions)
        self.audit = AuditLog(self.engine, audit_log, "site", forward)

    def info(self) -> SiteInfo:
        info = read_info(self.engine)
        assert info is not None, "site database without site_info"
        return info

    def close(self) -> None:
        self.engine.dispose()
