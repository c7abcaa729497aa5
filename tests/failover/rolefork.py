"""ROB-01 for role changes, forked: the role-change code of the appliance that
performs it runs in a forked child over a real data directory opened offline
(runtime/provision.open_offline: the same Appliance, FailoverService and
RoleManager ``tether serve`` builds, without its listeners and job runner),
armed with ``crashpoints.arm(k)`` from the moment the change is asked for, and
killed by SIGKILL at its k-th point; then the directory is opened offline again
and checked. Shared by bench/failover_role_crash.py (every point, >= 200) and
tests/failover/test_role_crash.py (a seeded sample). The slower variant with a
real ``tether serve`` killed and restarted, the pair settled, is rolecrash.py.

What runs where (``SCENARIOS``):

- Offline, the peer not running (its address refuses): ``takeover`` (the
  backup's automatic takeover: ``take_primary(automatic=True)``, what the
  monitor calls after T), ``force-primary`` (become-primary --force with the
  peer gone), ``force-backup`` (become-backup --force with the peer gone),
  ``demote`` (the old primary's side of a planned swap: the handler of
  ``/peer/v1/demote`` called directly, not through HTTP and peer auth) and
  ``yield`` (a primary hearing a heartbeat answer from a newer primary: the
  monitor's ``compare``), ``yield-backup`` (the same on a backup: it follows
  the newer generation), ``adopt`` (a backup adopting a newer generation seen
  on the primary's stream: ``FailoverService._adopt``, called directly) and
  ``break`` (break failover --force on the primary: the pair file removed,
  role none).
- Against a real peer (a ``tether serve`` of the other base, kept running across
  the kill runs): ``swap`` and ``swap-sync`` (become-primary on the backup,
  asking the real primary to step down over the peer link; with
  data_sync_first the child's sync thread catches up from it) and ``return``
  (the old primary, holding writes the new primary never received, hears the
  new primary's heartbeat, yields, and its sync thread keeps its orphans and
  takes the full copy). Before the change the child does one heartbeat
  exchange (unarmed), as the monitor would have. After each swap run, the
  real primary is made primary again by its own API (become-primary --force;
  its generation goes on rising: every run's expected generations are
  relative to what the child held when the change was asked).

The child counts only the change's points (from the call on; ``sync:``
points of its sync thread are not counted: test_sync_crash.py kills those).

The verdict after each kill (``check``): the child died of SIGKILL at point k;
role.json is valid per docs/formats/role.md, primary or backup, and is the
old or the new role of the change (generation before, or before + 1); the
offline open reads that same role and generation and the site's database
(every acknowledged write of the base is in it, or, for ``return``, in an
orphan file); every orphan file parses (docs/formats/orphans.md) and goes from
the generation it held as primary to the new one; the track file is whole
(0 or 1). And the pair, with the peer as it stands (its files, or a real
peer's /api/failover/status): never two primaries at one generation, and when
the killed side holds the new generation as primary, the peer is no longer
primary at a lower one unless it is the peer that is gone (``takeover``,
``force-primary``: the old primary yields when it next hears the new one;
rolecrash.py checks that with real processes). Both backup after a planned
swap killed between the step-down and the take-over is the known gap
(``no_primary``); it counts as a failure only with ``expect_recovery``, and
otherwise the runbook (become-primary --force, in a forked child) is applied
and the pair checked after it.

What it does not exercise: the restart by ``tether serve`` and the settle of
a running pair (rolecrash.py), HTTP and peer auth for ``demote``/``yield``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tether.core import crashpoints
from tether.core.paths import DataDir
from tether.failover import sink
from tether.failover.roles import HEARTBEAT_TIMEOUT
from tether.runtime.provision import open_offline

from tests import forked

from .pairproc import Member, wait_until
from .partitions import group_names
from .rolecrash import Lab, orphan_files, role_file

CHILD_TIMEOUT = 90.0  # a child that neither finishes nor dies by then is killed (and the run fails)
SKIP = ("sync:",)


class Admin:
    """The caller of an admin's command (the API checks the permission; here: granted)."""

    name = "admin"

    def require(self, permission: str) -> None:
        return None


@dataclass(frozen=True)
class Scenario:
    name: str
    base: str  # manual | auto | return (rolecrash.Lab's bases)
    member: str  # "a" or "b": whose directory the child opens
    peer: bool  # a real peer process (the other member of the base) runs
    before: str  # the role the child holds when the change is asked
    what: str
    after: str = ""  # the role the change gives (default: the other of primary and backup)

    @property
    def new_role(self) -> str:
        return self.after or ("primary" if self.before == "backup" else "backup")


SCENARIOS = {s.name: s for s in (
    Scenario("takeover", "auto", "b", False, "backup", "automatic takeover by the backup (the primary gone)"),
    Scenario("force-primary", "manual", "b", False, "backup", "become-primary --force, the peer gone"),
    Scenario("force-backup", "manual", "a", False, "primary", "become-backup --force, the peer gone"),
    Scenario("demote", "manual", "a", False, "primary", "the primary asked to step down (planned swap)"),
    Scenario("yield", "manual", "a", False, "primary", "a primary hears of a newer primary and yields"),
    Scenario("yield-backup", "manual", "b", False, "backup", "a backup hears of a newer primary and follows it",
             "backup"),
    Scenario("adopt", "manual", "b", False, "backup", "a backup adopts a newer generation seen on the stream",
             "backup"),
    Scenario("break", "manual", "a", False, "primary", "break failover --force on the primary, the peer gone",
             "none"),
    Scenario("swap", "manual", "b", True, "backup", "become-primary on the backup, the real primary reachable"),
    Scenario("swap-sync", "manual", "b", True, "backup", "become-primary --data-sync-first, real primary"),
    Scenario("return", "return", "a", True, "primary",
             "the old primary hears the new one, yields, keeps its orphans, takes the full copy"),
)}


@dataclass
class Outcome:
    scenario: str
    k: int | None
    label: str | None = None
    killed: bool = False
    no_primary: bool = False
    state: str = ""  # "backup g1 -> primary g2 (peer backup g2)"
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- the child ------------------------------------------------------------------------------------------------
def _heartbeat(fo) -> dict:
    """One heartbeat exchange with the peer, as the monitor's loop does it."""
    with fo.client_to_peer(timeout=HEARTBEAT_TIMEOUT * 5) as client:
        answer = client.post_json("/peer/v1/heartbeat", fo.roles.mine(), verify_response=True).json()
    fo.roles.heard()
    fo.roles.compare(answer)
    return answer


def _follow(fo, stop: threading.Event) -> threading.Thread:
    """The sync job (the job runner runs it while backup; it stops when the role leaves backup)."""
    def run() -> None:
        while not stop.is_set():
            fo.worker.follow(stop)

    fo.host.role.subscribe(lambda old, new: stop.set() if new.role != "backup" else None)
    t = threading.Thread(target=run, daemon=True, name="failover-sync")
    t.start()
    return t


def _change(scen: Scenario, app, pre: Path, k: int | None, note: Callable | None = None) -> None:
    fo, roles = app.failover, app.failover.roles
    admin = Admin()
    stop = threading.Event()
    if scen.name in ("swap", "swap-sync"):
        _heartbeat(fo)  # what the backup's monitor had heard: the primary's generation
        if scen.name == "swap-sync":
            _follow(fo, stop)
    pre.write_text(json.dumps({"role": app.role.current, "generation": app.role.generation}))
    crashpoints.observe(note)  # the trace: from here on, numbered as the kill runs count
    crashpoints.arm(k, skip=SKIP)
    if scen.name == "takeover":
        roles.take_primary("the primary was unreachable (crash test)", automatic=True)
    elif scen.name == "force-primary":
        roles.become_primary(admin, None, data_sync_first=False, force=True)
    elif scen.name == "force-backup":
        roles.become_backup(admin, None, data_sync_first=False, force=True)
    elif scen.name == "demote":
        fo.peer_demote(fo.pairs.load().peer_id, {"generation": app.role.generation + 1, "data_sync_first": False},
                       None)
    elif scen.name == "adopt":
        fo._adopt(app.role.generation + 1)
    elif scen.name == "break":
        fo.break_pair(admin, None, force=True)
    elif scen.name in ("yield", "yield-backup"):
        head = sink.position(app.site.engine)[0]
        roles.compare({"role": "primary", "generation": app.role.generation + 1, "fork_seq": head, "head": head,
                       "serving": True})
    elif scen.name in ("swap", "swap-sync"):
        roles.become_primary(admin, None, data_sync_first=scen.name == "swap-sync", force=False)
    elif scen.name == "return":
        answer = _heartbeat(fo)  # the change: the newer primary heard
        _follow(fo, stop)
        deadline = time.monotonic() + 60
        while not (app.role.current == "backup" and fo.worker.pending_fork is None
                   and sink.position(app.site.engine)[0] >= int(answer["head"])):
            if time.monotonic() > deadline:
                raise TimeoutError("the old primary did not take the new primary's copy within 60 s")
            time.sleep(0.05)
    stop.set()


def _child(scen: Scenario, data: Path, pre: Path, log: Path, trace: Path | None, k: int | None) -> None:
    os.environ["TETHER_CRASH_LOG"] = str(log)
    note = None
    if trace is not None:
        f = open(trace, "a", buffering=1)  # noqa: SIM115 - for the life of the child

        def note(n: int, label: str) -> None:
            f.write(f"{n}\t{label}\n")
    crashpoints.arm(None)
    with open_offline(DataDir.at(data)) as app:
        _change(scen, app, pre, k, note)


def _read_child(data: Path, out: Path) -> None:
    """The offline open after the kill: what the appliance reads back."""
    with open_offline(DataDir.at(data)) as app:
        with app.site.engine.connect() as c:
            names = [r[0] for r in c.exec_driver_sql("SELECT name FROM jump_client_groups")]
        out.write_text(json.dumps({"role": app.role.current, "generation": app.role.generation, "groups": names}))


def fork(fn: Callable, *args, timeout: float = CHILD_TIMEOUT) -> int:
    """``fn(*args)`` in a forked child (tests/forked.py); its wait status."""
    return forked.fork(fn, *args, timeout=timeout)


def _killed(st: int) -> bool:
    return forked.killed(st)


# --- the lab --------------------------------------------------------------------------------------------------
class ForkLab:
    """rolecrash.Lab's bases; ``run(scenario, k)`` plays one forked run (k None: the trace run)."""

    def __init__(self, work: Path, addresses: tuple[str, str] = ("127.0.6.3", "127.0.6.2"),
                 probe_ip: str = "127.0.6.4", *, expect_recovery: bool = False):
        self.lab = Lab(work, addresses, probe_ip)
        self.work = work
        self.expect_recovery = expect_recovery
        self.runs = 0
        self.peer_for: str | None = None  # the base whose real peer runs now

    def build(self, bases: tuple[str, ...] = ("manual", "auto", "return")) -> None:
        self.lab.build(bases)

    def close(self) -> None:
        self.lab.close()

    def _peer(self, scen: Scenario) -> Member:
        return self.lab.members["a" if scen.member == "b" else "b"]

    def _ensure_peer(self, scen: Scenario) -> Member | None:
        """The real peer of ``scen`` running (from its base, started once), or every member stopped."""
        want = scen.base if scen.peer else None
        if self.peer_for != want:
            self.lab._stop_all()
            self.peer_for = None
            if want is not None:
                peer = self._peer(scen)
                key = "a" if peer is self.lab.a else "b"
                shutil.rmtree(peer.data)
                shutil.copytree(self.lab.bases / want / key, peer.data, symlinks=True)
                peer.start()
                wait_until(lambda: peer.health()[0] == 200, 60, what=f"{peer.name} (the real peer) serving")
                self.peer_for = want
        return self._peer(scen) if scen.peer else None

    def _reprimary(self, peer: Member) -> None:
        """The real primary of a swap made primary again (its own API), for the next run."""
        if peer.status(timeout=10)["role"] != "primary":
            r = peer.api("POST", "/api/failover/become-primary", timeout=30, json={"force": True})
            if r.status_code != 200:
                raise RuntimeError(f"become-primary --force on the peer: {r.status_code} {r.text[:300]}")
        wait_until(lambda: peer.health()[0] == 200, 30, what=f"{peer.name} serving again")

    def trace(self, scen: Scenario) -> tuple[list[str], Outcome]:
        path = self.work / f"fork-trace-{scen.name}.tsv"
        path.unlink(missing_ok=True)
        out = self.run(scen, None, trace=path)
        labels = [x.split("\t", 1)[1] for x in path.read_text().splitlines()] if path.exists() else []
        return labels, out

    def run(self, scen: Scenario, k: int | None, *, trace: Path | None = None) -> Outcome:
        t0 = time.monotonic()
        self.runs += 1
        out = Outcome(scen.name, k)
        run_dir = self.work / "fork-run"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        data, pre, log, after = run_dir / "data", run_dir / "pre.json", run_dir / "crash.log", run_dir / "after.json"
        try:
            peer = self._ensure_peer(scen)
            shutil.copytree(self.lab.bases / scen.base / scen.member, data, symlinks=True)
            st = fork(_child, scen, data, pre, log, trace, k)
            out.killed = _killed(st)
            if log.exists():
                out.label = log.read_text().strip().split(" ", 1)[-1]
            if k is None and st != 0:
                out.problems.append(f"the traced run failed (status {st})")
            elif k is not None and not out.killed:
                out.problems.append(f"not killed at point {k} (status {st})")
            out.problems += self.check(scen, data, pre, after, peer, out)
            if peer is not None and scen.name in ("swap", "swap-sync"):
                self._reprimary(peer)
        except Exception as exc:  # noqa: BLE001 - a run that cannot be played is a problem of its own
            out.problems.append(f"{type(exc).__name__}: {exc}")
            self.lab._stop_all()  # the next run starts its peer afresh
            self.peer_for = None
        finally:
            out.seconds = time.monotonic() - t0
        return out

    # --- the verdict ------------------------------------------------------------------------------------------
    def check(self, scen: Scenario, data: Path, pre: Path, after: Path, peer: Member | None,
              out: Outcome) -> list[str]:
        bad: list[str] = []
        if not pre.exists():
            return ["the child died before the change was asked"]
        before = json.loads(pre.read_text())
        g0 = before["generation"]
        new_role = scen.new_role
        doc = role_file(data, ("primary", "backup", "none") if new_role == "none" else ("primary", "backup"))
        if doc.get("problem"):
            bad.append(f"role.json: {doc['problem']}")
        role, gen = doc.get("role"), doc.get("generation")
        if (role, gen) != (scen.before, g0) and not (role == new_role and isinstance(gen, int) and gen > g0):
            bad.append(f"role.json is {role} g{gen}: neither the old ({scen.before} g{g0}) nor the new "
                       f"({new_role}, above g{g0}) role")
        st = fork(_read_child, data, after, timeout=60)
        if st != 0:
            return [*bad, f"the offline open after the kill failed (status {st})"]
        read = json.loads(after.read_text())
        if (read["role"], read["generation"]) != (role, gen):
            bad.append(f"the appliance reads {read['role']} g{read['generation']}, role.json says {role} g{gen}")
        track = _read(data / "failover" / "track")
        if track not in (None, "0", "1"):
            bad.append(f"track file torn: {track!r}")
        docs, problems = orphan_files(data)
        bad += problems
        for d in docs:
            if d["to_generation"] != gen or d["from_generation"] != g0:
                bad.append(f"an orphan file from g{d['from_generation']} to g{d['to_generation']} (the change: "
                           f"g{g0} to g{gen})")
        kept = {(e.get("row") or {}).get("name") for d in docs for e in d["entries"]
                if e.get("tbl") == "jump_client_groups" and e.get("op") == "upsert"}
        acked = self.lab.acked_in_base.get(scen.base, [])
        on_peer = group_names(peer, "") if peer is not None and peer.status(timeout=10)["role"] == "primary" else set()
        lost = [n for n in acked if n not in read["groups"] and n not in kept and n not in on_peer]
        if lost:
            bad.append(f"acknowledged writes neither in its site nor in an orphan file: {lost}")
        # the pair as it stands
        if peer is not None:
            s = peer.status(timeout=10)
            p_role, p_gen = s["role"], s["generation"]
        else:
            key = "a" if scen.member == "b" else "b"
            p = role_file(self.lab.bases / scen.base / key)  # the peer's files (its base): not running
            p_role, p_gen = p.get("role"), p.get("generation")
        out.state = f"{scen.before} g{g0} -> {role} g{gen} (peer {p_role} g{p_gen})"
        if role == "primary" and p_role == "primary" and gen == p_gen:
            bad.append(f"two primaries at generation {gen}")
        if role == "primary" and p_role == "primary" and scen.peer and (scen.before == "backup" or gen >= p_gen):
            # a planned swap promotes only once the primary stepped down; an old primary that comes back
            # may be primary on disk still, but only at an older generation (it yields when it hears the peer)
            bad.append(f"two primaries: the killed side g{gen}, the real peer g{p_gen}")
        if role == "backup" and p_role == "backup" and scen.peer:
            out.no_primary = True
            if self.expect_recovery:
                bad.append(f"no primary: both backup (g{gen}, g{p_gen}) after a kill at {out.label!r}")
            else:
                bad += self._runbook(data, peer)
        return bad

    def _runbook(self, data: Path, peer: Member) -> list[str]:
        """docs/operations.md: become-primary --force on the appliance meant to be primary (the killed one)."""
        def force() -> None:
            with open_offline(DataDir.at(data)) as app:
                _heartbeat(app.failover)  # what its monitor hears first: the peer's generation
                app.failover.roles.become_primary(Admin(), None, data_sync_first=False, force=True)

        st = fork(force, timeout=60)
        doc = role_file(data)
        s = peer.status(timeout=10)
        if st != 0 or doc.get("role") != "primary" or doc.get("generation", 0) <= s["generation"] \
                or s["role"] != "backup":
            return [f"the runbook (become-primary --force) left {doc.get('role')} g{doc.get('generation')} "
                    f"(status {st}); peer {s['role']} g{s['generation']}"]
        return []


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
