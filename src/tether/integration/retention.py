"""Which site backups to keep (restic's ``forget`` semantics, in UTC).

Backups are taken newest first. ``keep_last`` keeps the n newest.
``keep_daily`` keeps the newest backup of each of the n most recent days
that have one; ``keep_weekly`` and ``keep_monthly`` the same per ISO week
and per calendar month. A backup kept by any rule is kept. With no rule at
all nothing is removed. Days that have no backup do not count against n
(as in restic), so a gap does not shorten the history kept."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .config import Retention

STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"-(\d{8}T\d{6}Z)\.nsb$")


@dataclass(frozen=True)
class Snapshot:
    key: str
    at: dt.datetime


def stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime(STAMP)


def parse(keys: list[str]) -> list[Snapshot]:
    """The backups among ``keys`` (named ``...-<UTC stamp>.nsb``), newest first."""
    out = []
    for key in keys:
        m = _NAME.search(key)
        if m:
            out.append(Snapshot(key, dt.datetime.strptime(m.group(1), STAMP).replace(tzinfo=dt.timezone.utc)))
    return sorted(out, key=lambda s: (s.at, s.key), reverse=True)


_BUCKETS = {
    "keep_daily": lambda d: d.date(),
    "keep_weekly": lambda d: d.isocalendar()[:2],
    "keep_monthly": lambda d: (d.year, d.month),
}


def plan(snapshots: list[Snapshot], policy: Retention) -> tuple[list[tuple[Snapshot, list[str]]], list[Snapshot]]:
    """(kept with the rules that keep each, removed); both newest first."""
    snaps = sorted(snapshots, key=lambda s: (s.at, s.key), reverse=True)
    if policy.empty:
        return [(s, ["no policy"]) for s in snaps], []
    reasons: dict[str, list[str]] = {s.key: [] for s in snaps}
    for s in snaps[:policy.keep_last]:
        reasons[s.key].append("last")
    for rule, bucket_of in _BUCKETS.items():
        n = getattr(policy, rule)
        seen = []
        for s in snaps:
            if len(seen) >= n:
                break
            b = bucket_of(s.at)
            if b not in seen:
                seen.append(b)
                reasons[s.key].append(rule.removeprefix("keep_"))
    kept = [(s, reasons[s.key]) for s in snaps if reasons[s.key]]
    removed = [s for s in snaps if not reasons[s.key]]
    return kept, removed
