"""The site slot: the one place that opens, installs, updates, restores,
swaps and resets the appliance's site (and, with failover, replaces it by
a full sync). Nothing else builds a ``Site`` or rebinds the current one.

Every change goes through ``_replace`` under the slot's lock and ends with
one notification (``subscribe``), so the client hub, the listeners and any
later subscriber hear of every swap through the same path:

    "installed"  a site was installed on a fresh appliance
    "updated"    the site software was updated in place
    "replaced"   the site was swapped for another copy (restore, full sync)
    "removed"    the site is gone (factory reset)
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from tether.backup import restore as restore_mod
from tether.core.errors import NotFound
from tether.core.paths import DataDir
from tether.core.throttle import LoginThrottle
from tether.site import install as site_install
from tether.site import location
from tether.site.package import SitePackage
from tether.site.site import Site

log = logging.getLogger("tether.runtime")


class SiteSlot:
    def __init__(self, data: DataDir, throttle: LoginThrottle, forward: Callable[[dict], None],
                 db_url: Callable[[], str | None], fence: Callable[[], tuple[int, int | None]],
                 stores: Callable[[], object] | None = None):
        self.data = data
        self.stores = stores  # where the site's objects live (site.storage, OPS-06)
        self.throttle = throttle
        self.forward = forward
        self.db_url = db_url
        self.fence = fence
        self.lock = threading.RLock()
        self.site: Site | None = None
        self._subscribers: list[Callable[[str], None]] = []

    def subscribe(self, fn: Callable[[str], None]) -> None:
        self._subscribers.append(fn)

    def _notify(self, what: str) -> None:
        for fn in list(self._subscribers):
            try:
                fn(what)
            except Exception:  # noqa: BLE001 - one subscriber must not keep the others from hearing
                log.exception("site slot subscriber failed on %r", what)

    def database(self) -> location.SiteDatabase | None:
        """Where the current site's database is (None: no site)."""
        if not site_install.site_exists(self.data):
            return None
        return location.of(self.data.site_dir, self.db_url())

    def _open(self) -> Site:
        db = self.database()
        return Site(self.data, self.throttle, self.forward, url=db.url, fence=self.fence, schema=db.schema,
                    stores=self.stores() if self.stores else None)

    def open(self) -> None:
        """At start: finish or undo a restore a crash interrupted, then open the site if there is one."""
        with self.lock:
            restore_mod.recover(self.data, self.db_url())
            if site_install.site_exists(self.data):
                self.site = self._open()

    def require(self) -> Site:
        site = self.site
        if site is None:
            raise NotFound("no site is installed on this appliance", hint="install a site package in /appliance")
        return site

    # --- changes ------------------------------------------------------------------------------------
    def install(self, pkg: SitePackage, before_update: Callable[[], object]) -> tuple[str, object]:
        """Install ``pkg`` on a fresh appliance, or update the site to it (``before_update`` runs
        first: the BK-10 backup). Returns the action ("none": this very version is installed already, e.g.
        by a restore; nothing changes) and what ``before_update`` returned."""
        with self.lock:
            current = self.site.info() if self.site else None
            action = site_install.check_installable(pkg, current)
            if action == "none":
                return action, None
            if action == "install":
                site_install.install_new(self.data, pkg, self.db_url())
                self.site = self._open()
                pre = None
            else:
                pre = before_update()
                site_install.update(self.require().engine, pkg)
        self._notify("installed" if action == "install" else "updated")
        return action, pre

    def restore(self, path: Path, password: str | None, *, force: bool) -> restore_mod.RestoreResult:
        """Restore a site backup in place of the current site (BK-06..09); the old or the new site after
        a crash at any moment (backup/restore.py), on SQLite and on PostgreSQL alike."""
        url = self.db_url()
        stores = self.stores() if self.stores else None
        return self._replace(lambda: restore_mod.restore(self.data, path, password, force=force, stores=stores,
                                                         db_url=url, target_url=url))

    def move(self, target_url: str | None, before: Callable[[], None]) -> dict:
        """Move the site to another database (OPS-03; backup/restore.py ``move``). The current site
        directory first names its database (so ``before``, which may change the appliance's site
        database URL, cannot change what the current site is), then the site is copied and swapped."""
        with self.lock:
            db = self.database()
            if db is None:
                raise NotFound("no site is installed on this appliance", hint="install a site package first")
            if location.read_pointer(self.data.site_dir) is None:
                location.write_pointer(self.data.site_dir, db)
            before()
            url = self.db_url()
            return self._replace(lambda: restore_mod.move(self.data, url, target_url))

    def drop_database(self) -> list[str]:
        """Factory reset: drop what the site has on an external database server (its schema and any
        leftovers of ours). Returns what was dropped."""
        with self.lock:
            url = self.db_url()
            if not url:
                return []
            db = self.database()
            dropped = location.drop(db) if db is not None and db.external else []
            return dropped + location.drop_orphans(url, None)

    def _replace(self, change: Callable[[], object]):
        """Run ``change`` (which swaps the site's files) with the site closed, then reopen it."""
        with self.lock:
            old = self.site
            result = change()
            if old is not None:
                old.close()
            self.site = self._open() if site_install.site_exists(self.data) else None
        self._notify("replaced")
        return result

    def close(self) -> None:
        with self.lock:
            if self.site is not None:
                self.site.close()

    def removed(self) -> None:
        """Factory reset wiped the site: forget it and tell the subscribers."""
        with self.lock:
            self.site = None
        self._notify("removed")
