"""The running appliance: the composition root over one data directory. It
builds the stores (appliance database, secret box, settings, admin account,
sessions, certificates, audit and syslog), the site slot, the role, the
client hub, the listeners and the one job runner, and wires them to each
other. Domain packages receive small ports from here, never this object's
internals; the web and CLI layers are handed the ``Appliance``.

Lifecycle (``tether serve``, web/server.py calls these in this order):
    Appliance(data)     open stores, recover an interrupted restore, open the site
    listeners.add(...)  one per --listen address
    start()             register every background job, run the runner
    stop()              the hub tells clients to go, jobs stop, runs finish
    close()             the site and the databases are closed
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel

from tether import __version__
from tether.appliance import store
from tether.appliance.admin import AdminAccount
from tether.appliance.identity import BASE_SOFTWARE_VERSION, ensure_identity
from tether.appliance.settings import MASK, ApplianceSettings, Security
from tether.appliance.support import OUTBOX_JOB_SECONDS, DeskRefused, Support
from tether.backup.service import BackupService
from tether.certs.pending import PendingRequests
from tether.certs.service import CertificateService
from tether.certs.store import CertStore
from tether.clients.hub import SWEEP_SECONDS, ClientHub
from tether.core.audit import AuditLog
from tether.core.db import make_engine, sqlite_url
from tether.core.errors import Conflict, Invalid, NotFound
from tether.core.fsutil import write_atomic
from tether.core.paths import DataDir
from tether.core.secretbox import SecretBox
from tether.core.sessions import SessionStore
from tether.core.syslog import SyslogForwarder, SyslogTarget
from tether.dr.service import DrillService
from tether.core.throttle import LoginThrottle
from tether.failover.service import FailoverService
from tether.monitoring import figures
from tether.monitoring.figures import ConnectedClients
from tether.monitoring.sampler import INTERVAL as SAMPLE_INTERVAL, Sampler
from tether.site import package as site_package
from tether.site import storage as storage_mod
from tether.site.storage import admin as storage_admin

from .connguard import ConnectionGuard
from .jobs import JobRunner
from .listeners import Listener, Listeners
from .provision import create_schema, initialize
from .role import RoleState, RoleStore
from .slot import SiteSlot

CERT_EXPIRY_INTERVAL = 3600.0
CERT_EXPIRY_FIRST_DELAY = 10.0
SERVING_ROLES = frozenset({"none", "primary"})


@dataclass
class ClientCounts:
    representatives: int = 0
    jump_clients: int = 0
    jumpoints: int = 0

    def public(self) -> dict:
        return {"representatives": self.representatives, "jump_clients": self.jump_clients,
                "jumpoints": self.jumpoints, "total": self.representatives + self.jump_clients + self.jumpoints}


class SiteInformation(BaseModel):
    """Status > Information (``Appliance.site_information``)."""
    product_version: str
    site_name: str
    edition: str
    appliance_role: str
    generation: int
    connected_clients: ConnectedClients


class StatusBasics(BaseModel):
    """Status > Basics (``Appliance.status_basics``)."""
    model: str
    serial_number: str
    appliance_id: str
    appliance_version: str
    base_software_version: str
    hostname: str
    system_time: str
    uptime_seconds: int


class SiteInstalled(BaseModel):
    """What ``Appliance.install_site_package`` did: install, update or none (already installed)."""
    action: str
    site_name: str
    edition: str
    version: str
    message: str | None = None  # with action none
    pre_update_backup: str | None = None  # with action update: the backup taken first (BK-10)


class FactoryReset(BaseModel):
    ok: bool
    files_wiped: int
    serial_number: str
    external_database: dict[str, Any] | None = None  # a site on PostgreSQL: what was dropped, what stays


def _desk_opener(*args, **kwargs) -> dict:
    """The support desk, reached through tether.desk.client (wired here, so the appliance package never imports it)."""
    from tether.desk.client import DeskError, open_incident

    try:
        return open_incident(*args, **kwargs)
    except DeskError as exc:
        raise DeskRefused(exc.body.get("message", exc.error)) from None


class Appliance:
    def __init__(self, data: DataDir, *, isolated: bool = False):
        """``isolated``: a drill's scratch appliance (``tether serve --isolated``, dr/scratch.py): no job that
        talks to anything outside (syslog, outbound events and mail, reminders, the support desk, the peer)."""
        if not data.initialized:
            raise NotFound(f"{data.root} is not an initialised appliance data directory",
                           hint="run `tether init --data DIR` or `tether serve --data DIR` first")
        self.data = data
        self.isolated = isolated
        self.started_at = time.time()
        self.throttle = LoginThrottle()
        self.role = RoleStore(data.role_file)
        self.jobs = JobRunner(role=lambda: self.role.current)
        self._open_stores()
        self.syslog = SyslogForwarder(self._syslog_target, self.hostname)
        self.audit = AuditLog(self.engine, store.audit_log, "appliance", self.syslog.forward)
        self.listeners = Listeners(data, self.engine, self.settings, self.certs)
        self.connections = ConnectionGuard()  # configured from the settings by the server, and when they change
        self.connections.configure_from(self.settings.get("security").connections)
        self.slot = SiteSlot(data, self.throttle, self.syslog.forward, self.site_db_url, self._write_fence,
                             self.site_stores)
        self.clients = ClientHub(lambda: self.slot.site, self._client_refusal)  # the /client channel (CL-01)
        self.support = Support(self, _desk_opener, self.jobs.submit)
        self.failover = FailoverService(self)  # the pair: peer link, sync, roles, swing (FO-*)
        self.backups = BackupService(self.slot, data, self.audit, self.support.report_failure,
                                     self.failover.pair_peer)
        self.sampler = Sampler(self._sample)  # the dashboards' last hour (OPS-07), job dashboard-sampler
        self.drills = DrillService(self, self.jobs.submit)  # DR-02: restore rehearsal and failover drill
        self.slot.subscribe(self._site_changed)
        self.role.subscribe(self._role_changed)
        self.slot.open()

    def _open_stores(self) -> None:
        self.box = SecretBox.load(self.data.secret_key)
        self.engine = make_engine(sqlite_url(self.data.appliance_db))
        create_schema(self.engine)  # adds tables introduced by newer software
        self.identity = ensure_identity(self.engine)
        self.settings = ApplianceSettings(self.engine, self.box)
        self.admin = AdminAccount(self.engine, self.throttle)
        self.sessions = SessionStore(self.engine, store.sessions)
        self.certs = CertStore(self.engine, self.box)
        self.__dict__.pop("certificates", None)
        if hasattr(self, "audit"):
            self.audit.engine = self.engine

    # --- the site (the slot owns it) and the gates -----------------------------------------------
    @property
    def site(self):
        return self.slot.site

    def _write_fence(self) -> tuple[int, int | None]:
        """Before every captured site write: the role's gate, then synchronous mode's (strict); the stamp
        (generation, fencing token) the change-log entries carry."""
        stamp = self.role.check_writable()
        self.failover.syncmode.fence()
        return stamp

    @property
    def site_lock(self):
        return self.slot.lock

    def serving(self) -> bool:
        """/health: a site is installed and this appliance serves it (role none or primary, not suspended)."""
        return self.slot.site is not None and self.role.serves_clients()

    def health(self) -> tuple[bool, str]:
        if self.slot.site is None:
            return False, "no site"
        st = self.role.state
        if st.role not in SERVING_ROLES:
            return False, f"{st.role} (generation {st.generation})" + (f"; primary is {st.primary}" if st.primary else "")
        if self.role.suspended:
            return False, f"{st.role} (generation {st.generation}), not serving: {self.role.suspended}"
        return True, "ok" if st.role == "none" else f"primary (generation {st.generation})"

    def _client_refusal(self) -> str | None:
        st = self.role.state
        if self.role.suspended:
            return f"this appliance has stopped serving: {self.role.suspended}"
        if st.role in SERVING_ROLES:
            return None
        where = f" ({st.primary})" if st.primary else ""
        return f"this appliance is the {st.role} of a failover pair; the primary{where} serves clients"

    def _site_changed(self, what: str) -> None:
        if what in ("replaced", "removed"):
            self.clients.site_replaced()  # every client reconnects and is checked against the new site

    def _role_changed(self, old: RoleState, new: RoleState) -> None:
        self.jobs.role_changed()
        self.clients.role_changed(self.role.serves_clients())

    def set_role(self, role: str, *, actor: str, source_ip: str | None, primary: str | None = None,
                 reason: str = "") -> dict:
        """Take a role (the failover package decides when; tests set it directly)."""
        old = self.role.state
        new = self.role.set(role, primary=primary, reason=reason)
        self.audit.record(actor, "failover.role", role, source_ip,
                          {"from": old.role, "generation": new.generation, "reason": reason})
        return new.public()

    # --- identity and status -----------------------------------------------------------------------
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
        info = self.slot.require().info()
        return {"product_version": info.version, "site_name": info.name, "edition": info.edition,
                "appliance_role": self.role.current, "generation": self.role.generation,
                "connected_clients": self.client_counts()}

    def client_counts(self) -> dict:
        return ClientCounts(**self.clients.counts()).public()

    # --- readiness (DR-01), the dashboards (OPS-07) ------------------------------------------------------
    def readiness(self) -> dict:
        """The readiness audit: every named check (tether.readiness)."""
        from tether.readiness import run

        return run(self)

    def dashboard(self) -> dict:
        return figures.dashboard(self)

    def _sample(self) -> tuple[int, float | None, int | None]:
        lag_s, lag_n = figures.sync_lag(self)
        return self.client_counts()["total"], lag_s, lag_n

    # --- site packages ---------------------------------------------------------------------------------
    def trusted_vendor_key_pems(self) -> list[str]:
        return list(store.get_setting(self.engine, "trusted_vendor_keys", []))

    def trusted_vendor_keys(self) -> list[Ed25519PublicKey]:
        return [site_package.load_public_key(p.encode()) for p in self.trusted_vendor_key_pems()]

    def install_site_package(self, data: bytes, actor: str, source_ip: str | None) -> dict:
        pkg = site_package.verify(data, self.trusted_vendor_keys())
        current = self.slot.site.info() if self.slot.site else None

        def before_update():  # BK-10: a fresh backup, kept in <data>/backups, before the site software changes
            return self.backups.take(password=None, include_history=True, actor=actor, source_ip=source_ip,
                                     kept_here=True)

        action, pre = self.slot.install(pkg, before_update)
        write_atomic(self.data.site_package, data)  # kept for the recovery kit (DR-05)
        if action == "none":
            return {"action": "none", "site_name": pkg.site_name, "edition": pkg.edition, "version": pkg.version,
                    "message": f"site {pkg.site_name} {pkg.version} ({pkg.edition}) is already installed (a restore "
                               "puts the site in place with its version): nothing more to do"}
        self.audit.record(actor, f"site.{action}", pkg.site_name, source_ip,
                          {"version": pkg.version, "edition": pkg.edition,
                           "from_version": current.version if current else None,
                           "sha256": hashlib.sha256(data).hexdigest(), "key_id": pkg.key_id})
        result = {"action": action, "site_name": pkg.site_name, "edition": pkg.edition, "version": pkg.version}
        if action == "update":
            result["pre_update_backup"] = str(pre.path)
        return result

    # --- where the site database lives (OPS-03) ----------------------------------------------------------
    def site_database(self):
        """Where the site's database is (site/location.py), None without a site."""
        return self.slot.database()

    def site_db_url(self) -> str | None:
        """None: SQLite in <data>/site/site.db; else a SQLAlchemy URL (sealed at rest: it may hold a password)."""
        sealed = store.get_setting(self.engine, "site_db_url")
        return self.box.unseal(sealed, "site_db_url").decode() if sealed else None

    def set_site_db_url(self, url: str) -> None:
        if self.slot.site is not None:
            raise Conflict("a site is already installed; its database cannot be moved here",
                           hint="take a backup, factory-reset, set the URL, then restore")
        if not url.startswith(("postgresql+psycopg://", "postgresql://")):
            raise Invalid("site_db_url: write postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE",
                          field="site_db_url")
        with self.engine.begin() as c:
            store.put_setting(c, "site_db_url", self.box.seal(url, "site_db_url"))

    # --- where the site's objects live (OPS-06) --------------------------------------------------------
    def site_stores(self):
        """The file store's and recordings' object stores the storage settings name."""
        storage = self.settings.get("storage")
        if storage.backend == "local":
            return storage_mod.local_stores(self.data)
        return storage_mod.open_stores(self.data, storage, self.settings.reveal("storage", "s3", "secret_key"))

    def _storage_secret(self, data: dict) -> str | None:
        given = (data.get("s3") or {}).get("secret_key")
        return given if given and given != MASK else self.settings.reveal("storage", "s3", "secret_key")

    def migrate_storage(self, to: str, *, dry_run: bool, actor: str, progress=lambda kind, sha, size: None) -> dict:
        """``tether storage migrate``: copy the site's objects to ``to`` (local or s3), verified, then switch."""
        site = self.slot.require()
        storage = self.settings.get("storage")
        if to == "s3":
            if not storage.s3.endpoint_url:
                raise Invalid("no bucket is configured", field="to",
                              hint="save the bucket first: tether settings set-storage (backend local, s3 filled)")
            target = storage_admin.connect_checked(self.data, storage, self._storage_secret({}))
        else:
            target = storage_mod.local_stores(self.data)
        if to == storage.backend:
            raise Conflict(f"the site's objects already live on {target.files.describe()}")
        rep = storage_admin.migrate(site.stores, target, storage_admin.site_objects(site.engine), dry_run=dry_run,
                                    progress=progress)
        if not dry_run:
            doc = self.settings.public("storage")
            doc["backend"] = to
            self.settings.put("storage", doc)  # the masked secret stays as it is
            site.use_stores(target)
            rep.switched = True
            self.audit.record(actor, "storage.migrate", to, None, {"copied": rep.copied, "present": rep.present})
        return rep.public()
    def _store_site_db_url(self, url: str | None) -> None:
        with self.engine.begin() as c:
            if url is None:
                c.execute(store.settings.delete().where(store.settings.c.key == "site_db_url"))
            else:
                store.put_setting(c, "site_db_url", self.box.seal(url, "site_db_url"))

    def move_site_database(self, to: str, *, dry_run: bool, actor: str, source_ip: str | None) -> dict:
        """OPS-03: move the site, whole, from SQLite to the PostgreSQL database at ``to``, or back
        (``to`` = "sqlite"); ``dry_run`` checks everything and reports what would move, changing
        nothing. A PostgreSQL-to-PostgreSQL move goes through SQLite (two moves)."""
        import sqlalchemy as sa

        from tether.core.errors import TetherError
        from tether.site import install as site_install
        from tether.site import location

        db = self.slot.database()
        if db is None:
            raise NotFound("no site is installed on this appliance", hint="install a site package first")
        if to == "sqlite":
            to_url = None
            if not db.external:
                raise Conflict("the site is already on the embedded SQLite database")
        else:
            if not to.startswith(("postgresql+psycopg://", "postgresql://")):
                raise Invalid("--to: write sqlite, or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE",
                              field="to")
            to_url = to.replace("postgresql://", "postgresql+psycopg://", 1) if to.startswith("postgresql://") else to
            if db.external:
                raise Conflict("the site is already on PostgreSQL; to change servers, move it to SQLite first",
                               hint="tether site-db move --to sqlite, then tether site-db move --to URL")
            try:
                site_install.check_empty(to_url)
            except sa.exc.OperationalError as exc:
                raise TetherError(f"cannot reach the PostgreSQL database: {str(exc.orig).strip()}",
                                  hint="check the URL, the server and its pg_hba.conf") from None
        site = self.slot.require()
        with site.engine.connect() as c:
            names = set(sa.inspect(c).get_table_names())
            from tether.site.tables import metadata as site_md

            rows = {t.name: c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                    for t in site_md.sorted_tables if t.name in names}
        blobs = {sub: sum(1 for p in (self.data.site_dir / sub).rglob("*") if p.is_file())
                 for sub in ("files", "recordings")}
        target = (location.SiteDatabase(location.POSTGRESQL, to_url, location.SCHEMA_PREFIX + "<new>")
                  if to_url else location.SiteDatabase(location.SQLITE, "", None))
        plan = {"dry_run": dry_run, "from": db.describe(), "to": target.describe(), "rows": rows, "blobs": blobs}
        if dry_run:
            return plan
        res = self.slot.move(to_url, before=lambda: to_url and self._store_site_db_url(to_url))
        if to_url is None:
            self._store_site_db_url(None)  # the site no longer names the server
        self.audit.record(actor, "site.database_move", "site", source_ip,
                          {"from": res["from"]["backend"], "to": res["to"]["backend"]})
        return {**plan, "to": res["to"]}

    # --- settings ----------------------------------------------------------------------------------------
    def update_settings(self, section: str, data: dict, actor: str, source_ip: str | None) -> dict:
        model = self.settings.validate(section, data)
        if section == "security":
            self._check_not_locked_out(model, source_ip)
        if section == "storage":  # the bucket proved reachable and writable, no objects left behind
            site = self.slot.site
            storage_admin.check_change(self.data, self.settings.get("storage"), model, self._storage_secret(data),
                                       site.stores if site is not None else None)
        self.settings.put(section, data)
        if section == "security":
            self.refresh_tls()
            self.connections.configure_from(self.settings.get("security").connections)
        if section == "storage":
            storage_admin.write_ca(self.data, model)
            if self.slot.site is not None:
                self.slot.site.use_stores(self.site_stores())
        self.audit.record(actor, f"settings.{section}.update", section, source_ip)
        return self.settings.public(section)

    def _check_not_locked_out(self, sec: Security, source_ip: str | None) -> None:
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
        self.data.builtin_cert.write_text(pem)
        return pem

    # --- factory reset (APPL-06) ---------------------------------------------------------------------------
    def factory_reset(self, actor: str, source_ip: str | None) -> dict:
        """Wipe every site, certificate, key, backup, recording and setting, and come back as a fresh
        appliance on the same listeners (same hardware identity). Connected clients are dropped and,
        the site being gone, their identities are refused from then on."""
        from tether.appliance import reset

        self.audit.record(actor, "appliance.factory_reset", "appliance", source_ip)
        with self.slot.lock:
            keys = store.get_setting(self.engine, "trusted_vendor_keys", [])
            identity = {k: self.identity[k] for k in ("model", "serial", "appliance_id", "created_at")}
            self.slot.close()
            external = self._drop_external_site()
            self.engine.dispose()
            wiped = reset.wipe(self.data)
            initialize(self.data, [k.encode() for k in keys], identity=identity)
            self._open_stores()
            self.role.reset()
            self.failover.write_track()  # role none: 1 (the wipe took the file; keepalived reads none as 0)
            self.listeners.rebind(self.engine, self.settings, self.certs)
            self.connections.configure_from(self.settings.get("security").connections)
            self.publish_builtin_cert()
            self.slot.removed()
        result = {"ok": True, "files_wiped": wiped, "serial_number": identity["serial"]}
        if external:
            result["external_database"] = external
        return result

    def _drop_external_site(self) -> dict | None:
        """Factory reset of a site on PostgreSQL: drop what the appliance made there (the site's schema),
        and say what stays on the server (the database and its user are the administrator's)."""
        import sqlalchemy as sa

        from tether.site import location

        url = self.site_db_url()
        if not url:
            return None
        where = location.SiteDatabase(location.POSTGRESQL, url, None).describe()
        where.pop("schema", None)
        left = (f"the database {where['database']} on {where['host']}:{where['port']} and its user "
                f"{where['user']} belong to the server's administrator: the reset leaves them (drop the database "
                "on the server when it is no longer needed)")
        try:
            dropped = self.slot.drop_database()
            return {**where, "dropped": dropped, "left": left}
        except sa.exc.SQLAlchemyError as exc:
            return {**where, "dropped": [], "left": left, "error": f"the site's schema could not be dropped "
                    f"({str(getattr(exc, 'orig', exc)).strip()}); drop the schemas named {location.SCHEMA_PREFIX}* "
                    "in that database yourself"}

    # --- TLS listeners ---------------------------------------------------------------------------------------
    def add_listener(self, host: str, port: int) -> Listener:
        return self.listeners.add(host, port)

    def refresh_tls(self) -> None:
        self.listeners.refresh()

    def refresh_certificates(self) -> None:
        """Apply the certificate assignments to every listener, without a restart."""
        self.listeners.refresh(tls_settings=False)

    # --- certificates (CERT-01..07) ----------------------------------------------------------------------------
    @functools.cached_property
    def certificates(self) -> CertificateService:
        """Every certificate action of the HTML pages, the API and the CLI."""
        return CertificateService(self, PendingRequests(self.engine, self.box))

    def configured_addresses(self) -> list[str]:
        """The IP addresses recorded under Networking (certificates can be assigned to them)."""
        return [a.address for i in self.settings.get("networking").interfaces for a in i.addresses]

    def send_certificate_reminders(self) -> list:
        """CERT-07, run by the job runner: mail the expiry reminders due now through the SMTP relay."""
        from tether.certs.expiry import run_reminders
        from tether.core import clock

        return run_reminders(self.engine, self.settings.get("security").smtp,
                             self.settings.reveal("security", "smtp", "password"),
                             self.certificates.expiry_assignments(), clock.now_utc(),
                             helo_name=self.hostname())

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def pin_for(self, host: str, port: int) -> str:
        return self.listeners.pin_for(host, port)

    def listen_hosts(self) -> list[str]:
        return [lst.host for lst in self.listeners]

    def report_incident(self, summary: str, details: str, key: str | None = None) -> None:
        if not self.isolated:
            self.support.report_event(summary, details, key)

    def first_client_since(self, since: float) -> float | None:
        return self.clients.first_admitted_since(since)

    def client_total(self) -> int:
        return ClientCounts(**self.clients.counts()).public()["total"]

    def _register_jobs(self) -> None:
        j = self.jobs
        if self.isolated:  # a drill's scratch copy: answers on its own loopback port and reaches out to nothing
            j.register("client-hub-sweep", SWEEP_SECONDS, self.clients.sweep, first_delay=SWEEP_SECONDS, exact=True)
            return
        j.continuous("failover-sync", self.failover.worker.follow, roles={"backup"})
        j.continuous("failover-blobs", self.failover.worker.fetch_blobs, roles={"backup"})
        j.continuous("failover-acks", self.failover.worker.acks, roles={"backup"})
        j.continuous("failover-monitor", self.failover.roles.monitor, roles={"primary", "backup"})
        j.continuous("failover-witness", self.failover.roles.witness.run, roles={"primary", "backup"})
        j.continuous("syslog-forwarding", self.syslog.run)
        j.continuous("outbound-events", self._dispatch_events, roles=SERVING_ROLES)
        j.register("certificate-expiry-reminders", CERT_EXPIRY_INTERVAL, self.send_certificate_reminders,
                   first_delay=CERT_EXPIRY_FIRST_DELAY)
        j.register("client-hub-sweep", SWEEP_SECONDS, self.clients.sweep, first_delay=SWEEP_SECONDS, exact=True)
        j.register("support-outbox", OUTBOX_JOB_SECONDS, self.support.deliver, first_delay=OUTBOX_JOB_SECONDS)
        j.register("dashboard-sampler", SAMPLE_INTERVAL, self.sampler.sample, exact=True)

    def _dispatch_events(self, stop) -> None:
        site = self.slot.site
        if site is not None:
            site.events.run(stop)

    async def start(self) -> asyncio.Task:
        """Start the background work (the listeners are the web layer's); returns the runner's task."""
        self._register_jobs()
        self.failover.write_track()  # a file left by a killed process is put right at once
        return asyncio.create_task(self.jobs.run())

    async def stop(self, runner: asyncio.Task | None) -> None:
        """Tell every client to go (and come back soon), stop the jobs and wait for runs in progress."""
        self.failover.write_track(stopping=True)  # keepalived lets the shared address go now
        await self.clients.close()
        self.jobs.stop()
        if runner is not None:
            await runner

    def close(self) -> None:
        self.slot.close()
        self.syslog.flush()
        self.engine.dispose()
