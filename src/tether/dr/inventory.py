"""What a restore rehearsal compares between the live site and its restored
copy: the site's users and its settings, each reduced to a digest (never a
password hash or a secret in a report), and the differences by name."""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from tether.site.tables import site_settings, users

PROBE_KEY = "drill_probe"  # the failover drill's probe workload writes here (failover_drill.py); never compared
USER_FIELDS = ("display_name", "email", "password_hash", "must_change_password", "is_admin", "permissions",
               "enabled", "timezone")  # not last_login_at: a login after the backup is not a lost change


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def take(engine: sa.Engine) -> dict:
    """``{"users": {name: digest}, "settings": {key: digest}}`` of the site behind ``engine``."""
    with engine.connect() as c:
        names = [c_.name for c_ in users.c if c_.name in USER_FIELDS]
        rows = c.execute(sa.select(users.c.username, *(users.c[n] for n in names))).all()
        us = {r.username: _digest({n: getattr(r, n) for n in names}) for r in rows}
        st = {r.key: _digest(r.value) for r in c.execute(sa.select(site_settings.c.key, site_settings.c.value))
              if r.key != PROBE_KEY}
    return {"users": us, "settings": st}


def read_only_sqlite(path) -> sa.Engine:
    """An engine that only reads the SQLite database at ``path`` (a scratch copy another process serves)."""
    return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=sa.pool.NullPool)


def compare(live: dict, restored: dict) -> dict:
    """Per kind: counts on both sides, what only the live site has (made after the backup), what only the
    restored copy has (removed since), what differs; ``matches`` when nothing does."""
    out: dict = {"matches": True}
    for kind in ("users", "settings"):
        a, b = live[kind], restored[kind]
        d = {"live": len(a), "restored": len(b),
             "only_live": sorted(set(a) - set(b)), "only_restored": sorted(set(b) - set(a)),
             "changed": sorted(k for k in set(a) & set(b) if a[k] != b[k])}
        if d["only_live"] or d["only_restored"] or d["changed"]:
            out["matches"] = False
        out[kind] = d
    return out


def describe(cmp: dict) -> list[str]:
    """One line per difference, for the text report and the page."""
    lines = []
    for kind in ("users", "settings"):
        d = cmp[kind]
        for label, key in (("only on the live site (made after the backup)", "only_live"),
                           ("only in the backup (removed since)", "only_restored"),
                           ("changed since the backup", "changed")):
            if d[key]:
                lines.append(f"{kind} {label}: {', '.join(d[key])}")
    return lines
