"""The appliance's HTTPS listeners and the TLS context each presents: the
certificate assigned to its address (CERT-06) or the built-in one, under
the /appliance TLS settings, changed in place without a restart."""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass

import sqlalchemy as sa

from tether.appliance.settings import ApplianceSettings
from tether.certs import assign as cert_assign
from tether.certs import tls
from tether.certs.store import CertStore
from tether.core.errors import NotFound
from tether.core.paths import DataDir

log = logging.getLogger("tether.certs")


@dataclass
class Listener:
    """One HTTPS listener (address:port) and the TLS context it presents."""

    host: str
    port: int
    context: ssl.SSLContext
    cert_id: int | None = None


class Listeners(list):
    """The listeners of this process (a list, so ``for lst in listeners`` reads as it should)."""

    def __init__(self, data: DataDir, engine: sa.Engine, settings: ApplianceSettings, certs: CertStore):
        super().__init__()
        self.data, self.engine, self.settings, self.certs = data, engine, settings, certs
        self._lock = threading.RLock()

    def add(self, host: str, port: int) -> Listener:
        lst = Listener(host, port, tls.ListenerContext(self.settings.get("security").tls))
        self._load_cert(lst)
        self.append(lst)
        return lst

    def _load_cert(self, lst: Listener) -> None:
        """Present the certificate assigned to the listener's address (the built-in one if none)."""
        lst.cert_id = cert_assign.load(self.engine).get(cert_assign.host_key(lst.host))
        row = None
        if lst.cert_id is not None:
            try:
                row = self.certs.get(lst.cert_id)
            except NotFound:
                log.error("certificate %s assigned to %s is gone; presenting the built-in certificate",
                          lst.cert_id, lst.host)
        if row is None or not row["key_sealed"]:
            row, lst.cert_id = self.certs.builtin(), None
        lst.context.present(row["cert_pem"], row["chain_pem"] or "", self.certs.private_key_der(row),
                            self.data.runtime_dir)

    def refresh(self, *, tls_settings: bool = True) -> None:
        """Apply the TLS settings (optionally) and the certificate assignments to every listener."""
        settings = self.settings.get("security").tls if tls_settings else None
        with self._lock:
            for lst in self:
                if settings is not None:
                    lst.context.apply_settings(settings)
                self._load_cert(lst)

    def pin_for(self, host: str, port: int) -> str:
        """The pin (tether.clients.trust) of the certificate presented on ``host:port`` (the first
        listener's when no listener has that address, e.g. behind NAT)."""
        from tether.clients.trust import pin_of_pem

        chosen = next((lst for lst in self if lst.host == host and lst.port == port), None)
        chosen = chosen or next((lst for lst in self if lst.port == port), None) or (self[0] if self else None)
        row = self.certs.get(chosen.cert_id) if chosen is not None and chosen.cert_id is not None \
            else self.certs.builtin()
        return pin_of_pem(row["cert_pem"])

    def rebind(self, engine: sa.Engine, settings: ApplianceSettings, certs: CertStore) -> None:
        """After a factory reset: the same sockets, the fresh appliance's stores."""
        self.engine, self.settings, self.certs = engine, settings, certs
        self.refresh()
