"""Version rules for restoring a backup (BK-07 with REL-01..03).

- same version: restores;
- older, and its major line is among the running release's upgrade sources
  (or the same major line): restores and is migrated up;
- older, not a supported source: refused unless forced; the refusal and the
  force both name the risk;
- newer: always refused.
Hardware model and serial number never matter.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.core.errors import Conflict
from tether.core.releases import CATALOG, Version


@dataclass(frozen=True)
class Verdict:
    action: str  # "same" | "migrate" | "forced"
    message: str


def judge(backup_version: str, running_version: str, *, force: bool = False) -> Verdict:
    b = Version.parse(backup_version, field_name="product_version")
    r = Version.parse(running_version)
    if b > r:
        raise Conflict(f"the backup is from version {b}, newer than this appliance's {r}; "
                       "a newer backup is never restored onto older software",
                       hint=f"update this appliance to {b} or newer first")
    if b == r:
        return Verdict("same", f"same version {b}")
    if CATALOG.supports_upgrade(r, b) and CATALOG.get(b) is not None:
        return Verdict("migrate", f"version {b} is a supported upgrade source of {r}; the site will be migrated")
    risk = (f"version {b} is not a supported upgrade source of {r}: its data may be migrated wrongly or "
            "incompletely, and the restored site may misbehave")
    if CATALOG.get(b) is None:
        risk = f"version {b} is unknown to this appliance's release catalog: its schema cannot be migrated safely"
    if not force:
        raise Conflict(f"refused: {risk}",
                       hint="restore it on an intermediate release first, or pass --force to accept the risk")
    return Verdict("forced", f"FORCED: {risk}")
