"""The witness job of a failover pair (FO-11): keeping the etcd lease
(witness.py) that lets this appliance serve as primary.

What this module owns: the one witness client for the current failover
settings (rebuilt when they change), the ``failover-witness`` job that
renews the primary's lease every TTL/3 (or takes the key when it does not
hold it) and tells the role store until when the lease is surely held
(``RoleStore.hold_lease``: serving and writes stop when it runs out), the
release of the key when this appliance stops being primary, and the
witness block of the failover status. Who may take the role, and when, is
roles.py's business: it asks ``client()`` for the key before promoting.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from .errors import WitnessError, WitnessUnavailable
from .witness import EtcdWitness, default_key, derived_margin, derived_ttl

if TYPE_CHECKING:
    from .service import FailoverService

log = logging.getLogger("tether.failover")


class WitnessKeeper:
    def __init__(self, service: "FailoverService", role_lock: threading.Lock):
        self.s = service
        self.host = service.host
        self._role_lock = role_lock  # held by a takeover in progress (roles.RoleManager)
        self._current: tuple[tuple, EtcdWitness] | None = None
        self._lock = threading.Lock()
        self.holder: dict | None = None  # on a backup: who holds the key, as last read
        self.error: str | None = None
        self.exc: WitnessError | None = None

    def client(self) -> EtcdWitness | None:
        """The witness client for the current settings (rebuilt when they change), or None without a witness."""
        site, pair = self.host.site, self.s.pairs.load()
        if site is None or pair is None:
            return None
        fs = self.s.settings()
        w = fs.witness
        if not w.enabled or not w.endpoints:
            with self._lock:
                self._drop()
            return None
        ttl = derived_ttl(w.lease_ttl_seconds, float(fs.primary_timeout_seconds))
        margin = min(derived_margin(w.margin_seconds, ttl), ttl / 2)
        key = w.key or default_key(site.info().name)
        conf = (tuple(w.endpoints), key, ttl, margin, w.ca_file, pair.self_url)
        with self._lock:  # the monitor and the witness job both ask
            if self._current is None or self._current[0] != conf:
                self._drop()
                client = EtcdWitness(list(w.endpoints), key, self.s.me, pair.self_url.removeprefix("https://"),
                                     ttl=ttl, margin=margin, verify=w.ca_file or True,
                                     local_address=self.s._local_address(pair.self_url))
                self._current = (conf, client)
            return self._current[1]

    def _drop(self) -> None:
        if self._current is not None:
            old, self._current = self._current[1], None
            old.release()
            old.close()

    def release(self) -> None:
        if self._current is not None:
            self._current[1].release()

    def run(self, stop: threading.Event) -> None:
        """The witness job (while primary or backup): a primary renews its lease every TTL/3 (or takes the key
        if it does not hold it) and tells the role store until when it surely holds it; a backup holds nothing
        and notes who does. Every turn the role store rechecks, so a lease running out stops serving at once."""
        role = self.host.role
        try:
            while not stop.is_set():
                wait = 0.5
                try:
                    w = self.client()
                except Exception as exc:  # noqa: BLE001 - e.g. the site is being replaced: try again shortly
                    log.debug("witness settings unreadable: %s", exc)
                    stop.wait(wait)
                    continue
                if w is None:
                    if self.host.site is not None:
                        role.require_witness(False)
                    self.holder = self.error = self.exc = None
                else:
                    role.require_witness(True)
                    if role.current == "primary":
                        wait = self._keep_primary(w)
                    else:
                        if w.token is not None and not self._role_lock.locked():
                            w.release()  # a backup holds no key (a takeover in progress holds the lock)
                        try:
                            h = w.holder()
                            self.holder = h.public() if h else None
                            self.error = self.exc = None
                        except WitnessError as exc:
                            self.error, self.exc = exc.message, exc
                        wait = min(1.0, w.ttl / 3)
                    role.recheck()
                stop.wait(wait)
        finally:
            if role.current != "primary":
                self.release()

    def _keep_primary(self, w: EtcdWitness) -> float:
        role = self.host.role
        try:
            if w.token is not None:
                w.renew()
            else:
                w.acquire(role.generation)
            role.hold_lease(w.valid_until, token=w.token)
            self.error = self.exc = None
            wait = w.ttl / 3
        except WitnessError as exc:
            if self.error != exc.message:
                log.warning("witness: %s", exc.message)
            self.error, self.exc = exc.message, exc
            role.hold_lease(w.valid_until if w.holds() else None, note=exc.message)
            wait = min(0.5, w.ttl / 6)
        if w.valid_until is not None:  # wake when it runs out, to stop serving then and not later
            wait = min(wait, max(0.05, w.valid_until - time.monotonic()))
        return wait

    def status(self) -> dict | None:
        fs = self.s.settings()
        if not fs.witness.enabled:
            return None
        w = self._current[1] if self._current is not None else None
        out: dict = {"enabled": True, "endpoints": fs.witness.endpoints}
        if w is None:
            return {**out, "state": "not started"}
        doc = {**out, **w.public()}
        role = self.host.role
        if role.current == "primary" and w.holds():
            doc["state"] = "held"
        else:
            if role.current != "primary":
                doc["holder"] = self.holder or doc.get("holder")
            if isinstance(self.exc, WitnessUnavailable):
                doc["state"] = "unreachable"
            elif doc.get("holder"):
                doc["state"] = f"held by {doc['holder'].get('appliance_id')}"
            else:
                doc["state"] = "not held" if role.current == "primary" else "free"
        doc["last_error"] = self.error or w.last_error
        doc["fencing_token"] = role.state.fencing_token
        return doc
