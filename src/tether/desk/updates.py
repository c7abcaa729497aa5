"""Releases as the vendor's update service sees them (REL-01..04).

The catalog is ``tether.core.releases.CATALOG`` (the rules the appliance
applies too) unless ``--catalog FILE`` names a YAML file that replaces it::

    releases:
      - {version: 1.2.0, ga: 2027-03-01, upgrade_from: ["1.1"], critical_security: false}

Lifecycle (REL-02): a major is supported for two years from its GA, then
retired. Update schedule of a hosted appliance (REL-04), from its installed
version and its level:

* level 1 (default): each newer release, two weeks after its GA;
* level 2: five months after the GA of each newer major, to the newest
  release of that major out by then;
* a critical security release: immediately, whatever the level;
* only targets the catalog allows upgrading to from the installed version
  (REL-03); when several triggers are already past, the newest target wins;
* the notice goes out at least one week before the update; if it could not
  (the job ran late, the appliance was registered late), the update moves to
  one week after the notice. Critical updates are noticed and applied at once.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from pathlib import Path

import sqlalchemy as sa
import yaml

from tether.core.errors import Conflict, Invalid, NotFound
from tether.core.releases import Catalog, Release, Version

from . import tables
from .bizclock import TZ
from .clock import from_iso, iso
from .context import one
from .mailout import queue
from .schemas import HostedIn

NOTICE = timedelta(weeks=1)
LEVEL1_DELAY = timedelta(weeks=2)
LEVEL2_MONTHS = 5
_h = tables.hosted


def load_catalog(path: Path) -> Catalog:
    try:
        doc = yaml.safe_load(Path(path).read_text())
        releases = [Release(Version.parse(str(r["version"])), _date(r["ga"]),
                            tuple(str(s) for s in r.get("upgrade_from", ())),
                            bool(r.get("critical_security", False)), str(r.get("schema_revision", "0001")))
                    for r in doc["releases"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise Invalid(f"cannot read the release catalog {path}: {exc}", field="catalog") from None
    return Catalog(sorted(releases, key=lambda r: r.version))


def _date(v) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v))


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), TZ)


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def lifecycle(catalog: Catalog, on: date) -> list[dict]:
    """Each release with its major's GA, end of support and state on ``on``."""
    out = []
    for r in sorted(catalog.releases, key=lambda r: r.version):
        eos = catalog.end_of_support(r.version)
        out.append({
            "version": str(r.version), "major": r.version.major_line, "kind": "major" if r.is_major else "maintenance",
            "ga": r.ga.isoformat(), "major_ga": catalog.major_ga(r.version.major_line).isoformat(),
            "end_of_support": eos.isoformat(), "supported": catalog.is_supported(r.version, on),
            "upgrade_from": list(r.upgrade_from), "critical_security": r.critical_security,
        })
    return out


def _triggers(catalog: Catalog, current: Version, level: int):
    newer = [r for r in catalog.releases if r.version > current]
    ok = [r for r in newer if catalog.supports_upgrade(r.version, current)]
    for r in newer:
        if r.critical_security and r in ok:
            yield _midnight(r.ga), r, "critical security update"
        elif level == 1 and r in ok:
            yield _midnight(r.ga) + LEVEL1_DELAY, r, f"level 1: two weeks after the release of {r.version}"
        elif level == 2 and r.is_major:
            at = _midnight(add_months(r.ga, LEVEL2_MONTHS))
            best = max((x for x in ok if x.version.major_line == r.version.major_line and _midnight(x.ga) <= at),
                       key=lambda x: x.version, default=None)
            if best is not None:
                yield at, best, f"level 2: five months after major {r.version.major_line}"


def plan(catalog: Catalog, current: str, level: int, now: datetime, notice_sent: datetime | None = None,
         notice_target: str | None = None) -> dict | None:
    """The next update of an appliance at ``current`` on ``level``, or None."""
    cur = Version.parse(current)
    triggers = sorted(_triggers(catalog, cur, level), key=lambda t: t[0])
    if not triggers:
        return None
    past = [t for t in triggers if t[0] <= now]
    if past:
        at = max(t[0] for t in past)
        _, rel, why = max(past, key=lambda t: t[1].version)
        critical = any(t[1].critical_security for t in past)
    else:
        at, rel, why = triggers[0]
        critical = rel.critical_security
    sent = notice_sent if notice_target == str(rel.version) else None
    if critical:
        update_at = max(at, now) if sent is None else max(at, sent)
        notice_due = update_at
    else:
        floor = (sent if sent is not None else max(now, at - NOTICE)) + NOTICE
        update_at = max(at, floor)
        notice_due = sent or update_at - NOTICE
    return {"target": str(rel.version), "at": iso(update_at), "reason": why, "critical": critical,
            "notice_due": iso(notice_due), "notice_sent_at": iso(sent)}


def register(desk, data: HostedIn) -> dict:
    with desk.tx() as c:
        if not one(c, sa.select(tables.customers).where(tables.customers.c.id == data.customer_id)):
            raise NotFound(f"no customer {data.customer_id}", field="customer_id")
        if one(c, sa.select(_h).where(_h.c.name == data.name)):
            raise Conflict(f"hosted appliance {data.name!r} exists already", field="name")
        c.execute(_h.insert().values(**data.model_dump()))
    return schedule_for(desk, data.name)


def installed(desk, name: str, version: str) -> dict:
    with desk.tx() as c:
        if not c.execute(_h.update().where(_h.c.name == name).values(version=version)).rowcount:
            raise NotFound(f"no hosted appliance {name!r}", field="name")
    return schedule_for(desk, name)


def _last_notice(conn, name: str) -> tuple[datetime | None, str | None]:
    n = tables.notices
    row = one(conn, sa.select(n).where(n.c.appliance == name).order_by(n.c.sent_at.desc()))
    return (from_iso(row["sent_at"]), row["target"]) if row else (None, None)


def schedule_for(desk, name: str, now: datetime | None = None) -> dict:
    now = now or desk.now()
    with desk.read() as c:
        row = one(c, sa.select(_h).where(_h.c.name == name))
        if row is None:
            raise NotFound(f"no hosted appliance {name!r}", field="name")
        sent, target = _last_notice(c, name)
    row["next_update"] = plan(desk.catalog, row["version"], row["level"], now, sent, target)
    return row


def schedules(desk) -> list[dict]:
    with desk.read() as c:
        names = [r[0] for r in c.execute(sa.select(_h.c.name).order_by(_h.c.name))]
    return [schedule_for(desk, n) for n in names]


def send_notices(desk, now: datetime) -> int:
    """Mail each appliance's update notice once, when it falls due."""
    n = 0
    for s in schedules(desk):
        p = plan(desk.catalog, s["version"], s["level"], now, *_notice_of(desk, s["name"]))
        if p is None or p["notice_sent_at"] or now < from_iso(p["notice_due"]):
            continue
        with desk.tx() as c:
            c.execute(tables.notices.insert().values(
                appliance=s["name"], target=p["target"], sent_at=iso(now), update_at=p["at"]))
            kind = "Critical security update" if p["critical"] else "Scheduled update"
            queue(c, now, s["contact_email"], f"{kind} of {s['name']} to {p['target']} on {p['at']}",
                  f"{kind}: hosted appliance {s['name']} (now {s['version']}) will be updated to "
                  f"{p['target']} on {p['at']}.\nReason: {p['reason']}.\n")
        n += 1
    return n


def _notice_of(desk, name: str):
    with desk.read() as c:
        return _last_notice(c, name)
