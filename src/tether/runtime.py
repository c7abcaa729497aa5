"""The running appliance: the one object that composes the domain packages
over a data directory (appliance database, secret box, settings, admin
account, certificates, the site if installed, audit and syslog) and that the
web and CLI layers are handed. It owns no HTTP and no argument parsing."""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tether import __version__
from tether.appliance import admin as admin_mod
from tether.appliance import store
from tether.appliance.admin import AdminAccount
from tether.appliance.identity import BASE_SOFTWARE_VERSION, default_hostname, ensure_identity
from tether.appliance.settings import ApplianceSettings, Networking, Security
from tether.certs import assign as cert_assign
from tether.certs import tls
from tether.certs.builtin import BUILTIN_NAME, generate_builtin
from tether.certs.pending import PendingRequests
from tether.certs.service import CertificateService
from tether.certs.store import CertStore
from tether.core.audit import AuditLog
from tether.core.db import make_engine, sqlite_url
from tether.core.errors import Conflict, Invalid, NotFound
from tether.core.paths import DataDir
from tether.core.secretbox import SecretBox
from tether.core.sessions import SessionStore
from tether.core.syslog import SyslogForwarder, SyslogTarget
from tether.core.throttle import LoginThrottle
from tether.site import install as site_install
from tether.site import package as site_package
from tether.site.site import Site


@dataclass
class Listener:
    """One HTTPS listener (address:port) and the TLS context it presents."""

    host: str
    port: int
    context: ssl.SSLContext
    cert_id: int | None = None


@dataclass
class ClientCounts:
    representatives: int = 0
    jump_clients: int = 0
    jumpoints: int = 0

    def public(self) -> dict:
        return {"representatives": self.representatives, "jump_clients": self.jump_clients,
                "jumpoints": self.jumpoints, "total": self.representatives + self.jump_clients + self.jumpoints}


def initialize(data: DataDir, trusted_vendor_keys: list[bytes], model: str | None = None,
               identity: dict | None = None) -> None:
    """Make a fresh appliance in an empty data directory (idempotent: an
    initialised directory is left alone). ``identity`` keeps a model and serial
    number across a factory reset (they belong to the hardware)."""
    if data.initialized:
        return
    keys = [site_package.load_public_key(k) for k in trusted_vendor_keys]  # validate before writing
    data.ensure()
    box = SecretBox.create(data.secret_key)
    engine = make_engine(sqlite_url(data.appliance_db))
    try:
        store.create_schema(engine)
        if identity:
            with engine.begin() as c:
                store.put_setting(c, "identity", identity)
        ident = ensure_identity(engine, model)
        cert_pem, key_der = generate_builtin(ident["serial"])
        with engine.begin() as c:
            admin_mod.create_default(c)
            store.put_setting(c, "trusted_vendor_keys", [k.decode() for k in trusted_vendor_keys])
            store.put_setting(c, "networking", Networking(hostname=default_hostname_safe()).model_dump())
            store.put_setting(c, "security", Security().model_dump())
            CertStore(engine, box).add(BUILTIN_NAME, cert_pem, key_der, builtin=True, conn=c)
        del keys
    finally:
        engine.dispose()


def default_hostname_safe() -> str:
    from tether.core.validate import hostname

    try:
        return hostname(default_hostname())
    except ValueError:
        return "tether.local"


class Appliance:
    def __init__(self, data: DataDir):
        if not data.initialized:
            raise NotFound(f"{data.root} is not an initialised appliance data directory",
                           hint="run `tether init --data DIR` or `tether serve --data DIR` first")
        self.data = data
        self.started_at = time.time()
        self.box = SecretBox.load(data.secret_key)
        self.engine = make_engine(sqlite_url(data.appliance_db))
        store.create_schema(self.engine)  # adds tables introduced by newer software
        self.identity = ensure_identity(self.engine)
        self.settings = ApplianceSettings(self.engine, self.box)
        self.throttle = LoginThrottle()
        self.admin = AdminAccount(self.engine, self.throttle)
        self.sessions = SessionStore(self.engine, store.sessions)
        self.certs = CertStore(self.engine, self.box)
        self.syslog = SyslogForwarder(self._syslog_target, self.hostname)
        self.audit = AuditLog(self.engine, store.audit_log, "appliance", self.syslog.forward)
        self.listeners: list[Listener] = []
        from tether.clients.hub import ClientHub

        self.clients = ClientHub(lambda: self.site)  # the /client channel's connections (CL-01)
        self._lock = threading.RLock()
        self.site: Site | None = None
        from tether.backup import restore as restore_mod

        restore_mod.recover(data)  # finish or undo a restore a crash interrupted
        if site_install.site_exists(data):
            self.site = Site(data, self.throttle, self.syslog.forward, url=self.site_db_url())

    # --- identity and status -------------------------------------------------
    def hostname(self) -> str:
        return self.settings.get("networking").hostname

    def status_basics(self) -> dict:
        now = time.time()
        return {
            "model": self.identity["model"],
            "serial_number": self.identity["serial"],
            "appliance_id": self.identity["appliance_id"],
            "appliance_version": __version__,
            "base_software_version": BASE_SOFTWARE_VERSION,
            "hostname": self.hostname(),
            "system_time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)),
            "uptime_seconds": int(now - self.started_at),
        }

    def site_information(self) -> dict:
        if self.site is None:
            raise NotFound("no site is installed on this appliance", hint="install a site package in /appliance")
        info = self.site.info()
        return {"product_version": info.version, "site_name": info.name, "edition": info.edition,
                "appliance_role": "none", "connected_clients": ClientCounts(**self.clients.counts()).public()}

    # --- site packages ---------------------------------------------------------
    def trusted_vendor_keys(self) -> list[Ed25519PublicKey]:
        pems = store.get_setting(self.engine, "trusted_vendor_keys", [])
        return [site_package.load_public_key(p.encode()) for p in pems]

    def install_site_package(self, data: bytes, actor: str, source_ip: str | None) -> dict:
        pkg = site_package.verify(data, self.trusted_vendor_keys())
        with self._lock:
            current = self.site.info() if self.site else None
            action = site_install.check_installable(pkg, current)
            if action == "install":
                site_install.install_new(self.data, pkg, self.site_db_url())
                self.site = Site(self.data, self.throttle, self.syslog.forward, url=self.site_db_url())
            else:  # BK-10: a fresh backup, kept in <data>/backups, before the site software changes
                pre = self.backups.take(password=None, include_history=True, actor=actor, source_ip=source_ip)
                site_install.update(self.site.engine, pkg)
        self.audit.record(actor, f"site.{action}", pkg.site_name, source_ip,
                          {"version": pkg.version, "edition": pkg.edition,
                           "from_version": current.version if current else None})
        result = {"action": action, "site_name": pkg.site_name, "edition": pkg.edition, "version": pkg.version}
        if action == "update":
            result["pre_update_backup"] = str(pre.path)
        return result

    # --- where the site database lives (OPS-03) ---------------------------------------------
    def site_db_url(self) -> str | None:
        """None: SQLite in <data>/site/site.db; else a SQLAlchemy URL (sealed at rest: it may hold a password)."""
        sealed = store.get_setting(self.engine, "site_db_url")
        return self.box.unseal(sealed, "site_db_url").decode() if sealed else None

    def set_site_db_url(self, url: str) -> None:
        if self.site is not None:
            raise Conflict("a site is already installed; its database cannot be moved here",
                           hint="take a backup, factory-reset, set the URL, then restore")
        if not url.startswith(("postgresql+psycopg://", "postgresql://")):
            raise Invalid("site_db_url: write postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE",
                          field="site_db_url")
        with self.engine.begin() as c:
            store.put_setting(c, "site_db_url", self.box.seal(url, "site_db_url"))

    # --- settings ----------------------------------------------------------------
    def update_settings(self, section: str, data: dict, actor: str, source_ip: str | None) -> dict:
        model = self.settings.validate(section, data)
        if section == "security":
            self._check_not_locked_out(model, source_ip)
        self.settings.put(section, data)
        if section == "security":
            self.refresh_tls()
        self.audit.record(actor, f"settings.{section}.update", section, source_ip)
        return self.settings.public(section)

    def _check_not_locked_out(self, sec: Security, source_ip: str | None) -> None:
        import ipaddress

        if not source_ip or source_ip == "cli":
            return
        ip = ipaddress.ip_address(source_ip)
        nets = [ipaddress.ip_network(n) for n in sec.administration.allowed_networks]
        if not any(ip.version == n.version and ip in n for n in nets):
            raise Invalid(f"administration.allowed_networks: your own address {source_ip} would be locked out",
                          field="administration.allowed_networks",
                          hint="include the network you administer the appliance from")
        ports = sec.administration.allowed_ports
        if ports and self.listeners and not any(lst.port in ports for lst in self.listeners):
            raise Invalid("administration.allowed_ports: no listener of this appliance uses any of these ports",
                          field="administration.allowed_ports")

    def admin_allowed(self, client_ip: str | None, server_port: int | None) -> bool:
        import ipaddress

        adm = self.settings.get("security").administration
        if adm.allowed_ports and server_port not in adm.allowed_ports:
            return False
        if client_ip is None:
            return False
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in map(ipaddress.ip_network, adm.allowed_networks))

    def _syslog_target(self) -> SyslogTarget | None:
        s = self.settings.get("security").syslog
        if not s.enabled or not s.host:
            return None
        return SyslogTarget(s.host, s.port, s.transport, s.format)

    def publish_builtin_cert(self) -> str:
        """Write the built-in certificate (public part) to <data>/builtin-cert.pem for pinning clients."""
        pem = self.certs.builtin()["cert_pem"]
        (self.data.root / "builtin-cert.pem").write_text(pem)
        return pem

    # --- factory reset (APPL-06) ------------------------------------------------------
    def factory_reset(self, actor: str, source_ip: str | None) -> dict:
        """Wipe every site, certificate, key, backup, recording and setting, and
        come back as a fresh appliance on the same listeners (same hardware identity)."""
        from tether.appliance import reset

        self.audit.record(actor, "appliance.factory_reset", "appliance", source_ip)
        with self._lock:
            keys = store.get_setting(self.engine, "trusted_vendor_keys", [])
            identity = {k: self.identity[k] for k in ("model", "serial", "appliance_id", "created_at")}
            listeners = self.listeners
            if self.site:
                self.site.close()
            self.engine.dispose()
            wiped = reset.wipe(self.data)
            initialize(self.data, [k.encode() for k in keys], identity=identity)
            self.__dict__.pop("certificates", None)
            self.__init__(self.data)
            self.listeners = listeners
            self.refresh_tls()
            self.publish_builtin_cert()
        return {"ok": True, "files_wiped": wiped, "serial_number": identity["serial"]}

    # --- site backups (BK-*) ---------------------------------------------------------
    @property
    def backups(self):
        from tether.backup.service import BackupService

        return BackupService(self)

    # --- TLS listeners -------------------------------------------------------------
    def add_listener(self, host: str, port: int) -> Listener:
        lst = Listener(host, port, tls.ListenerContext(self.settings.get("security").tls))
        self._load_listener_cert(lst)  # the certificate assigned to this address (CERT-06), else the built-in
        self.listeners.append(lst)
        return lst

    def _load_listener_cert(self, lst: Listener) -> None:
        """Present the certificate assigned to the listener's address (the built-in one if none)."""
        lst.cert_id = cert_assign.load(self.engine).get(cert_assign.host_key(lst.host))
        row = None
        if lst.cert_id is not None:
            try:
                row = self.certs.get(lst.cert_id)
            except NotFound:
                logging.getLogger("tether.certs").error("certificate %s assigned to %s is gone; presenting "
                                                        "the built-in certificate", lst.cert_id, lst.host)
        if row is None or not row["key_sealed"]:
            row, lst.cert_id = self.certs.builtin(), None
        lst.context.present(row["cert_pem"], row["chain_pem"] or "", self.certs.private_key_der(row),
                            self.data.runtime_dir)

    def refresh_tls(self) -> None:
        tls_settings = self.settings.get("security").tls
        with self._lock:
            for lst in self.listeners:
                lst.context.apply_settings(tls_settings)
                self._load_listener_cert(lst)

    def close(self) -> None:
        if self.site:
            self.site.close()
        self.engine.dispose()

    # --- certificates (CERT-01..07) --------------------------------------------------
    @functools.cached_property
    def certificates(self) -> CertificateService:
        """Every certificate action of the HTML pages, the API and the CLI."""
        return CertificateService(self, PendingRequests(self.engine, self.box))

    def configured_addresses(self) -> list[str]:
        """The IP addresses recorded under Networking (certificates can be assigned to them)."""
        return [a.address for i in self.settings.get("networking").interfaces for a in i.addresses]

    def refresh_certificates(self) -> None:
        """Apply the certificate assignments to every listener, without a restart."""
        with self._lock:
            for lst in self.listeners:
                self._load_listener_cert(lst)

    def send_certificate_reminders(self) -> list:
        """CERT-07, run by the job runner: mail the expiry reminders due now through the SMTP relay."""
        import datetime as dt

        from tether.certs.expiry import run_reminders

        return run_reminders(self.engine, self.settings.get("security").smtp,
                             self.settings.reveal("security", "smtp", "password"),
                             self.certificates.expiry_assignments(), dt.datetime.now(dt.timezone.utc),
                             helo_name=self.hostname())


def open_appliance(path: str) -> Appliance:
    return Appliance(DataDir.at(path))


__all__ = ["Appliance", "initialize", "open_appliance", "Conflict"]
