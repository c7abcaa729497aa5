"""One installed site: its database engine (SQLite by default, PostgreSQL by
URL) with change-log capture, and the services over it: users and their
administration, API accounts, sessions, audit, configuration kinds and
settings sections, the file store, logged history and outbound events."""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa

from tether.core.audit import AuditLog
from tether.core.db import make_engine, sqlite_url
from tether.core.paths import DataDir
from tether.core.sessions import SessionStore
from tether.core.throttle import LoginThrottle

from . import changelog
from .api_accounts import ApiAccounts
from .authn import Authenticator
from .events import Events
from .filestore import FileStore
from .history import History
from .install import SiteInfo, read_info
from .resources import ConfigStore
from .storage import Stores, local_stores
from .tables import audit_log, sessions
from .users import UserAdmin, Users


class Site:
    def __init__(self, data: DataDir, throttle: LoginThrottle, forward: Callable[[dict], None] | None = None,
                 url: str | None = None, fence: Callable[[], tuple[int, int | None]] | None = None,
                 stores: Stores | None = None, schema: str | None = None):
        self.data = data
        self.engine: sa.Engine = make_engine(url or sqlite_url(data.site_db), schema)
        changelog.install(self.engine, fence)
        self._forward = forward
        self.users = Users(self.engine, throttle)
        self.user_admin = UserAdmin(self.engine)
        self.api_accounts = ApiAccounts(self.engine, throttle)
        self.sessions = SessionStore(self.engine, sessions)
        self.events = Events(self.engine, lambda: self.info().name)
        self.audit = AuditLog(self.engine, audit_log, "site", self._on_audit)
        self.authn = Authenticator(self.engine, self.users, self.audit, data.runtime_dir)  # every login's chain
        self.config = ConfigStore(self.engine)
        self.files = FileStore(self.engine, None)
        self.use_stores(stores or local_stores(data))
        self.history = History(self.engine, self.events.emit)

    def use_stores(self, stores: Stores) -> None:
        """Where the file store's and the recordings' bytes are (local disk or a bucket, OPS-06)."""
        self.stores = stores
        self.files.blobs = stores.files
        self.recordings = stores.recordings

    def _on_audit(self, event: dict) -> None:
        if self._forward:
            self._forward(event)
        self.events.on_audit(event)

    def info(self) -> SiteInfo:
        info = read_info(self.engine)
        assert info is not None, "site database without site_info"
        return info

    @property
    def edition(self) -> str:
        return self.info().edition

    def close(self) -> None:
        self.events.close()
        self.engine.dispose()
