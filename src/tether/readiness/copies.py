"""The copies of the installed site package and of its vendor public key that
the administrator keeps off the appliance (DR-01): a rebuilt appliance needs
both. The administrator shows them to the appliance; it compares the package
with the one it installed (its SHA-256, recorded by ``site.install`` /
``site.update``) and the key with the one that signed it, and records the
match (audit ``readiness.copies``) for the readiness audit to read back.
A copy that does not match is refused and nothing is recorded."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from tether.core.errors import Invalid, NotFound
from tether.site import package as site_package

from .checks import SOFTWARE_ACTIONS, ReadinessHost


class CopiesConfirmed(BaseModel):
    """What ``confirm`` recorded: the package and vendor key shown match the installed ones."""
    ok: bool
    package_sha256: str
    key_id: str
    version: str | None


def confirm(host: ReadinessHost, package: bytes, vendor_key: bytes, actor: str, source_ip: str | None) -> dict:
    installs = host.audit.latest(SOFTWARE_ACTIONS, limit=1)
    if host.site is None or not installs:
        raise NotFound("no site package is installed on this appliance", hint="install one at /appliance/site")
    details = installs[0]["details"] or {}
    digest = hashlib.sha256(package).hexdigest()
    if digest != details.get("sha256"):
        raise Invalid(f"this file is not the site package installed here (version {details.get('version')}, "
                      f"SHA-256 {details.get('sha256')})", field="package",
                      hint="show the .tsp file the appliance installed last")
    key_id = site_package.key_id(site_package.load_public_key(vendor_key))
    if key_id != details.get("key_id"):
        raise Invalid("this is not the vendor key that signed the installed site package", field="vendor_key",
                      hint="show the vendor's public key (vendor.pub) the package was verified with")
    record = {"package_sha256": digest, "key_id": key_id, "version": details.get("version")}
    host.audit.record(actor, "readiness.copies", installs[0]["target"], source_ip, record)
    return {"ok": True, **record}
