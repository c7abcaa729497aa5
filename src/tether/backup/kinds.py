"""The archive kinds built on the same container (docs/formats/nsb.md,
docs/formats/snapshot.md and docs/formats/kit.md): a site backup (.nsb), a
whole-appliance snapshot (.tsnap) and a recovery kit (.tkit). They differ in header name, format names, which members
they may hold, and whether a password is mandatory."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_SHA = r"[0-9a-f]{64}"
_NSB_FILE = re.compile(rf"^files/{_SHA}$")
_KIT_FIXED = ("runbook.md", "appliance-config.yaml")
_KIT_MEMBER = re.compile(r"^(site-package\.tsp|site-backup\.nsb|vendor-keys/[0-9]{1,3}\.pem|"
                         r"certificates/[0-9]{1,6}-[A-Za-z0-9._-]{1,80}\.(p12|pem))$")
_SNAP_MEMBER = re.compile(r"^(appliance\.db|secret\.key|site-package\.tsp|site/site\.db|site/(files|recordings)/[A-Za-z0-9._/-]+)$")


def _nsb_names(names: list) -> bool:
    return bool(names) and names[0] == "site.db" and all(isinstance(n, str) and _NSB_FILE.match(n) for n in names[1:])


def _snapshot_names(names: list) -> bool:
    return len(names) >= 2 and names[0] == "appliance.db" and names[1] == "secret.key" and all(
        isinstance(n, str) and _SNAP_MEMBER.match(n) and ".." not in n.split("/") for n in names)


def _kit_names(names: list) -> bool:
    return len(names) >= 2 and tuple(names[:2]) == _KIT_FIXED and all(
        isinstance(n, str) and _KIT_MEMBER.match(n) and ".." not in n for n in names[2:])


@dataclass(frozen=True)
class ArchiveKind:
    label: str
    noun: str
    header_name: str
    format: str
    manifest_format: str
    header_keys: tuple[str, ...]  # header fields the manifest repeats: they must agree
    header_fields: tuple[str, ...]  # every field of the header, no more, no less
    names_ok: Callable[[list], bool]
    password_required: bool = False


NSB = ArchiveKind("Tether site backup (.nsb)", "backup", "nsb.json", "tether-nsb/1", "tether-nsb-manifest/1",
                  ("product_version", "site_name", "edition", "backup_id", "created_at"),
                  ("format", "protected", "product_version", "site_name", "edition", "created_at", "backup_id",
                   "payload"), _nsb_names)
SNAPSHOT = ArchiveKind("Tether appliance snapshot (.tsnap)", "snapshot", "snapshot.json", "tether-snapshot/1",
                       "tether-snapshot-manifest/1",
                       ("appliance_version", "serial_number", "snapshot_id", "created_at"),
                       ("format", "protected", "appliance_version", "serial_number", "snapshot_id", "created_at",
                        "payload"), _snapshot_names, password_required=True)
KIT = ArchiveKind("Tether recovery kit (.tkit)", "recovery kit", "kit.json", "tether-kit/1", "tether-kit-manifest/1",
                  ("appliance_version", "serial_number", "hostname", "kit_id", "created_at"),
                  ("format", "protected", "appliance_version", "serial_number", "hostname", "kit_id", "created_at",
                   "payload"), _kit_names, password_required=True)
