"""The data-directory layout of one appliance, in one place.

    <data>/appliance.db      /appliance settings, identity, admin, certificates (keys sealed), audit
    <data>/secret.key        the per-appliance key that seals secrets (0600)
    <data>/site/site.db      the /login site database (SQLite default)
    <data>/site/files/       file store, content-addressed
    <data>/site/recordings/  recordings, content-addressed, never in the db
    <data>/backups/          backups the appliance took itself
    <data>/builtin-cert.pem  the built-in certificate (public part), for pinning clients
    <data>/site-package.tsp  the signed site package installed last (kept for the recovery kit)
    <data>/recovered/        public certificates `tether recover` put back (for pinning at once)
    <data>/failover/         role.json, pair.json, track, orphans/ (the failover pair)
    <data>/site.staging/     a site being installed
    <data>/drills/           DR drill reports (drill-*.json); .scratch-*/ a drill's scratch appliance

Nothing else in the code builds these paths by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "DataDir":
        return cls(Path(root).resolve())

    @property
    def appliance_db(self) -> Path:
        return self.root / "appliance.db"

    @property
    def secret_key(self) -> Path:
        return self.root / "secret.key"

    @property
    def site_dir(self) -> Path:
        return self.root / "site"

    @property
    def site_db(self) -> Path:
        return self.site_dir / "site.db"

    @property
    def files_dir(self) -> Path:
        return self.site_dir / "files"

    @property
    def recordings_dir(self) -> Path:
        return self.site_dir / "recordings"

    @property
    def storage_spool(self) -> Path:
        """Local room for blobs on their way into a bucket (failover sync's resumable parts, OPS-06)."""
        return self.site_dir / "spool"

    @property
    def storage_ca(self) -> Path:
        """The CA certificate(s) the object store's endpoint is verified with, when the admin gave one (OPS-06)."""
        return self.root / "storage-ca.pem"

    @property
    def backups_dir(self) -> Path:
        return self.root / "backups"

    @property
    def drills_dir(self) -> Path:
        return self.root / "drills"

    @property
    def failover_dir(self) -> Path:
        return self.root / "failover"

    @property
    def builtin_cert(self) -> Path:
        return self.root / "builtin-cert.pem"

    @property
    def site_package(self) -> Path:
        """The signed site package installed (or updated to) last: a recovery kit carries it."""
        return self.root / "site-package.tsp"

    @property
    def recovered_dir(self) -> Path:
        """Public certificates (PEM) that ``tether recover`` imported, named after the certificate."""
        return self.root / "recovered"

    @property
    def site_staging(self) -> Path:
        return self.root / "site.staging"

    @property
    def role_file(self) -> Path:
        return self.failover_dir / "role.json"

    @property
    def pair_file(self) -> Path:
        return self.failover_dir / "pair.json"

    @property
    def track_file(self) -> Path:
        return self.failover_dir / "track"

    @property
    def orphans_dir(self) -> Path:
        return self.failover_dir / "orphans"

    @property
    def runtime_dir(self) -> Path:
        """Short-lived files (pid file, TLS material handed to OpenSSL, never keys in clear)."""
        return self.root / "run"

    def ensure(self) -> None:
        for d in (self.root, self.backups_dir, self.runtime_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)

    @property
    def initialized(self) -> bool:
        return self.appliance_db.exists() and self.secret_key.exists()
