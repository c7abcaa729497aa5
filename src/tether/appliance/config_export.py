"""Export and import of the whole /appliance configuration (APPL-04); the
format is docs/formats/appliance-config.md."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Protocol

import yaml
from pydantic import BaseModel

from tether.core.audit import AuditLog
from tether.core.errors import IntegrityError, TetherError

from .settings import MASK, SEALED_FIELDS, SECTIONS, ApplianceSettings


class ConfigHost(Protocol):
    """What export and import need of the running appliance."""

    settings: ApplianceSettings
    audit: AuditLog

    def status_basics(self) -> dict: ...
    def update_settings(self, section: str, data: dict, actor: str, source_ip: str | None) -> dict: ...
    def listen_hosts(self) -> list[str]: ...

FORMAT = "tether-appliance-config/1"
MAX_BYTES = 1 << 20


def file_name(basics: dict, now: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return (f"tether-appliance-{basics['appliance_version']}-{basics['serial_number']}-"
            f"{basics['base_software_version']}-{stamp}.yaml")


def exported_sections(appliance: ConfigHost) -> dict:
    """Every settings section as an export holds it (sealed secrets left out)."""
    sections = {}
    for name in SECTIONS:
        data = appliance.settings.public(name)
        for sec, sub, key in SEALED_FIELDS:
            if sec == name:
                data[sub][key] = None
        sections[name] = data
    return sections


def digest(appliance: ConfigHost) -> str:
    """SHA-256 of the configuration an export would hold now: recorded with each export (audit
    ``config.export``), so the readiness audit (DR-01) sees whether it changed since."""
    canon = json.dumps(exported_sections(appliance), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


def export_document(appliance: ConfigHost) -> tuple[str, str]:
    """(file name, YAML text)."""
    now = time.time()
    basics = appliance.status_basics()
    sections = exported_sections(appliance)
    doc = {"format": FORMAT, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
           "source": {k: basics[k] for k in ("appliance_version", "serial_number", "model", "base_software_version")},
           "sections": sections,
           "secrets_not_exported": [".".join(f) for f in sorted(SEALED_FIELDS)]}
    return file_name(basics, now), yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def parse(data: bytes) -> dict:
    if len(data) > MAX_BYTES:
        raise IntegrityError("this file is too large to be an /appliance configuration export")
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise IntegrityError("this file is not an /appliance configuration export (not YAML)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IntegrityError(f"this file is not an /appliance configuration export (format is not {FORMAT})")
    if not isinstance(doc.get("sections"), dict):
        raise IntegrityError("the export has no 'sections' mapping")
    return doc


def address_warnings(doc: dict, listening: list[str]) -> list[str]:
    """A warning when the export's interface addresses are not where this appliance listens (an export
    from another machine: its networking would not match this one's)."""
    net = doc["sections"].get("networking")
    if not isinstance(net, dict) or not isinstance(net.get("interfaces"), list):
        return []
    exported = sorted({str(a.get("address")) for i in net["interfaces"] if isinstance(i, dict)
                       for a in (i.get("addresses") or []) if isinstance(a, dict) and a.get("address")})
    here = sorted({h for h in listening if h not in ("0.0.0.0", "::", "")})
    if not exported or not here or set(exported) & set(here):
        return []
    return [f"the export's interface addresses ({', '.join(exported)}) differ from where this appliance "
            f"listens ({', '.join(here)}): check Networking before relying on them (an export from another "
            "machine keeps that machine's addresses)"]


class Refused(BaseModel):
    section: str
    field: str | None
    message: str


class Ignored(BaseModel):
    section: str
    reason: str


class ImportReport(BaseModel):
    """What ``import_document`` did with each section of the export."""
    applied: list[str]
    refused: list[Refused]
    ignored: list[Ignored]
    warnings: list[str]


def import_document(appliance: ConfigHost, data: bytes, actor: str, source_ip: str | None) -> dict:
    try:
        doc = parse(data)
    except TetherError as exc:  # nothing applied; the attempt and its reason are on record
        appliance.audit.record(actor, "config.import.failed", "-", source_ip, {"error": exc.message})
        raise
    report: dict = {"applied": [], "refused": [], "ignored": [],
                    "warnings": address_warnings(doc, appliance.listen_hosts())}
    for name, body in doc["sections"].items():
        if name not in SECTIONS:
            report["ignored"].append({"section": name, "reason": "unknown section"})
            continue
        if not isinstance(body, dict):
            report["refused"].append({"section": name, "field": name, "message": "not a mapping"})
            continue
        body = {k: (dict(v) if isinstance(v, dict) else v) for k, v in body.items()}
        for sec, sub, key in SEALED_FIELDS:  # secrets are not in exports: keep the current value
            if sec == name and isinstance(body.get(sub), dict) and not body[sub].get(key):
                body[sub][key] = MASK
        try:
            appliance.update_settings(name, body, actor, source_ip)
            report["applied"].append(name)
        except TetherError as exc:
            report["refused"].append({"section": name, "field": exc.field, "message": exc.message})
    appliance.audit.record(actor, "config.import", ",".join(report["applied"]) or "-", source_ip,
                           {"refused": [r["section"] for r in report["refused"]],
                            "reasons": [f"{r['section']}: {r['message']}" for r in report["refused"]],
                            "warnings": report["warnings"]})
    return report
