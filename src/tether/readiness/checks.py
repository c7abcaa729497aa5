"""The named checks of the readiness audit (DR-01), one function each, and
``run``, which runs them all into one report (docs/formats/readiness.md).

Every check reads what was really done: backups and snapshots from the audit
entries their actions write (``backup.create`` in the site's log,
``snapshot.create`` in the appliance's), exports of certificates and of the
configuration from ``cert.export`` and ``config.export`` (with the
fingerprint and digest of what was exported), software changes from
``site.install`` / ``site.update``, the copies kept off the appliance from
``readiness.copies``; the certificates from the store and their assignments;
failover from the pair's live status; the jobs from the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from pydantic import BaseModel, Field

from tether.appliance import config_export
from tether.appliance.admin import AdminAccount
from tether.appliance.settings import ApplianceSettings, Readiness
from tether.core import clock
from tether.core.audit import AuditLog

PASS, WARN, FAIL = "pass", "warn", "fail"
ORDER = {PASS: 0, WARN: 1, FAIL: 2}
SOFTWARE_ACTIONS = ("site.install", "site.update")


class ReadinessHost(Protocol):
    """What the audit reads of the running appliance (``tether.runtime.Appliance``)."""

    audit: AuditLog
    settings: ApplianceSettings
    admin: AdminAccount
    jobs: Any  # status() -> list of job documents
    failover: Any  # status_doc(), settings()
    certificates: Any  # CertificateService: listing()

    @property
    def site(self) -> Any: ...


class Counts(BaseModel):
    model_config = {"populate_by_name": True}
    pass_: int = Field(alias="pass")
    warn: int
    fail: int


class CheckResult(BaseModel):
    """One check as ``Check.public`` reports it."""
    name: str
    title: str
    status: str
    detail: str
    mend: str | None
    data: dict[str, Any]


class Report(BaseModel):
    """The readiness audit's report (``run``): every check, the worst status, how many of each."""
    checked_at: float
    status: str
    counts: Counts
    checks: list[CheckResult]


@dataclass
class Check:
    name: str
    title: str
    status: str
    detail: str
    mend: str | None = None  # the command or page that mends a warning or a failure
    data: dict = field(default_factory=dict)

    def public(self) -> dict:
        return {"name": self.name, "title": self.title, "status": self.status, "detail": self.detail,
                "mend": self.mend, "data": self.data}


@dataclass
class Context:
    host: ReadinessHost
    limits: Readiness
    now: float
    _cache: dict = field(default_factory=dict)

    def latest(self, log: AuditLog | None, *actions: str) -> list[dict]:
        if log is None:
            return []
        key = (id(log), actions)
        if key not in self._cache:
            self._cache[key] = log.latest(actions, limit=500)
        return self._cache[key]

    @property
    def site_log(self) -> AuditLog | None:
        site = self.host.site
        return site.audit if site is not None else None

    def assigned(self) -> list[dict]:
        """The certificates of one's own assigned to an address (the built-in one is never exported)."""
        if "assigned" not in self._cache:
            listing = self.host.certificates.listing()
            ids = set(listing["assignments"].values())
            self._cache["assigned"] = [c for c in listing["certificates"] if c["id"] in ids and not c["builtin"]]
        return self._cache["assigned"]


def _ago(seconds: float) -> str:
    return f"{clock.span(seconds)} ago"


NO_SITE = "install a site package: /appliance/site (or `tether site-package install FILE --url URL`)"
BACKUP_MEND = "take a site backup and keep it off the appliance: `tether backup --out DIR --url URL` " \
              "(or /login/software, or POST /api/backup)"


def _backups(ctx: Context) -> list[dict]:
    """Site backups that left the appliance (the one kept in <data>/backups before an update is not one)."""
    # a backup counts when it left the appliance: not one kept in <data>/backups, not a drill's scratch copy
    return [e for e in ctx.latest(ctx.site_log, "backup.create")
            if not (e["details"] or {}).get("kept_on_appliance") and (e["details"] or {}).get("actor_kind") != "drill"]


def site_backup_recent(ctx: Context) -> Check:
    title = "A recent site backup"
    if ctx.host.site is None:
        return Check("site_backup_recent", title, FAIL, "no site is installed", NO_SITE)
    limit = ctx.limits.backup_max_age_hours * 3600
    found = _backups(ctx)
    if not found:
        return Check("site_backup_recent", title, FAIL, "no site backup has ever been taken", BACKUP_MEND)
    age = ctx.now - found[0]["at"]
    data = {"last_backup_at": found[0]["at"], "age_seconds": round(age, 1), "max_age_seconds": limit}
    if age > limit:
        return Check("site_backup_recent", title, FAIL, f"the last site backup was taken {_ago(age)}, more than "
                     f"{ctx.limits.backup_max_age_hours} h ago", BACKUP_MEND, data)
    return Check("site_backup_recent", title, PASS, f"the last site backup was taken {_ago(age)} "
                 f"({found[0]['target']})", data=data)


def backup_since_update(ctx: Context) -> Check:
    title = "A backup since the last software update"
    if ctx.host.site is None:
        return Check("backup_since_update", title, FAIL, "no site is installed", NO_SITE)
    changes = ctx.latest(ctx.host.audit, *SOFTWARE_ACTIONS)
    backups = _backups(ctx)
    if not changes:
        return Check("backup_since_update", title, PASS, "no site software change is recorded")
    last = changes[0]
    version = (last["details"] or {}).get("version")
    data = {"software_changed_at": last["at"], "version": version,
            "last_backup_at": backups[0]["at"] if backups else None}
    if not backups or backups[0]["at"] < last["at"]:
        return Check("backup_since_update", title, FAIL, f"no site backup since the site software became {version} "
                     f"({_ago(ctx.now - last['at'])})", BACKUP_MEND, data)
    return Check("backup_since_update", title, PASS, f"a backup was taken after the site software became {version}",
                 data=data)


def _exports(ctx: Context) -> list[dict]:
    return ctx.latest(ctx.host.audit, "cert.export")


def certificates_exported(ctx: Context) -> Check:
    title = "Each assigned certificate exported as .p12 with key and chain"
    certs = ctx.assigned()
    if not certs:
        return Check("certificates_exported", title, WARN,
                     "no certificate of your own is assigned: listeners present the built-in certificate, which a "
                     "rebuilt appliance cannot present again (clients pinned to it must be re-pinned)",
                     "generate or import a certificate and assign it: /appliance/certificates "
                     "(`tether cert generate` / `tether cert import`, then `tether cert assign`)")
    missing = []
    for c in certs:
        done = any((e["details"] or {}).get("id") == c["id"]
                   and (e["details"] or {}).get("fingerprint_sha256") == c.get("fingerprint_sha256")
                   and (e["details"] or {}).get("private_key") and (e["details"] or {}).get("chain")
                   for e in _exports(ctx))
        if not done:
            missing.append(c)
    data = {"assigned": [c["id"] for c in certs], "not_exported": [c["id"] for c in missing]}
    if missing:
        names = ", ".join(f"{c['name']!r} (id {c['id']})" for c in missing)
        first = missing[0]["id"]
        return Check("certificates_exported", title, FAIL,
                     f"not exported with its private key and chain since it last changed: {names}",
                     f"`tether cert export --id {first} --out CERT.p12 --passphrase-file FILE --url URL` "
                     "(or Export on /appliance/certificates) and keep the file off the appliance", data)
    return Check("certificates_exported", title, PASS,
                 f"{len(certs)} assigned certificate(s) exported with key and chain", data=data)


def config_exported(ctx: Context) -> Check:
    title = "The /appliance configuration exported since it last changed"
    mend = ("export it and keep the file off the appliance: `tether settings export --out DIR` (or Export on "
            "/appliance/maintenance), or download a recovery kit (`tether kit export`)")
    exports = ctx.latest(ctx.host.audit, "config.export", "kit.export")  # a recovery kit holds the export too
    now_digest = config_export.digest(ctx.host)
    if not exports:
        return Check("config_exported", title, FAIL, "the /appliance configuration has never been exported", mend)
    last = exports[0]
    details = last["details"] or {}
    data = {"exported_at": last["at"], "exported_sha256": details.get("sha256") or details.get("config_sha256"),
            "current_sha256": now_digest}
    if data["exported_sha256"] != now_digest:
        return Check("config_exported", title, FAIL, "the configuration changed after its last export "
                     f"({_ago(ctx.now - last['at'])})", mend, data)
    return Check("config_exported", title, PASS, f"exported {_ago(ctx.now - last['at'])}, unchanged since", data=data)


def copies_kept(ctx: Context) -> Check:
    title = "The site package and the vendor public key kept off the appliance"
    mend = ("show the appliance your copies: `tether readiness copies --package SITE.tsp --vendor-key VENDOR.pub "
            "--url URL` (or POST /appliance/api/readiness/copies)")
    installs = ctx.latest(ctx.host.audit, *SOFTWARE_ACTIONS)
    if ctx.host.site is None or not installs:
        return Check("copies_kept", title, FAIL, "no site package is installed", NO_SITE)
    want = (installs[0]["details"] or {}).get("sha256")
    # shown to the appliance, or carried off it in a recovery kit (the kit holds the vendor keys as well)
    seen = [e for e in ctx.latest(ctx.host.audit, "readiness.copies", "kit.export")
            if (e["details"] or {}).get("package_sha256") == want and e["at"] >= installs[0]["at"]]
    if not seen:
        return Check("copies_kept", title, FAIL, "no copy of the installed site package and its vendor key has been "
                     "shown to the appliance since it was installed", mend, {"package_sha256": want})
    return Check("copies_kept", title, PASS, f"copies shown {_ago(ctx.now - seen[0]['at'])} match the installed "
                 "package and its vendor key", data={"package_sha256": want, "checked_at": seen[0]["at"]})


def failover_in_sync(ctx: Context) -> Check:
    title = "Failover healthy and in sync"
    doc = ctx.host.failover.status_doc()
    if not doc.get("paired"):
        return Check("failover_in_sync", title, PASS, "not in a failover pair", data={"paired": False})
    sync = doc.get("sync") or {}
    lag = sync.get("lag_seconds")
    limit = ctx.limits.sync_lag_max_seconds
    data = {"paired": True, "role": doc["role"], "peer_reachable": sync.get("peer_reachable"),
            "lag_seconds": lag, "lag_entries": sync.get("lag_entries"), "max_lag_seconds": limit}
    mend = "/login/failover (`tether failover status --url URL`; `tether failover sync-now` on the backup)"
    if doc.get("suspended"):
        return Check("failover_in_sync", title, FAIL, f"this appliance is suspended: {doc['suspended']}", mend, data)
    if not sync.get("peer_reachable"):
        return Check("failover_in_sync", title, FAIL, "the peer is not reachable", mend, data)
    if lag is None or lag > limit:
        return Check("failover_in_sync", title, FAIL, f"the backup is behind by {sync.get('lag_entries')} entries "
                     + (f"({lag:.1f} s)" if lag is not None else "(for an unknown time)")
                     + f", more than {limit} s", mend, data)
    return Check("failover_in_sync", title, PASS, f"{doc['role']}; the peer is reachable, lag {lag:.1f} s", data=data)


def connectivity_tests(ctx: Context, reachable: Callable[[str, str, int], bool] | None = None) -> Check:
    title = "Connectivity test addresses reachable"
    doc = ctx.host.failover.status_doc()
    if not doc.get("paired") or ctx.host.site is None:
        return Check("connectivity_tests", title, PASS, "not in a failover pair", data={"paired": False})
    from tether.failover import swing

    fs = ctx.host.failover.settings()
    mend = "set connectivity_test_ips on /login/failover (PUT /api/config/settings/failover)"
    if not fs.connectivity_test_ips:
        return Check("connectivity_tests", title, FAIL, "no connectivity test address is set: automatic failover "
                     "cannot tell an isolated appliance from a dead peer", mend)
    probe = reachable or (lambda ip, method, port: swing.reachable(ip, method, port, timeout=1.0))
    down = [ip for ip in fs.connectivity_test_ips if not probe(ip, fs.connectivity_test_method,
                                                             fs.connectivity_test_port)]
    data = {"addresses": list(fs.connectivity_test_ips), "unreachable": down}
    if down:
        return Check("connectivity_tests", title, FAIL, f"unreachable: {', '.join(down)}", mend, data)
    return Check("connectivity_tests", title, PASS, f"{len(fs.connectivity_test_ips)} address(es) answer", data=data)


CHAIN_CODES = ("chain_missing_intermediate", "chain_missing_root", "chain_unrelated", "chain_multiple_roots")


def certificate_chains(ctx: Context) -> Check:
    title = "A complete chain with exactly one root"
    certs = ctx.assigned()
    bad, self_signed = [], []
    for c in certs:
        problems = [w["message"] for w in c.get("warnings", []) if w["code"] in CHAIN_CODES]
        if problems:
            bad.append(f"{c['name']!r} (id {c['id']}): {'; '.join(problems)}")
        elif c.get("kind") == "self-signed":
            self_signed.append(c["name"])
    mend = ("import the certificate again as a .p12 holding its whole chain up to one root, and assign it: "
            "/appliance/certificates (`tether cert import`, `tether cert assign`)")
    if bad:
        return Check("certificate_chains", title, FAIL, "; ".join(bad), mend, {"problems": bad})
    if self_signed:
        return Check("certificate_chains", title, WARN, f"self-signed (clients trust it only if pinned): "
                     f"{', '.join(self_signed)}", mend)
    if not certs:
        return Check("certificate_chains", title, PASS, "only the built-in certificate is presented")
    return Check("certificate_chains", title, PASS, f"{len(certs)} assigned certificate(s) with complete chains")


def certificate_expiry(ctx: Context) -> Check:
    title = "No certificate near expiry"
    import datetime as dt

    days = ctx.limits.certificate_expiry_days
    soon = []
    for c in ctx.assigned():
        try:
            left = (dt.datetime.fromisoformat(c["not_after"].replace("Z", "+00:00")).timestamp() - ctx.now) / 86400
        except (KeyError, ValueError, AttributeError):
            continue
        if left < days:
            soon.append((c, left))
    data = {"threshold_days": days, "expiring": [{"id": c["id"], "name": c["name"], "days_left": round(left, 1)}
                                                 for c, left in soon]}
    if soon:
        text = ", ".join(f"{c['name']!r} (id {c['id']}) " + ("expired" if left <= 0 else f"in {left:.0f} days")
                         for c, left in soon)
        return Check("certificate_expiry", title, FAIL, f"expiring within {days} days: {text}",
                     "install a renewed certificate and assign it: /appliance/certificates "
                     "(`tether cert csr` ... `tether cert install-answer`, `tether cert assign`)", data)
    return Check("certificate_expiry", title, PASS, f"no assigned certificate expires within {days} days", data=data)


def default_passwords(ctx: Context) -> Check:
    title = "No default password on either face"
    appliance = ctx.host.admin.with_default_password()
    site = ctx.host.site.users.with_default_password() if ctx.host.site is not None else []
    data = {"appliance": appliance, "site": site}
    if appliance or site:
        who = [f"/appliance: {', '.join(appliance)}"] * bool(appliance) + [f"/login: {', '.join(site)}"] * bool(site)
        mend = ("log in and set a new password: " + " and ".join(
            (["/appliance/password (`tether password --face appliance`)"] if appliance else [])
            + (["/login/password (`tether password --face site --user NAME`)"] if site else [])))
        return Check("default_passwords", title, FAIL, "still the default password: " + "; ".join(who), mend, data)
    return Check("default_passwords", title, PASS, "no account on either face has the default password", data=data)


def integration_client(ctx: Context) -> Check:
    title = "An integration client pulling backups"
    if ctx.host.site is None:
        return Check("integration_client", title, FAIL, "no site is installed", NO_SITE)
    limit = ctx.limits.integration_pull_max_age_hours * 3600
    mend = ("have the integration client download backups with an API account holding the backup permission "
            "(POST /api/oauth/token, then POST /api/backup); API accounts: /login/api-accounts")
    pulls = [e for e in _backups(ctx) if (e["details"] or {}).get("actor_kind") == "api_account"]
    if not pulls:
        return Check("integration_client", title, FAIL, "no API account has ever downloaded a backup", mend)
    age = ctx.now - pulls[0]["at"]
    data = {"account": pulls[0]["actor"], "last_pull_at": pulls[0]["at"], "age_seconds": round(age, 1)}
    if age > limit:
        return Check("integration_client", title, FAIL, f"the last backup an API account ({pulls[0]['actor']}) "
                     f"downloaded was {_ago(age)}, more than {ctx.limits.integration_pull_max_age_hours} h ago",
                     mend, data)
    return Check("integration_client", title, PASS, f"API account {pulls[0]['actor']!r} downloaded a backup "
                 f"{_ago(age)}", data=data)


def snapshot_recent(ctx: Context) -> Check:
    title = "A recent appliance snapshot"
    limit = ctx.limits.snapshot_max_age_days * 86400
    mend = "`tether snapshot create --out DIR --password-file FILE --url URL` (or POST /appliance/api/snapshot)"
    found = ctx.latest(ctx.host.audit, "snapshot.create")
    if not found:
        return Check("snapshot_recent", title, FAIL, "no appliance snapshot has ever been taken", mend)
    age = ctx.now - found[0]["at"]
    data = {"last_snapshot_at": found[0]["at"], "age_seconds": round(age, 1)}
    if age > limit:
        return Check("snapshot_recent", title, FAIL, f"the last snapshot was taken {_ago(age)}, more than "
                     f"{ctx.limits.snapshot_max_age_days} days ago", mend, data)
    return Check("snapshot_recent", title, PASS, f"the last snapshot was taken {_ago(age)}", data=data)


def background_jobs(ctx: Context) -> Check:
    title = "Background jobs running"
    jobs = ctx.host.jobs.status()
    failing = [j for j in jobs if j.get("last_error")]  # the runner clears it when a run succeeds
    data = {"jobs": len(jobs), "failing": [j["name"] for j in failing]}
    if failing:
        return Check("background_jobs", title, WARN, "; ".join(f"{j['name']}: {j['last_error']}" for j in failing),
                     "see GET /appliance/api/jobs and the process log", data)
    return Check("background_jobs", title, PASS, f"{len(jobs)} job(s), none failing", data=data)


CHECKS: tuple[Callable[[Context], Check], ...] = (
    site_backup_recent, backup_since_update, certificates_exported, config_exported, copies_kept,
    failover_in_sync, connectivity_tests, certificate_chains, certificate_expiry, default_passwords,
    integration_client, snapshot_recent, background_jobs)


def run(host: ReadinessHost, now: float | None = None) -> dict:
    """Every check, in order; the report's ``status`` is the worst of them."""
    ctx = Context(host, host.settings.get("monitoring").readiness, clock.now() if now is None else now)
    checks = []
    for fn in CHECKS:
        try:
            checks.append(fn(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            checks.append(Check(fn.__name__, fn.__name__.replace("_", " "), FAIL, f"the check itself failed: {exc}",
                                "see the process log"))
    counts = {s: sum(1 for c in checks if c.status == s) for s in (PASS, WARN, FAIL)}
    worst = max((c.status for c in checks), key=ORDER.__getitem__, default=PASS)
    return {"checked_at": ctx.now, "status": worst, "counts": counts, "checks": [c.public() for c in checks]}
