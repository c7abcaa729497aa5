"""Role changes of a pair (FO-05, FO-06, FO-08): who is primary, and how
that changes, safely.

- **Heartbeats.** While paired, each side sends ``POST /peer/v1/heartbeat``
  every half second with its role, generation and fork point, and answers
  the other's with its own. Whichever side learns that the other is primary
  with a newer generation while it is primary itself yields at once (role
  backup, that generation): it stops serving, and its sync worker, finding
  its history differs, writes the changes the new primary never received
  to an orphan file before taking the new primary's copy (orphans.py).
- **Manual failover.** ``become_primary`` on the backup asks the primary to
  step down (``/peer/v1/demote``); with ``data_sync_first`` it then waits
  until it has applied everything the old primary held (no write lost),
  and takes the role with a generation above both. With the peer gone it
  promotes alone only with ``force``. ``become_backup`` on the primary asks
  the peer to take over (``/peer/v1/promote``); ``force`` steps down alone.
- **Automatic failover.** A backup with automatic failover on promotes
  itself when it has heard nothing from the primary for the primary
  timeout T and reaches at least one connectivity test address. A primary
  that hears nothing from its backup for T/2 and reaches no test address
  stops serving (``suspend``: health 503, no clients, no writes) before the
  backup may promote (demote before promote), and serves again once it
  reaches either. Without a witness, a cut of only the link between the
  two (both reach the test addresses) can still give two primaries until
  the link heals; generations then reconcile them (docs/operations.md).
- **Confirmed, or not serving.** Each time the monitor finds that this
  primary may serve, it confirms it for T - 1 s from when that was checked:
  from when its last heartbeat the peer answered was sent (the peer, having
  heard it then, cannot promote before T has passed), or from when it
  reached a test address after T/2 of silence. A primary not confirmed
  since (its process frozen longer than that: the backup may have taken
  over) serves nobody until the monitor has checked again, so its first
  heartbeat decides before any request does. It is not confirmed while the
  peer, just heard, is an older primary still serving (it steps down as
  soon as it hears this one).
- **Held up.** A heartbeat answered (or failing) more than ``STALL``
  seconds after it was sent, a monitor loop that did not come round for
  that long, or a round that took that long from its heartbeat to its
  decision (frozen after the answer came, before it was acted on), means
  this process was frozen or starved: that answer is not
  counted as contact, and silence is counted again from then on
  (``watching_since``), so neither a thawed backup nor a thawed primary
  acts on the silence of its own freeze or on news from before it.
- **Starting again.** A paired primary that starts (after a crash, a kill,
  a reboot) may have been replaced meanwhile: it serves nobody until a
  heartbeat exchange shows the peer is not serving as primary (a newer one
  makes it step down at once), or until it has heard nothing for
  min(T, 3 s) and reaches a connectivity test address.
- **With a witness** (FO-11, witness.py; an etcd cluster of three members)
  the primary serves and takes writes only while it holds the witness's
  key under an unexpired lease (witness_keeper.py renews it every TTL/3 and
  tells the role store until when it is surely held); a backup takes the
  role, automatically or by hand, only once it has taken the key itself,
  which etcd allows only after the old primary's lease expired, by when the
  old primary has stopped serving (its margin). A primary stepping down
  releases the key at once, so a planned swap does not wait for the TTL.
- **Nothing of the old primary after the fork.** The sync worker commits
  each batch or full copy under ``applying``: refused once this appliance
  is no longer a backup, and a promotion waits for a commit in progress.
- **After every promotion** traffic is swung (swing.py): keepalived's
  track file, the DNS record, the NAT hook; an automatic failover is
  audited and opens a support incident (DESK-09).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Iterator

from tether.core.crashpoints import checkpoint
from tether.core.errors import Conflict, TetherError
from tether.site import permissions as P

from . import sink, swing
from .errors import PeerError, WitnessError, WitnessHeld
from .witness_keeper import WitnessKeeper

if TYPE_CHECKING:
    from .service import Caller, FailoverService

log = logging.getLogger("tether.failover")

HEARTBEAT_SECONDS = 0.5
HEARTBEAT_TIMEOUT = 1.0
CATCH_UP_TIMEOUT = 60.0
STARTING_QUIET = 3.0  # a restarted paired primary that hears nothing serves again after this (or T) at the soonest
STALL = 2.5  # s: a heartbeat answered later than this after it was sent, or a monitor loop held up this long: frozen


class RoleManager:
    def __init__(self, service: "FailoverService"):
        self.s = service
        self.host = service.host
        self.last_contact: float | None = None  # monotonic: last time anything came from the peer
        self.peer_state: dict | None = None
        self.last_swing: dict | None = None
        self.auto_note: str | None = None
        self.promoting = False  # become_primary in progress (the peer, a backup meanwhile, must not take over)
        self.detected: tuple[float, float] | None = None  # (wall time, silence) when the backup first saw T pass
        self.last_takeover: dict | None = None  # the break-down of this appliance's last automatic takeover
        self.both_backups_since: float | None = None  # monotonic: both heard to be backups since
        self.starting: float | None = None  # monotonic: a paired primary started (again) and serves nobody yet
        self.watching_since = time.monotonic()  # the monitor started or was last held up: silence counts from then
        self.answered_at: float | None = None  # monotonic: when the last heartbeat the peer answered was sent
        self._lock = threading.Lock()
        self.witness = WitnessKeeper(service, self._lock)
        # an unplanned-failover drill (dr/failover_drill.py): "silent" (this primary sends nothing to its peer and
        # its peer routes refuse: to the peer it is gone), then "listening" (heartbeats again, so it learns of the
        # new primary and yields, but it does not resume serving by itself); None otherwise
        self.drill_hold: str | None = None

    # --- contact and state --------------------------------------------------------------------------
    def heard(self) -> None:
        self.last_contact = time.monotonic()

    def contact_age(self) -> float | None:
        marks = [m for m in (self.last_contact,) if m is not None]
        heard = self.s.worker.status.last_heard
        if heard is not None:
            marks.append(time.monotonic() - (time.time() - heard))
        return time.monotonic() - max(marks) if marks else None

    def mine(self) -> dict:
        st = self.host.role.state
        head = 0
        site = self.host.site
        if site is not None:
            head = sink.position(site.engine)[0]
        out = {"role": st.role, "generation": st.generation, "fork_seq": st.fork_seq, "head": head,
               "serving": self.host.role.serves_clients(), "promoting": self.promoting}
        if st.role == "primary":  # what a drill on the peer reads of this term (dr/failover_drill.py)
            took = self.last_takeover or {}
            out["term"] = {"since": st.changed_at, "swung_at": (self.last_swing or {}).get("at"),
                           "detected_at": took.get("detected_at") if took.get("generation") == st.generation else None,
                           "first_client_at": self.host.first_client_since(st.changed_at),
                           "clients": self.host.client_total()}
        return out

    def compare(self, theirs: dict) -> None:
        """React to the peer's state: a newer primary wins; a newer generation is adopted."""
        self.peer_state = theirs
        role = self.host.role
        if int(theirs.get("generation", 0)) <= role.generation or theirs.get("role") != "primary":
            return
        with self._lock:  # the heartbeat's answer and the peer's heartbeat may both bring the news
            gen, their_gen = role.generation, int(theirs.get("generation", 0))
            if their_gen <= gen:
                return
            pair = self.s.pairs.load()
            where = pair.peer_address if pair else None
            if role.current == "primary":
                log.warning("the peer is primary with generation %s (this appliance: %s); stepping down",
                            their_gen, gen)
                self.host.audit.record("failover", "failover.yield", where, None,
                                       {"from_generation": gen, "to_generation": their_gen,
                                        "fork_seq": theirs.get("fork_seq"),
                                        "reason": f"the peer {where} is primary with a newer generation"})
                checkpoint("yield: audited")
            role.set("backup", generation=their_gen, primary=where,
                     reason=f"the peer {where} is primary with generation {their_gen}")
            self.s.worker.pending_fork = theirs.get("fork_seq")
            checkpoint("yield: backup of the newer primary")

    # --- the heartbeat job (continuous, while primary or backup) ------------------------------------------
    def monitor(self, stop: threading.Event) -> None:
        self.watching_since = time.monotonic()
        self.answered_at = None
        while not stop.is_set():
            client = self.s.client_to_peer(timeout=HEARTBEAT_TIMEOUT)
            if client is None:
                stop.wait(1.0)
                continue
            with client:
                last = time.monotonic()
                while not stop.is_set():
                    if self.drill_hold == "silent":
                        stop.wait(HEARTBEAT_SECONDS)
                        last = time.monotonic()
                        continue
                    started = time.monotonic()
                    if started - last > STALL:
                        self.held_up(f"the failover monitor did not run for {started - last:.1f} s")
                    answer = None
                    try:
                        answer = client.post_json("/peer/v1/heartbeat", self.mine(), verify_response=True).json()
                    except (PeerError, TetherError) as exc:
                        log.debug("heartbeat to the peer failed: %s", exc.message)
                    except Exception as exc:  # noqa: BLE001 - the monitor never dies of one bad answer
                        log.warning("heartbeat to the peer failed: %s: %s", type(exc).__name__, exc)
                    took = time.monotonic() - started
                    if answer is not None:
                        checkpoint("failover.monitor: answered")  # tests freeze here (TETHER_STOP_AT)
                    if took > STALL:  # answered or failed, it was sent before a freeze: it says nothing of now
                        self.held_up(f"a heartbeat took {took:.1f} s to be answered or to fail")
                    elif answer is not None:
                        self.heard()
                        self.answered_at = started
                    if answer is not None:
                        try:
                            self.compare(answer)  # even a stale answer may show a newer primary: stepping down is safe
                        except Exception as exc:  # noqa: BLE001 - the monitor never dies of one bad answer
                            log.warning("the peer's heartbeat answer: %s: %s", type(exc).__name__, exc)
                    self.evaluate(None if took > STALL else started)  # held up already: not twice
                    last = time.monotonic()
                    stop.wait(max(0.0, HEARTBEAT_SECONDS - (last - started)))
                    if self.s.pairs.load() is None:
                        break

    def held_up(self, why: str) -> None:
        """This process was frozen or starved: count silence from now, and act on nothing heard before."""
        log.warning("%s; counting the peer's silence from now", why)
        self.watching_since = time.monotonic()

    def on_heartbeat(self, sender: str, body: dict) -> dict:
        self.s.paired_with(sender)
        self.heard()
        self.compare(body)
        return self.mine()

    def held_since(self, started: float | None) -> bool:
        """Whether this monitor round, begun at ``started``, was held up (frozen or starved) since: what it
        heard or measured before then says nothing of now, so it must not act on it (``held_up``)."""
        if started is None or time.monotonic() - started <= STALL:
            return False
        self.held_up(f"the failover monitor was held up for {time.monotonic() - started:.1f} s in one round")
        return True

    def evaluate(self, started: float | None = None) -> None:
        """Automatic failover on a backup; stepping aside on an isolated primary. ``started``: when this round
        of the monitor began; a round held up since then (the process frozen between the heartbeat and this
        decision) acts on nothing it saw before, and neither takes the role nor confirms it."""
        site = self.host.site
        if site is None or self.s.pairs.load() is None or self.drill_hold is not None:
            return
        if self.held_since(started):
            return
        fs = self.s.settings()
        role = self.host.role
        age = self.contact_age()
        # nothing heard since this appliance started watching its peer (or was last held up): silent that long
        age = min(time.monotonic() - self.watching_since, float("inf") if age is None else age)
        timeout = float(fs.primary_timeout_seconds)
        if role.current == "backup":
            if not (fs.automatic_failover and fs.backup_operations_enabled):
                return
            if age < timeout:
                self.detected = None
                self._when_both_backups(age, timeout)
                return
            if not fs.connectivity_test_ips:
                self.auto_note = "automatic failover needs at least one connectivity test address"
                return
            if not swing.reachable_any(fs.connectivity_test_ips, fs.connectivity_test_method,
                                       fs.connectivity_test_port):
                self.auto_note = "the primary is unreachable, and so is every connectivity test address: waiting"
                return
            if self.detected is None:
                self.detected = (time.time(), age)
            self.take_primary(f"the primary was unreachable for {age:.1f} s (timeout {timeout:.0f} s) and a "
                              f"connectivity test address answered", automatic=True)
        elif role.current == "primary":
            theirs = self.peer_state or {}
            if (age < timeout / 2 and theirs.get("role") == "primary" and theirs.get("serving")
                    and int(theirs.get("generation", 0)) < role.generation):
                return  # an older primary still serves (it steps down on hearing this one): not beside it
            if self.starting is not None:  # started again (FailoverService): it may have been replaced meanwhile
                if self.last_contact is not None:
                    self.starting = None  # the peer was heard, and is not a serving primary: the rules below
                elif time.monotonic() - self.starting < min(timeout, STARTING_QUIET):
                    return  # not before a few heartbeats could have reached the peer
                else:
                    self.starting = None
            now = time.monotonic()
            if not fs.connectivity_test_ips:  # no automatic failover: nothing else can take the role by itself
                self.confirm(now, timeout)
                return
            answered = self.answered_at
            if age < timeout / 2 and answered is not None and answered >= self.watching_since \
                    and now < answered + self.confirmed_for(timeout):
                self.confirm(answered, timeout)  # the peer heard this primary then: it cannot promote before T
                return
            if age < timeout / 2 and now - self.watching_since < timeout:
                return  # heard, but not by an answered heartbeat, and just after the monitor started or was held up: wait
            if self.held_since(started):  # frozen since the round began: ``age`` may rest on news from before
                return
            checked = time.monotonic()
            if swing.reachable_any(fs.connectivity_test_ips, fs.connectivity_test_method, fs.connectivity_test_port,
                                   timeout=min(1.0, timeout / 4)):
                self.confirm(checked, timeout)
            elif age >= timeout / 2:
                role.suspend(f"it reaches neither its peer (for {age:.1f} s) nor any connectivity test address")

    @staticmethod
    def confirmed_for(timeout: float) -> float:
        return max(1.0, timeout - HEARTBEAT_TIMEOUT)

    def confirm(self, checked: float, timeout: float) -> None:
        """Serve, until a little less than the primary timeout after ``checked`` (when what allows it was
        checked), unless confirmed again: a primary frozen longer (the backup may have taken over meanwhile)
        serves nobody until it has checked again."""
        self.host.role.fresh_until = checked + self.confirmed_for(timeout)
        self.host.role.resume()

    def _when_both_backups(self, age: float, timeout: float) -> None:
        """Two backups that hear each other and neither promoting: a planned swap cut short between the old
        primary's step-down and the new one's promotion (a crash, a kill), or both stepped down by hand. After T of
        that, the one holding the longer log (on a tie, the lower appliance id) takes the role, and the other
        follows it as usual: no write is lost, and only one of them can decide so (both compare the same two
        positions, which do not move while neither is primary)."""
        theirs = self.peer_state or {}
        pair = self.s.pairs.load()
        if (pair is None or age >= timeout / 2 or theirs.get("role") != "backup" or theirs.get("promoting")
                or self.promoting):
            self.both_backups_since = None
            return
        now = time.monotonic()
        if self.both_backups_since is None:
            self.both_backups_since = now
        if now - self.both_backups_since < timeout:
            return
        head = sink.position(self.s.site().engine)[0]
        their_head = int(theirs.get("head", 0))
        if (head, pair.peer_id) <= (their_head, self.s.me):  # theirs is longer, or equal and their id is lower
            self.auto_note = "both appliances are backups: the peer holds the longer log (or wins the tie) and " \
                             "takes the role"
            return
        self.both_backups_since = None
        self.take_primary(f"both appliances were backups for {timeout:.0f} s (an interrupted planned failover?); "
                          f"this one holds the longer log ({head} entries, the peer {their_head})", automatic=True)

    # --- taking and giving up the role ---------------------------------------------------------------------
    @contextlib.contextmanager
    def applying(self) -> Iterator[None]:
        """Held by the sync worker from just before it commits what the primary sent until just after
        (SyncWorker.guard): refuses once this appliance is no longer a backup, and a promotion waits for the
        commit, so what the old primary sent (a batch, a full copy still arriving while it was frozen) never
        lands after the fork point, nor replaces the new primary's data and the writes it acknowledged."""
        with self._lock:
            if self.host.role.current != "backup":
                raise Conflict(f"this appliance is {self.host.role.current} now: what the old primary sent was not "
                               f"applied")
            yield

    def take_primary(self, reason: str, *, automatic: bool, actor: str = "failover",
                     source_ip: str | None = None) -> dict:
        with self._lock:
            role = self.host.role
            if role.current == "primary":
                return self.s.status_doc()
            site = self.s.site()
            fork = sink.position(site.engine)[0]
            theirs = int((self.peer_state or {}).get("generation", 0))
            old = role.state
            generation = max(old.generation, theirs) + 1
            witness, token = self.witness.client(), None
            if witness is not None:
                try:
                    token = witness.acquire(generation)
                except WitnessError as exc:
                    if automatic:
                        self.auto_note = f"the primary is silent, but {exc.message}: waiting for the witness's key"
                        return self.s.status_doc()
                    if isinstance(exc, WitnessHeld):
                        raise Conflict(f"this appliance cannot become primary: {exc.message}",
                                       hint="make the holder the backup first (become-backup on it), or wait until "
                                            "its lease expires if it is gone (at most the lease TTL)") from None
                    raise Conflict(f"this appliance cannot become primary without the witness: {exc.message}",
                                   hint="repair the etcd cluster, or turn the witness off in the failover settings "
                                        "(witness.enabled: false; two primaries are then possible)") from None
                role.require_witness(True)
            leased = time.time()
            new = role.set("primary", generation=generation, fork_seq=fork, reason=reason, fencing_token=token)
            if witness is not None:
                role.hold_lease(witness.valid_until, token=token)
            self.confirm(time.monotonic(), float(self.s.settings().primary_timeout_seconds))  # a new term
            self.starting = None
            self.auto_note = None
        checkpoint("take primary: role taken")
        self.host.audit.record(actor, "failover.automatic" if automatic else "failover.become_primary", None,
                               source_ip, {"from_generation": old.generation, "generation": new.generation,
                                           "fork_seq": fork, "reason": reason})
        checkpoint("take primary: audited")
        took = time.time()
        self.swing(old.primary)
        if automatic:
            self.last_takeover = takeover_breakdown(self.detected, leased if witness is not None else None, took,
                                                    time.time(), generation=new.generation)
            self.detected = None
            self.host.report_incident("Automatic failover: this appliance became primary",
                                      f"{reason}. Generation {old.generation} -> {new.generation}; last entry "
                                      f"held {fork}.", key=f"failover.automatic:{self.s.me}:{new.generation}")
            checkpoint("take primary: incident reported")
        return self.s.status_doc()

    def swing(self, old_primary: str | None) -> None:
        """Carry the new role out: track file, DNS record, NAT hook (each best effort, each reported)."""
        fs = self.s.settings()
        pair = self.s.pairs.load()
        me = pair.self_url.removeprefix("https://").rsplit(":", 1)[0] if pair else None
        old_ip = old_primary.rsplit(":", 1)[0] if old_primary else None
        done: dict = {}
        self.s.write_track()
        if fs.dns_swing.enabled:
            try:
                done["dns"] = swing.dns_update(fs.dns_swing, fs.dns_tsig_secret, old_ip, fs.dns_swing.address or me)
            except TetherError as exc:
                done["dns_error"] = exc.message
        if fs.nat_hook:
            try:
                swing.run_hook(fs.nat_hook, old_ip, me or "", fs.nat_hook_timeout_seconds)
                done["nat_hook"] = "ok"
            except TetherError as exc:
                done["nat_hook_error"] = exc.message
        for k, v in done.items():
            (log.error if k.endswith("_error") else log.info)("traffic swing: %s: %s", k, v)
        self.last_swing = {"at": time.time(), **done}
        checkpoint("swing: done")
        self.host.audit.record("failover", "failover.swing", me, None, done)
        checkpoint("swing: audited")

    def step_down(self, generation: int, reason: str) -> dict:
        role = self.host.role
        if generation <= role.generation:
            raise Conflict(f"generation {generation} is not newer than this appliance's {role.generation}")
        pair = self.s.pairs.load()
        role.set("backup", generation=generation, primary=pair.peer_address if pair else None, reason=reason)
        self.s.write_track()
        time.sleep(0.2)  # writes that passed the fence just before finish committing
        self.witness.release()  # the new primary need not wait for the lease to expire
        checkpoint("step down: writes settled")
        return {"head": sink.position(self.s.site().engine)[0], "generation": generation}

    # --- manual failover (FO-06, IC-04) ----------------------------------------------------------------------
    def become_primary(self, caller: "Caller", source_ip: str | None, *, data_sync_first: bool,
                       force: bool) -> dict:
        caller.require(P.COMMAND)
        self.promoting = True  # told to the peer in every heartbeat: it will be a backup meanwhile, and waits
        try:
            return self._become_primary(caller, source_ip, data_sync_first=data_sync_first, force=force)
        finally:
            self.promoting = False

    def _become_primary(self, caller: "Caller", source_ip: str | None, *, data_sync_first: bool,
                        force: bool) -> dict:
        role = self.host.role
        if role.current == "primary":
            raise Conflict("this appliance is already primary")
        if self.s.pairs.load() is None:
            raise Conflict("this appliance is not in a failover pair")
        target = max(role.generation, int((self.peer_state or {}).get("generation", 0))) + 1
        checkpoint("become primary: asking the primary to step down")
        try:
            with self.s.client_to_peer(timeout=10) as client:
                answer = client.post_json("/peer/v1/demote", {"generation": target,
                                                              "data_sync_first": data_sync_first},
                                          verify_response=True).json()
            checkpoint("become primary: the primary stepped down")
        except PeerError as exc:
            if not force:
                raise Conflict(f"the primary could not be asked to step down: {exc.message}",
                               hint="if it is really gone, repeat with force (--force): this appliance then "
                                    "promotes alone") from None
            return self.take_primary(f"made primary by {caller.name} with force; the peer was unreachable",
                                     automatic=False, actor=caller.name, source_ip=source_ip)
        if data_sync_first:
            self.s.worker.sync_now.clear()
            deadline = time.monotonic() + CATCH_UP_TIMEOUT
            while sink.position(self.s.site().engine)[0] < int(answer["head"]):
                if time.monotonic() > deadline:
                    raise Conflict(f"the backup did not catch up with the old primary (entry {answer['head']}) "
                                   f"within {CATCH_UP_TIMEOUT:.0f} s; neither appliance is primary now",
                                   hint="repeat become-primary (with --force to promote without the last changes); "
                                        "with automatic failover on, the appliance holding the longer log takes "
                                        "the role back by itself after the primary timeout")
                time.sleep(0.05)
            checkpoint("become primary: caught up")
        self.peer_state = {**(self.peer_state or {}), "generation": answer["generation"], "role": "backup"}
        return self.take_primary(f"planned failover by {caller.name}" + (" after a full data sync" if data_sync_first
                                                                          else ""),
                                 automatic=False, actor=caller.name, source_ip=source_ip)

    def become_backup(self, caller: "Caller", source_ip: str | None, *, data_sync_first: bool,
                      force: bool) -> dict:
        caller.require(P.COMMAND)
        role = self.host.role
        if role.current != "primary":
            raise Conflict(f"this appliance is not primary (it is {role.current})")
        checkpoint("become backup: asking the peer to take over")
        try:
            with self.s.client_to_peer(timeout=CATCH_UP_TIMEOUT + 10) as client:
                client.post_json("/peer/v1/promote", {"data_sync_first": data_sync_first}, verify_response=True)
            checkpoint("become backup: the peer took over")
        except PeerError as exc:
            if not force:
                raise Conflict(f"the backup could not be asked to take over: {exc.message}",
                               hint="repeat with force (--force) to step down anyway (then no appliance is "
                                    "primary until one is made so)") from None
            self.step_down(role.generation + 1, f"stepped down by {caller.name} with force; the peer was unreachable")
        self.host.audit.record(caller.name, "failover.become_backup", None, source_ip,
                               {"data_sync_first": data_sync_first, "force": force})
        checkpoint("become backup: audited")
        return self.s.status_doc()


def takeover_breakdown(detected: tuple[float, float] | None, leased: float | None, took: float, swung: float,
                       *, generation: int) -> dict:
    """An automatic takeover's steps in wall-clock time (``tether failover status``, bench/failover_time.py):
    the primary silent since, T seen passed (detected), the witness's key taken (lease; None without a
    witness), the role taken and audited (promoted), the traffic swing carried out (swung)."""
    at, silence = detected if detected is not None else (took, None)
    return {"generation": generation, "silent_since": at - silence if silence is not None else None,
            "detected_at": at, "lease_at": leased, "promoted_at": took, "swung_at": swung}
