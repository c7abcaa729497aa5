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
from tether.core.errors import Conflict, NotFound
from tether.core.paths import DataDir
from tether.core.throttle import LoginThrottle
from tether.site import install as site_install
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

    def _open(self) -> Site:
        return Site(self.data, self.throttle, self.forward, url=self.db_url(), fence=self.fence,
                    stores=self.stores() if self.stores else None)

    def open(self) -> None:
        """At start: finish or undo a restore a crash interrupted, then open the site if there is one."""
        with self.lock:
            restore_mod.recover(self.data)
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
        a crash at any moment (backup/restore.py)."""
        if self.db_url():
            raise Conflict("restoring a site hosted on an external database (PostgreSQL) is not supported yet",
                           hint="restore onto an appliance that uses the embedded SQLite site database")
        stores = self.stores() if self.stores else None
        return self._replace(lambda: restore_mod.restore(self.data, path, password, force=force, stores=stores))

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
