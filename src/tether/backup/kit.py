"""The recovery kit (DR-05): one password-protected file with everything a
replacement appliance needs to take over from this one — the /appliance
configuration export, each assigned certificate as .p12 (key and chain) and
as public PEM, a site backup taken for the kit, the site package, the
trusted vendor keys and a runbook written for this appliance.

Format: docs/formats/kit.md (the .nsb container, kind ``tether-kit/1``,
always protected; the .p12 files and the inner .nsb use the kit's password).
``export`` writes a kit from the running appliance; ``open_kit`` verifies a
whole kit into a private directory and returns what it holds. Rebuilding an
appliance from it is the runtime's (``tether.runtime.recover``)."""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tether.appliance import config_export
from tether.certs import assign
from tether.certs.service import safe_filename
from tether.core.errors import IntegrityError, Invalid
from tether.core.paths import DataDir

from . import crypto, runbook
from .kinds import KIT
from .reader import SinkError, read_archive
from .writer import write_archive

SUFFIX = ".tkit"


class KitHost(Protocol):
    """What a kit needs of the running appliance (``tether.runtime.Appliance``)."""

    data: DataDir
    listeners: list
    engine: Any
    certificates: Any  # certs.service.CertificateService
    backups: Any  # backup.service.BackupService

    @property
    def site(self) -> Any: ...
    def status_basics(self) -> dict: ...
    def hostname(self) -> str: ...
    def configured_addresses(self) -> list[str]: ...
    def trusted_vendor_key_pems(self) -> list[str]: ...


def file_name(basics: dict, now: float) -> str:
    return (f"tether-kit-{basics['hostname']}-{basics['serial_number']}-"
            f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}{SUFFIX}")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def export(host: KitHost, out_dir: Path, password: str, actor: str, source_ip: str | None) -> Path:
    """Write a kit of ``host`` into ``out_dir``; returns its path. The site backup in it is taken now."""
    if not password:
        raise Invalid("a recovery kit holds private keys and the site: give it a password", field="password")
    crypto.check_password(password)
    data = host.data
    now = time.time()
    basics = host.status_basics()
    kit_id = secrets.token_hex(4)
    name = file_name(basics, now)
    work = data.backups_dir / ".work" / f"kit-{kit_id}"
    work.mkdir(parents=True, mode=0o700)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        sources: list[tuple[str, Path]] = []

        def put(member: str, content: bytes | str) -> Path:
            p = work / member.replace("/", "__")
            p.write_bytes(content.encode() if isinstance(content, str) else content)
            sources.append((member, p))
            return p

        _cfg_name, cfg_text = config_export.export_document(host)
        listen = [{"host": lst.host, "port": lst.port} for lst in host.listeners]
        served = host.certificates.served()
        mapping = assign.load(host.engine)
        certs, cert_members = [], []
        for cert_id in sorted(set(mapping.values())):
            desc = host.certificates.get(cert_id)
            row = host.certificates.store.get(cert_id)
            stem = f"certificates/{cert_id}-{safe_filename(desc['name'], 'certificate', '')[:60]}"
            _fname, p12 = host.certificates.export_p12(actor, source_ip, cert_id, password)
            cert_members.append((f"{stem}.p12", p12))
            cert_members.append((f"{stem}.pem", row["cert_pem"]))  # the certificate alone: for pinning
            certs.append({"name": desc["name"], "p12": f"{stem}.p12", "pem": f"{stem}.pem",
                          "addresses": sorted(a for a, i in mapping.items() if i == cert_id),
                          "fingerprint_sha256": desc.get("fingerprint_sha256"),
                          "subject": desc.get("issued_to"), "issuer": desc.get("issued_by"),
                          "not_after": desc.get("not_after")})
        site = None
        if host.site is not None:
            res = host.backups.take(password=password, include_history=False, actor=actor, source_ip=source_ip,
                                    out_dir=work / "backup")
            m = res.manifest
            site = {"name": m["site_name"], "edition": m["edition"], "version": m["product_version"],
                    "backup_id": m["backup_id"], "backup_created_at": m["created_at"],
                    "users": m["tables"].get("users", 0), "include_history": False,
                    "package": data.site_package.exists()}
        vendor_keys = host.trusted_vendor_key_pems()
        manifest = {"format": KIT.manifest_format, "kit_id": kit_id, "appliance_version": basics["appliance_version"],
                    "serial_number": basics["serial_number"], "model": basics["model"], "hostname": host.hostname(),
                    "created_at": _iso(now), "file_name": name,
                    "listen": listen, "configured_addresses": sorted(host.configured_addresses()),
                    "certificates": certs, "builtin_on": sorted(served.get(host.certificates.store.builtin()["id"], [])),
                    "site": site, "vendor_keys": len(vendor_keys), "members": []}
        put("runbook.md", runbook.render(manifest))
        put("appliance-config.yaml", cfg_text)
        if site is not None and data.site_package.exists():
            sources.append(("site-package.tsp", data.site_package))
        if site is not None:
            sources.append(("site-backup.nsb", res.path))
        for i, pem in enumerate(vendor_keys, 1):
            put(f"vendor-keys/{i}.pem", pem)
        for member, content in cert_members:
            put(member, content)
        manifest["members"] = [{"name": n, "size": p.stat().st_size, "sha256": None} for n, p in sources]  # hashed as written
        header = {"format": KIT.format, "protected": True, "appliance_version": basics["appliance_version"],
                  "serial_number": basics["serial_number"], "hostname": manifest["hostname"], "kit_id": kit_id,
                  "created_at": manifest["created_at"], "payload": "payload.tar.zst.age"}
        final = out_dir / name
        write_archive(KIT, final, header, manifest, sources, password, spool_dir=work)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Kit:
    """A verified kit, its members in ``dir`` (a private directory the caller removes)."""

    dir: Path
    manifest: dict
    members: list[str] = field(default_factory=list)

    def path(self, member: str) -> Path:
        return self.dir / member

    def text(self, member: str) -> str:
        return self.path(member).read_text()

    @property
    def vendor_keys(self) -> list[bytes]:
        return [self.path(n).read_bytes() for n in self.members if n.startswith("vendor-keys/")]

    @property
    def site_package(self) -> Path | None:
        p = self.path("site-package.tsp")
        return p if "site-package.tsp" in self.members else None

    @property
    def site_backup(self) -> Path | None:
        return self.path("site-backup.nsb") if "site-backup.nsb" in self.members else None

    def addresses(self) -> list[str]:
        """Every IP address the kit's appliance used: listened on, configured, certificates assigned."""
        return runbook.kit_addresses(self.manifest)


class _File:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "xb")
        path.chmod(0o600)

    def write(self, b: bytes) -> None:
        self.f.write(b)

    def close(self, ok: bool) -> None:
        self.f.close()


def open_kit(path: Path, password: str | None, into: Path, keep: set[str] | None = None) -> Kit:
    """Verify the whole kit (password, layout, every member's checksum) into the empty directory ``into``
    (only the members in ``keep`` when given; the others are checked and dropped). Any failure raises
    before the caller has changed anything."""
    if not password:
        raise Invalid("a recovery kit is password-protected; give its password", field="password",
                      hint="TETHER_KIT_PASSWORD or --password-file FILE")
    names: list[str] = []

    def sink(name: str, size: int):
        if keep is not None and name not in keep:
            return None
        names.append(name)
        return _File(into / name)

    try:
        res = read_archive(KIT, path, password, sink=sink)
    except IntegrityError as exc:  # the reader's words are a backup's: say kit
        raise IntegrityError(exc.message.replace("this backup", "this recovery kit").replace("the backup", "the kit"),
                             hint=(exc.hint or "").replace("backup", "kit") or None) from None
    except SinkError as exc:
        raise Invalid(f"the kit could not be unpacked in {into}: {exc.error.strerror or exc.error}") from None
    return Kit(into, res.manifest, names)
