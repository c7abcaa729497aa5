"""The failover part of a drill (DR-02): a planned failover of a pair and
back, or (``unplanned``) a controlled stop of the primary's serving and the
peer's automatic takeover, and back; run on the primary, measured.

- **Probe workload.** While the drill runs, a one-shot job writes a counter
  to the site setting ``drill_probe`` every ``PROBE_EVERY`` seconds, through
  the site's write fence like any write. A write is *acknowledged* when its
  commit returned; after the step-down the fence refuses them (counted as
  refused, never as lost).
- **Over.** ``set_failover_role(backup, data_sync_first)`` (IC-04): this
  primary asks its peer to promote; the peer catches up and takes the role.
- **Measured.** Detection: the first probe write the fence refused (the
  old primary has stepped down). The peer's heartbeat answers carry its
  term (promoted at,
  traffic swung at, first client welcomed in this term: its client hub's
  view). RTO is from the fault (the step-down asked) to the first client
  back on the new primary; when no client was connected before the fault,
  to the swing (the service back), and the report says so.
- **RPO.** Once this appliance, now the backup, has applied the new
  primary's whole log, the counter in its copy is the new primary's: the
  acknowledged writes it lacks are lost (a planned failover must lose none).
  An orphan file written meanwhile also counts as loss.
- **Unplanned.** Instead of asking, this primary stops serving: it
  suspends itself (no clients, no writes: the fence refuses them) and goes
  silent to its peer (``RoleManager.drill_hold``: no heartbeats, every peer
  route refused, its change stream ended), which is what the peer sees of a
  dead primary. Its data and process stay as they are. The peer, with
  automatic failover on and a connectivity test address it reaches, takes
  over after the primary timeout T; this appliance watches the peer's
  ``/health`` through the pinned peer link (not counted as contact) and then
  listens again, learns of the newer primary and yields, keeping what the
  peer lacks in an orphan file (RPO counts it). Detection is the peer's own
  (T seen passed). Bounded: if the peer has not taken over within T + 20 s
  this appliance serves again and the drill fails.
- **Back.** ``become_primary(data_sync_first)`` here, timed the same way on
  this appliance's own hub, then the probe setting is removed.

Before anything changes, the pair must be healthy (paired, this appliance
primary, the peer heard lately and in sync); otherwise the drill reports why
and leaves the pair as it is.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import sqlalchemy as sa

from tether.core.errors import NotPrimary, TetherError
from tether.site.tables import site_settings

from .inventory import PROBE_KEY
from .scratch import RehearsalFailed

PROBE_EVERY = 0.02
WAIT = 30.0  # s: each bounded wait (peer promoted, clients back, in sync)
CONTACT_MAX = 3.0  # s: the peer must have been heard this recently to start
UNPLANNED_MARGIN = 20.0  # s: beyond the primary timeout, for the peer's automatic takeover
SUSPENDED = "a drill rehearses an unplanned failover: this primary stopped serving"


class Probe:
    """Acknowledged writes of a small workload (run by the job runner: ``run(stop)``)."""

    def __init__(self, engine: sa.Engine, drill_id: str):
        self.engine = engine
        self.drill_id = drill_id
        self.n = 0
        self.acked = 0
        self.refused = 0
        self.fenced_at: float | None = None  # the first write the fence refused
        self.stop = threading.Event()
        self.done = threading.Event()

    def write(self, n: int) -> None:
        value = {"drill": self.drill_id, "n": n}
        with self.engine.begin() as c:
            if c.execute(site_settings.update().where(site_settings.c.key == PROBE_KEY)
                         .values(value=value, updated_at=time.time())).rowcount == 0:
                c.execute(site_settings.insert().values(key=PROBE_KEY, value=value, updated_at=time.time()))

    def run(self) -> None:
        try:
            while not self.stop.wait(PROBE_EVERY):
                n = self.n + 1
                try:
                    self.write(n)
                except (TetherError, sa.exc.SQLAlchemyError) as exc:
                    self.refused += 1  # the fence (a backup takes no writes): not acknowledged, never lost
                    if isinstance(exc, NotPrimary) and self.fenced_at is None:
                        self.fenced_at = time.time()  # the old primary has stepped down
                    continue
                self.n = self.acked = n
        finally:
            self.done.set()

    def value(self, engine: sa.Engine) -> int:
        with engine.connect() as c:
            v = c.execute(sa.select(site_settings.c.value).where(site_settings.c.key == PROBE_KEY)).scalar()
        return int(v["n"]) if isinstance(v, dict) and v.get("drill") == self.drill_id else 0

    def remove(self) -> None:
        with self.engine.begin() as c:
            c.execute(site_settings.delete().where(site_settings.c.key == PROBE_KEY))


def _wait(pred: Callable[[], Any], timeout: float = WAIT, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(every)


def precheck(svc) -> dict:
    """The pair's state; raises RehearsalFailed (nothing changed) unless a planned failover may start."""
    s = svc.status_doc()
    if not s.get("paired"):
        raise RehearsalFailed("this appliance is not in a failover pair")
    if s["role"] != "primary":
        raise RehearsalFailed(f"this appliance is the {s['role']} of its pair: run the drill on the primary")
    age = s.get("peer_contact_age_seconds")
    if age is None or age > CONTACT_MAX:
        raise RehearsalFailed(f"the peer {s['peer']['peer_address']} is unreachable "
                              f"(last heard {'never' if age is None else f'{age:.1f} s ago'}): nothing was changed")
    if not _wait(lambda: (svc.status_doc().get("sync") or {}).get("lag_entries") == 0, 10):
        raise RehearsalFailed("the backup is not in sync with this primary: nothing was changed")
    return s


def planned(svc, host, caller, source_ip: str | None, drill_id: str, submit: Callable[[str, Callable], Any],
            progress: Callable[[str], None]) -> dict:
    """Over to the peer and back; the figures (docs/formats/drill.md ``failover``)."""
    return _drill(svc, host, caller, source_ip, drill_id, submit, progress, unplanned=False)


def unplanned(svc, host, caller, source_ip: str | None, drill_id: str, submit: Callable[[str, Callable], Any],
              progress: Callable[[str], None]) -> dict:
    """A controlled stop of this primary's serving, the peer's automatic takeover, and back."""
    return _drill(svc, host, caller, source_ip, drill_id, submit, progress, unplanned=True)


def _peer_serves(svc) -> bool:
    """The peer's /health answers 200 (it serves as primary); asked through the pinned peer link, which the
    peer does not count as contact."""
    client = svc.client_to_peer(timeout=1.0)
    if client is None:
        return False
    try:
        with client:
            client.get("/health")
        return True
    except TetherError:
        return False


def _drill(svc, host, caller, source_ip: str | None, drill_id: str, submit, progress, *, unplanned: bool) -> dict:
    from tether.failover import orphans

    before = precheck(svc)
    site = host.site
    role = host.role
    roles = svc.roles
    orphans_before = len(orphans.list_files(host.data.orphans_dir))
    clients_before = host.client_total()
    out: dict = {"mode": "unplanned" if unplanned else "planned", "peer": before["peer"]["peer_address"],
                 "generation_before": before["generation"], "clients_before": clients_before}
    probe = Probe(site.engine, drill_id)
    submit("drill-probe", probe.run)
    try:
        _wait(lambda: probe.acked >= 5, 5)
        if unplanned:
            bound = float(svc.settings().primary_timeout_seconds) + UNPLANNED_MARGIN
            progress("failover: stopping this primary's serving (silent to its peer, no clients, no writes)")
            fault = time.time()
            roles.drill_hold = "silent"
            role.suspend(SUSPENDED)
            if not _wait(lambda: _peer_serves(svc), bound, every=0.1):
                raise RehearsalFailed(f"the backup did not take over within {bound:.0f} s (is automatic failover on "
                                      f"at the backup, with a connectivity test address it reaches?); this "
                                      f"appliance serves again")
            progress("failover: the backup took over; this appliance listens to it again")
            roles.drill_hold = "listening"
            if not _wait(lambda: role.current == "backup", 15):
                raise RehearsalFailed("this appliance did not step down for the new primary within 15 s")
            roles.drill_hold = None
            role.resume()
        else:
            progress("failover: asking the peer to take over (data sync first)")
            fault = time.time()
            svc.set_failover_role(caller, source_ip, "backup", data_sync_first=True)
        term = _wait(lambda: _term(roles.peer_state, fault))
        if not term:
            raise RehearsalFailed(f"the peer did not report itself primary within {WAIT:.0f} s")
        if clients_before:
            progress("failover: waiting for the first client on the new primary")
            term = _wait(lambda: (t := _term(roles.peer_state, fault)) and t.get("first_client_at") and t) or term
        if unplanned:
            detected = term.get("detected_at")
        else:
            _wait(lambda: probe.fenced_at, 2)
            detected = probe.fenced_at
        out["over"] = _figures(fault, detected, term, clients_before)
        # RPO: once this appliance, now backup, holds the new primary's whole log
        progress("failover: checking the acknowledged writes on the new primary")
        probe.stop.set()
        probe.done.wait(5)
        head = int((roles.peer_state or {}).get("head", 0))
        synced = _wait(lambda: svc.worker.status.applied_seq >= head)
        present = probe.value(host.site.engine)
        orphan_files = len(orphans.list_files(host.data.orphans_dir)) - orphans_before
        out["rpo"] = {"acknowledged": probe.acked, "refused": probe.refused, "on_new_primary": present,
                      "lost": max(0, probe.acked - present), "orphan_files": orphan_files,
                      "checked_in_sync": bool(synced)}
        out["rpo_writes_lost"] = out["rpo"]["lost"]
        # and back
        progress("failback: taking the primary role back (data sync first)")
        back = time.time()
        svc.become_primary(caller, source_ip, data_sync_first=True)
        promoted = role.state.changed_at
        mine = {"since": promoted, "swung_at": (roles.last_swing or {}).get("at")}
        if clients_before:
            progress("failback: waiting for the first client back here")
            mine["first_client_at"] = _wait(lambda: host.first_client_since(promoted))
        peer_backup = _wait(lambda: (roles.peer_state or {}).get("role") == "backup", 10)
        out["back"] = _figures(back, None, mine, clients_before)
        out["roles_restored"] = bool(role.current == "primary" and peer_backup)
        out["generation_after"] = role.generation
        out["rto_seconds"] = out["over"]["rto_seconds"]
        return out
    finally:
        probe.stop.set()
        probe.done.wait(5)
        if roles.drill_hold is not None:  # stopped half-way: this appliance hears its peer and serves again
            roles.drill_hold = None
        if host.role.suspended == SUSPENDED:
            host.role.resume()
        if host.role.current == "primary" and host.site is not None:
            try:
                Probe(host.site.engine, drill_id).remove()
            except (TetherError, sa.exc.SQLAlchemyError):
                pass


def _term(peer_state: dict | None, fault: float) -> dict | None:
    """The peer's term as primary, if it began after ``fault``."""
    ps = peer_state or {}
    t = ps.get("term")
    if ps.get("role") == "primary" and t and float(t.get("since") or 0) >= fault - 1:
        return t
    return None


def _figures(fault: float, detected: float | None, term: dict, clients: int) -> dict:
    """The timeline (wall times and seconds after the fault) and RTO of one direction."""
    events = {"fault": fault, "detection": detected, "promotion": term.get("since"),
              "traffic_swing": term.get("swung_at"), "clients_back": term.get("first_client_at")}
    offsets = {k: (round(v - fault, 3) if v else None) for k, v in events.items()}
    end = events["clients_back"] if clients else events["traffic_swing"] or events["promotion"]
    return {"events": events, "offsets": offsets,
            "rto_seconds": round(end - fault, 3) if end else None,
            "rto_to": "first client back" if clients else "service back (no client was connected)"}
