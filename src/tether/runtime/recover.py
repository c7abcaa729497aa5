"""Rebuilding an appliance from a recovery kit (DR-05, ``tether recover``):
on a new data directory, in this order — initialise with the kit's vendor
keys, install the kit's site package, import the /appliance configuration
(its addresses mapped to this machine's), import each certificate and assign
it to its (mapped) addresses, restore the site backup.

Everything that can be checked is checked before anything is written (the
whole kit, the inner backup, the package's signature, each .p12, the
addresses): ``make_plan`` does that and says what will happen; ``run``
carries it out, and removes the data directory it made if a step fails."""

from __future__ import annotations

import errno
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tether import __version__
from tether.appliance import config_export
from tether.backup import kit as kit_mod
from tether.backup.runbook import KEEP
from tether.backup.service import verify_file
from tether.certs import assign, pkcs12
from tether.core.errors import Conflict, Invalid
from tether.core.fsutil import write_atomic
from tether.core.netaddr import host_port
from tether.core.paths import DataDir
from tether.site import package as site_package

from .provision import initialize, locked, open_offline

ACTOR = "recover"


def on_this_machine(address: str) -> bool:
    """Whether this machine has ``address`` (it can bind a socket to it)."""
    fam = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
        return True
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL):
            return False
        return True  # e.g. permission: the address exists


def parse_maps(raw: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw:
        old, sep, new = item.partition("=")
        if not sep:
            raise Invalid(f"--map {item}: write OLD=NEW (the kit's address = this machine's)", field="map")
        out[assign.normalize(old)] = assign.normalize(new)
    return out


@dataclass
class Plan:
    kit: kit_mod.Kit
    data: DataDir
    mapping: dict[str, str]  # every kit address -> the address it becomes here
    added: list[str]  # addresses added under Networking (assigned on the old appliance, not configured)
    package: Path | None
    backup: dict | None
    notes: list[str] = field(default_factory=list)

    def listen(self) -> list[str]:
        """The --listen addresses of ``tether serve`` here: the kit's, mapped."""
        return [host_port(self.mapping.get(x["host"], x["host"]), x["port"]) for x in self.kit.manifest["listen"]]

    def lines(self) -> list[str]:
        m = self.kit.manifest
        out = [f"Recovery kit {m['kit_id']} of {m['hostname']} (appliance {m['serial_number']}, Tether "
               f"{m['appliance_version']}), made {m['created_at']}: opened and checked.", "Plan:"]
        n = iter(range(1, 100))
        out.append(f"  {next(n)}. Initialise a new appliance in {self.data.root}, trusting the kit's "
                   f"{len(self.kit.vendor_keys)} vendor key(s)")
        if self.package:
            p = site_package.verify(self.package.read_bytes(), [site_package.load_public_key(k)
                                                                 for k in self.kit.vendor_keys])
            out.append(f"  {next(n)}. Install site package {p.site_name} {p.version} ({p.edition})")
        out.append(f"  {next(n)}. Import the /appliance configuration (host name {m['hostname']})")
        for old, new in self.mapping.items():
            out.append(f"       address {old} -> {new}" if old != new else f"       address {old} kept")
        for a in self.added:
            out.append(f"       {a} added under Networking (a certificate was assigned to it)")
        for c in m["certificates"]:
            where = ", ".join(self.mapping.get(a, a) for a in c["addresses"])
            out.append(f"  {next(n)}. Import certificate {c['name']!r} (SHA-256 {c['fingerprint_sha256']}) and "
                       f"assign it to {where}")
        if self.backup:
            b = self.backup
            out.append(f"  {next(n)}. Restore site {b['site_name']} from backup {b['backup_id']} of "
                       f"{b['created_at']} ({b['tables'].get('users', 0)} users)")
        listens = " ".join(f"--listen {x}" for x in self.listen())
        out.append(f"Then: tether serve --data {self.data.root} {listens}".rstrip())
        out.append(f"and point {m['hostname']} at {', '.join(sorted(set(self.mapping.values()) - KEEP)) or 'it'}.")
        out += [f"Note: {x}" for x in self.notes]
        return out

    def public(self) -> dict:
        return {"kit_id": self.kit.manifest["kit_id"], "hostname": self.kit.manifest["hostname"],
                "data": str(self.data.root), "addresses": self.mapping, "added_addresses": self.added,
                "site_package": bool(self.package), "certificates": [c["name"] for c in self.kit.manifest["certificates"]],
                "site_backup": self.backup and {k: self.backup[k] for k in ("site_name", "backup_id", "created_at")},
                "listen": self.listen(),
                "notes": self.notes}


def check_new(data: DataDir) -> None:
    """A recovery makes a new appliance: refuse a data directory that holds anything."""
    if data.root.exists() and (data.initialized or any(data.root.iterdir())):
        raise Conflict(f"{data.root} is not empty: a recovery makes a new appliance",
                       hint="give --data a directory that does not exist yet (or is empty)")


def make_plan(k: kit_mod.Kit, data: DataDir, password: str, maps: dict[str, str],
              package: Path | None = None) -> Plan:
    """Check everything and decide what ``run`` will do; nothing is written."""
    check_new(data)
    m = k.manifest
    addresses = k.addresses()
    unknown = sorted(set(maps) - set(addresses))
    if unknown:
        raise Invalid(f"--map {unknown[0]}=...: the kit has no address {unknown[0]}", field="map",
                      hint=f"the kit's addresses are {', '.join(addresses) or '(none)'}")
    mapping, missing, foreign = {}, [], []
    for a in addresses:
        new = maps.get(a, a)
        if new not in KEEP and not on_this_machine(new):
            (foreign if a in maps else missing).append((a, new))
        mapping[a] = new
    if missing or foreign:
        msg = "; ".join([f"the kit's address {a} is not on this machine" for a, _ in missing] +
                        [f"--map {a}={n}: {n} is not an address of this machine" for a, n in foreign])
        raise Invalid(msg, field="map", hint="map each to one of this machine's addresses: "
                      + " ".join(f"--map {a}=NEW_ADDRESS" for a, _ in missing or foreign))
    keys = k.vendor_keys
    for key in keys:
        site_package.load_public_key(key)
    notes = []
    if m["appliance_version"] != __version__:
        notes.append(f"the kit was made by Tether {m['appliance_version']}; this is {__version__}")
    package = package or k.site_package
    if m["site"] and package is None:
        raise Invalid("the kit holds no site package (the old appliance did not keep it)", field="site_package",
                      hint="give the signed site package with --site-package FILE")
    if package is not None:
        site_package.verify(Path(package).read_bytes(), [site_package.load_public_key(x) for x in keys])
    backup = None
    if k.site_backup is not None:
        backup = verify_file(k.site_backup, password)
        if not backup["restorable_here"]:
            raise Conflict(f"the kit's site backup cannot be restored here: {backup['version_note']}")
    for c in m["certificates"]:
        pkcs12.import_p12(k.path(c["p12"]).read_bytes(), password)  # refuses a damaged one now
    configured = {mapping.get(a, a) for a in _configured(k)}
    added = sorted({mapping[a] for c in m["certificates"] for a in c["addresses"]} - configured)
    return Plan(k, data, mapping, added, Path(package) if package else None, backup, notes)


def _configured(k: kit_mod.Kit) -> list[str]:
    return [assign.normalize(x) for x in k.manifest["configured_addresses"]]


def _config_for_here(plan: Plan) -> bytes:
    doc = config_export.parse(plan.kit.path("appliance-config.yaml").read_bytes())
    net = doc["sections"].get("networking")
    if isinstance(net, dict):
        for iface in net.get("interfaces") or []:
            for addr in iface.get("addresses") or []:
                try:
                    addr["address"] = plan.mapping.get(assign.normalize(addr["address"]), addr["address"])
                except Invalid:
                    pass
        ifaces = net.setdefault("interfaces", [])
        if plan.added:
            if not ifaces:
                ifaces.append({"name": "eth0", "addresses": []})
            for a in plan.added:
                ifaces[0].setdefault("addresses", []).append({"address": a, "netmask": "128" if ":" in a else "32"})
    return yaml.safe_dump(doc, sort_keys=False).encode()


def run(plan: Plan, password: str) -> dict:
    """Carry out the plan; on a failure the data directory made here is removed."""
    d = plan.data
    made = not d.root.exists()
    d.root.mkdir(parents=True, exist_ok=True)
    k = plan.kit
    try:
        with locked(d):
            initialize(d, k.vendor_keys)
        report: dict = {"data": str(d.root), "addresses": plan.mapping}
        with open_offline(d) as a:
            if plan.package:
                report["site_package"] = a.install_site_package(plan.package.read_bytes(), ACTOR, "cli")
            report["configuration"] = config_export.import_document(a, _config_for_here(plan), ACTOR, "cli")
            certs = []
            for c in k.manifest["certificates"]:
                desc = a.certificates.import_p12(ACTOR, "cli", k.path(c["p12"]).read_bytes(), password, c["name"])
                for old in c["addresses"]:
                    a.certificates.assign(ACTOR, "cli", desc["id"], plan.mapping.get(old, old))
                pem = d.recovered_dir / c["pem"].split("/", 1)[1]
                write_atomic(pem, k.path(c["pem"]).read_bytes(), 0o644)
                certs.append({"name": c["name"], "id": desc["id"], "pem": str(pem),
                              "addresses": [plan.mapping.get(x, x) for x in c["addresses"]],
                              "fingerprint_sha256": desc.get("fingerprint_sha256")})
            report["certificates"] = certs
            if k.site_backup is not None:
                report["restore"] = a.backups.restore(k.site_backup, password, force=False, actor=ACTOR,
                                                      source_ip="cli")
        report["listen"] = plan.public()["listen"]
        return report
    except BaseException:
        if made:
            shutil.rmtree(d.root, ignore_errors=True)
        else:
            for child in d.root.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        raise
