"""The two archive kinds built on the same container (docs/formats/nsb.md and
docs/formats/snapshot.md): a site backup (.nsb) and a whole-appliance
snapshot (.tsnap). They differ in header name, format names, which members
they may hold, and whether a password is mandatory."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_SHA = r"[0-9a-f]{64}"
_NSB_FILE = re.compile(rf"^files/{_SHA}$")
_SNAP_MEMBER = re.compile(r"^(appliance\.db|secret\.key|site/site\.db|site/(files|recordings)/[A-Za-z0-9._/-]+)$")


def _nsb_names(names: list) -> bool:
    return bool(names) and names[0] == "site.db" and all(isinstance(n, str) and _NSB_FILE.match(n) for n in names[1:])


def _snapshot_names(names: list) -> bool:
    return len(names) >= 2 and names[0] == "appliance.db" and names[1] == "secret.key" and all(
        isinstance(n, str) and _SNAP_MEMBER.match(n) and ".." not in n.split("/") for n in names)


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
