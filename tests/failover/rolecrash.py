"""ROB-01 for role changes, as a harness shared by tests/failover/test_role_crash.py
(a seeded sample of points) and bench/failover_role_crash.py (every point):
a real pair (tests/failover/pairproc.py), one role change at a time, the
appliance that performs it a real ``tether serve`` killed by SIGKILL at one
of its crash points (core/crashpoints.py, ``TETHER_CRASH_AT``), restarted on
the same data directory, the pair settled, and the verdict.

- **Bases.** Both data directories, copied while both appliances are
  stopped, in three states: ``manual`` (A primary, B its backup in sync),
  ``auto`` (the same with automatic failover on, T = 3 s, a connectivity
  test address that answers) and ``return`` (B made primary by an automatic
  failover while A was down holding writes B never received; B holds a
  write of its own). Every run starts from a fresh copy of its base.
- **Scenarios** (``SCENARIOS``): the automatic takeover by the backup when
  the primary is killed; become-primary on the backup with the primary
  reachable (planned swap), with and without data_sync_first, killed in the
  backup, and killed in the primary that steps down; become-backup on the
  primary (killed there); the old primary coming back and stepping down
  with orphans (killed there: its start, the step-down, the orphan file,
  the full copy it then takes).
- **Counting.** The performer counts its points from the change's first
  one (``TETHER_CRASH_FROM``: e.g. "become primary: asking"), and never its
  sync's (``TETHER_CRASH_SKIP=sync:``, killed by test_sync_crash.py), so that
  point k is the same step in the trace run and in every kill run (counting
  from the process start, the track file writes of its start and the sync
  batches it applied before the trigger shifted the numbers from run to
  run). ``return`` counts from the start: its start is the change.
- **A trace run** starts the performer under crashtrace.py, which lists
  every crash point it passes (``N``, time, label); those are the scenario's
  kill points.
- **Bounded.** Every wait has its timeout, and a run still going after
  ``RUN_BUDGET`` has both appliances killed by a watchdog (every wait then
  ends) and counts as failed; a pair where both answer as backup for 6 s is
  taken as ``no_primary`` at once instead of waiting out the settle.
- **A kill run** starts the performer with ``TETHER_CRASH_AT=k`` (writes
  acknowledged by the primary are in the base), triggers the change, waits for
  the SIGKILL, checks the killed appliance's files, starts it again (and,
  after a takeover, the killed primary too) and lets the pair settle, while
  a checker samples both /health every 100 ms. A performer killed before
  the trigger (a run that passed more points at its start than the trace
  run) is restarted and checked all the same (``early``).
- **The verdict** (``check``): each role.json valid (docs/formats/role.md)
  and its role primary or backup; generations never went down; the backup
  holds the primary's generation, the primary one at least as high as any
  seen; never both /health 200 at one tick; the track files agree
  (0 on the primary only); every orphan file parses
  (docs/formats/orphans.md); every write acknowledged before the change is
  on the final primary or in an orphan file, and the backup holds what the
  primary holds.
- **No primary.** A planned swap killed after the primary stepped down and
  before the backup took the role leaves both appliances backup (as a
  data_sync_first catch-up that times out does: "neither appliance is
  primary now"); the runbook (docs/operations.md) repeats become-primary
  with force on the appliance meant to be primary. The run records that
  outcome (``no_primary``) and checks the pair after the repeat; with
  ``expect_recovery`` (for when roles.py recovers by itself) it is a failure.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tether.failover.orphans import FORMAT as ORPHANS_FORMAT

from .pairproc import (Member, Probe, Vendor, automatic_failover, make_members, pair, start_all, wait_in_sync,
                       wait_until)
from .partitions import Checker, group_names, settle

TIMEOUT = 3  # the primary timeout T of the ``auto`` and ``return`` bases
TRACER = [sys.executable, str(Path(__file__).with_name("crashtrace.py"))]
ORPHAN_NAME = re.compile(r"orphans-(\d+)-to-(\d+)-\d{8}T\d{6}Z\.json")
ROLE_KEYS = {"version", "role", "generation", "changed_at", "primary", "reason", "fork_seq", "fencing_token"}  # role.md


@dataclass(frozen=True)
class Scenario:
    name: str
    base: str  # manual | auto | return
    performer: str  # "a" or "b": the appliance killed at its crash points
    what: str
    first: str | None = None  # the change's first point (TETHER_CRASH_FROM): points are counted from there
    skip: str = "sync:"  # points not counted (TETHER_CRASH_SKIP): the sync's own (test_sync_crash.py)


SCENARIOS = {s.name: s for s in (
    Scenario("takeover", "auto", "b", "automatic takeover by the backup when the primary is killed",
             "role primary: writing"),
    Scenario("swap", "manual", "b", "become-primary on the backup, primary reachable (killed in the backup)",
             "become primary: asking"),
    Scenario("swap-sync", "manual", "b", "become-primary --data-sync-first (killed in the backup)",
             "become primary: asking"),
    Scenario("swap-sync-old", "manual", "a", "become-primary --data-sync-first (killed in the old primary)",
             "role backup: writing"),
    Scenario("swap-old", "manual", "a", "become-primary, no data sync first (killed in the old primary)",
             "role backup: writing"),
    Scenario("become-backup", "manual", "a", "become-backup on the primary (killed there)",
             "become backup: asking"),
    Scenario("return", "return", "a", "the old primary comes back, steps down, keeps its orphans (killed there)",
             None, ""),
)}
RUN_BUDGET = 240.0  # a run still going by then has both appliances killed (every wait then ends): a problem


@dataclass
class Outcome:
    scenario: str
    k: int | None  # None: the trace run
    label: str | None = None  # the point the performer reached (its TETHER_CRASH_LOG), or None
    killed: bool = False
    no_primary: bool = False
    final: str = ""  # "a primary (g 5)"
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    before: int = 0  # a trace run: the points passed before the trigger
    points: int = 0  # a trace run: the points passed when the change was done
    early: bool = False  # killed before the trigger


class Lab:
    """Two members, their probe, the bases; ``run(scenario, k)`` plays one run."""

    def __init__(self, work: Path, addresses: tuple[str, str] = ("127.0.6.3", "127.0.6.2"),
                 probe_ip: str = "127.0.6.4", *, expect_recovery: bool = False):
        self.work = work
        self.expect_recovery = expect_recovery  # an interrupted planned swap must recover without the runbook
        self.a, self.b = make_members(work / "live", Vendor.make(work), addresses)
        self.members = {"a": self.a, "b": self.b}
        self.probe = Probe(probe_ip)
        self.bases = work / "bases"
        self.acked_in_base: dict[str, list[str]] = {}
        self.runs = 0

    # --- the bases ---------------------------------------------------------------------------------------
    def build(self, bases: tuple[str, ...] = ("manual", "auto", "return")) -> None:
        a, b = self.a, self.b
        start_all(a, b)
        pair(a, b)
        # writes acknowledged before every change (in the base, so that no run's backup applies a batch
        # between its start and the trigger: the same points before the trigger in every run)
        self.acked_in_base["manual"] = [n for n in (self._write(a, f"before-{i}") for i in range(3)) if n]
        self.acked_in_base["auto"] = self.acked_in_base["manual"]
        wait_until(self._synced, 30, what="B holding the writes")
        self._save("manual")
        if bases == ("manual",):
            return
        self._start_in_order()
        self._steady()
        for m in (a, b):
            automatic_failover(m, TIMEOUT, self.probe.ip, self.probe.port)
        self._steady()
        self._save("auto")
        # the return base: B takes over while A is down holding writes B never received
        self._start_in_order()
        self._steady()
        b.stop()
        orphans = [self._write(a, f"orph-{i}") for i in range(3)]
        a.kill()
        b.start()
        wait_until(lambda: b.health()[0] == 200, 60, what="B taking over alone")
        mine = [self._write(b, "newp-0")]
        self._stop_all()
        self.acked_in_base["return"] = [*self.acked_in_base["manual"], *(n for n in orphans + mine if n)]
        self._save("return", stop=False)

    def _save(self, name: str, stop: bool = True) -> None:
        if stop:
            self._stop_all()
        for key, m in self.members.items():
            dest = self.bases / name / key
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(m.data, dest, symlinks=True)

    def _restore(self, name: str) -> None:
        for key, m in self.members.items():
            shutil.rmtree(m.data)
            shutil.copytree(self.bases / name / key, m.data, symlinks=True)

    def _stop_all(self) -> None:
        for m in self.members.values():
            m.stop()
            m.env, m.command = {}, None

    def _start_in_order(self) -> None:
        """The primary A ready before its backup starts: a backup with automatic failover that starts first
        takes over when A's start takes longer than T (a loaded machine), which is no role change of ours."""
        self.a.start()
        self.b.start()

    def _synced(self) -> bool:
        return self.b.status()["sync"].get("applied_seq") == self.a.status()["sync"]["head"]

    def _steady(self, timeout: float = 60) -> None:
        wait_until(lambda: self.a.health()[0] == 200, timeout, what="A serving")
        wait_in_sync(self.b, timeout)

    @staticmethod
    def _write(m: Member, name: str) -> str | None:
        """A write (a jump client group); its name when acknowledged."""
        try:
            r = m.api("POST", "/api/config/jump-client-groups", timeout=10, json={"name": name})
        except Exception:  # noqa: BLE001 - not acknowledged
            return None
        return name if r.status_code == 201 else None

    def close(self) -> None:
        try:
            self._stop_all()
        finally:
            self.probe.close()

    # --- one run ---------------------------------------------------------------------------------------------
    def trace(self, scen: Scenario) -> tuple[list[str], int, "Outcome"]:
        """A run with the performer traced: its labels (point N is labels[N-1]), how many it passed before the
        trigger, and the run's own verdict."""
        path = self.work / f"trace-{scen.name}-{self.runs}.tsv"
        path.unlink(missing_ok=True)
        out = self.run(scen, None, trace=path)
        lines = [x.split("\t") for x in path.read_text().splitlines()] if path.exists() else []
        labels = [x[2] for x in lines][:out.points]
        return labels, out.before, out

    def run(self, scen: Scenario, k: int | None, *, trace: Path | None = None) -> "Outcome":
        t0 = time.monotonic()
        self.runs += 1
        out = Outcome(scen.name, k)
        log = self.work / f"crash-{self.runs}.log"
        log.unlink(missing_ok=True)
        perf = self.members[scen.performer]
        self._restore(scen.base)
        seen = {key: [role_file(m.data)] for key, m in self.members.items()}
        perf.env = {"TETHER_CRASH_LOG": str(log), "TETHER_CRASH_SKIP": scen.skip,
                    **({"TETHER_CRASH_FROM": scen.first} if scen.first else {}),
                    **({"TETHER_CRASH_AT": str(k)} if k is not None else {})}
        if trace is not None:
            perf.command = [*TRACER, str(trace)]
        checker = None
        request: dict = {}
        acked = list(self.acked_in_base.get(scen.base, []))
        overrun = threading.Event()

        def watchdog() -> None:  # every wait below ends once both appliances are gone
            overrun.set()
            for m in self.members.values():
                m.kill()
        timer = threading.Timer(RUN_BUDGET, watchdog)
        timer.daemon = True
        timer.start()
        try:
            if scen.base == "return":
                self.b.start()
                wait_until(lambda: self.b.health()[0] == 200, 60, what="B (the new primary) serving")
                checker = Checker([self.a, self.b])
                self.a.launch()  # the trigger: the old primary's start is the change
                triggered = time.monotonic()
            else:
                checker = Checker([self.a, self.b])
                try:
                    self._start_in_order()
                    self._steady()
                except (RuntimeError, TimeoutError):
                    if perf.proc is None or perf.proc.returncode != -signal.SIGKILL:
                        raise
                    out.early = True  # killed at its start, before the trigger
                    for m in self.members.values():
                        if m is not perf and not m.running:
                            m.start()
                if trace is not None:
                    out.before = _lines(trace)
                triggered = time.monotonic()
                if not out.early:
                    self._trigger(scen, request)
            died = self._wait(scen, perf, k, trace, request, triggered)
            if trace is not None:
                out.points = _lines(trace)
            out.killed = died
            if log.exists():
                out.label = log.read_text().strip().split(" ", 1)[-1]
            if perf.proc is not None and perf.proc.poll() is not None and not died:
                out.problems.append(f"the performer exited with {perf.proc.returncode}")
            thread = request.get("thread")
            if thread is not None:
                thread.join(100)  # its request's own timeout is 90 s
            # the killed appliance's files, as the next start will read them
            for key, m in self.members.items():
                if m.proc is None or m.proc.poll() is not None:
                    seen[key].append(role_file(m.data))
            if died:
                perf.env, perf.command = {}, None
                perf.stop()
                perf.start()
            if scen.name == "takeover":  # the primary the scenario killed comes back too
                self.a.stop()
                self.a.start()
            if trace is not None:
                perf.env, perf.command = {}, None
            settled = self._settle_or_none(checker, 45)
            if settled is None and all(_role(m) == "backup" for m in self.members.values()):
                out.no_primary = True
                if self.expect_recovery:
                    raise AssertionError("no primary: both appliances backup after the interrupted change")
                r = self.b.api("POST", "/api/failover/become-primary", timeout=60, json={"force": True})
                if r.status_code != 200:
                    out.problems.append(f"become-primary --force after the interrupted change: {r.status_code} "
                                        f"{r.text[:300]}")
                settled = settle([self.a, self.b], checker, 45)
            if settled is None:
                out.problems.append(f"the pair did not settle: a {_state(self.a)}; b {_state(self.b)}")
            else:
                p, q = settled
                wait_until(lambda: group_names(q, "") == group_names(p, ""), 30,
                           what="the backup holding the primary's writes")
                checker.close()
                out.problems += check(self, p, q, seen, acked, checker, triggered)
                gen = role_file(p.data).get("generation")
                out.final = f"{p.name} primary (g {gen})"
        except Exception as exc:  # noqa: BLE001 - a run that cannot be played is a problem of its own
            out.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            timer.cancel()
            if overrun.is_set():
                out.problems.append(f"the run took longer than {RUN_BUDGET:.0f} s: both appliances were killed")
            if checker is not None:
                checker.close()
            self._stop_all()
            thread = request.get("thread")
            if thread is not None:
                thread.join(30)
            out.seconds = time.monotonic() - t0
        return out

    def _settle_or_none(self, checker: Checker, timeout: float) -> tuple[Member, Member] | None:
        """``settle``, but given up after 6 s of both answering as backup (an interrupted planned swap: no
        primary until the runbook), rather than waiting out the whole timeout."""
        deadline = time.monotonic() + timeout
        both_backup_since = None
        while time.monotonic() < deadline:
            settled = settle([self.a, self.b], checker, min(3.0, max(0.1, deadline - time.monotonic())))
            if settled is not None:
                return settled
            if all(_role(m) == "backup" for m in self.members.values()):
                both_backup_since = both_backup_since or time.monotonic()
                if time.monotonic() - both_backup_since > 6.0:
                    return None
            else:
                both_backup_since = None
        return None

    def _trigger(self, scen: Scenario, request: dict) -> None:
        if scen.name == "takeover":
            self.a.kill()
            return
        if scen.name == "become-backup":
            target, path, body = self.a, "/api/failover/become-backup", {}
        else:
            target, path, body = self.b, "/api/failover/become-primary", {"data_sync_first": "sync" in scen.name}

        def call() -> None:
            try:
                r = target.api("POST", path, timeout=90, json=body)
                request["answer"] = (r.status_code, r.text[:300])
            except Exception as exc:  # noqa: BLE001 - the appliance was killed under the request
                request["answer"] = (None, type(exc).__name__)

        request["thread"] = threading.Thread(target=call, daemon=True, name="role-change")
        request["thread"].start()

    def _wait(self, scen: Scenario, perf: Member, k: int | None, trace: Path | None, request: dict,
              triggered: float) -> bool:
        """True when the performer was killed (SIGKILL); else it passed its points (a trace run: all of them,
        and none for 2 s once the change is done)."""
        deadline = time.monotonic() + 90
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if perf.proc is not None and perf.proc.poll() is not None:
                return perf.proc.returncode == -signal.SIGKILL
            if trace is not None:
                n = _lines(trace)
                if n != last:
                    last, quiet_since = n, time.monotonic()
                elif time.monotonic() - quiet_since > 2.0 and self._done(scen, request):
                    return False
            elif k is not None and self._done(scen, request) and time.monotonic() - triggered > 20:
                return False  # not reached: this run passed fewer points than the trace run
            time.sleep(0.05)
        return False

    def _done(self, scen: Scenario, request: dict) -> bool:
        thread = request.get("thread")
        if thread is not None and thread.is_alive():
            return False
        try:
            if scen.name == "takeover":
                return self.b.health()[0] == 200
            if scen.name == "return":
                s = self.a.status(timeout=2)
                return s["role"] == "backup" and (s.get("sync") or {}).get("lag_entries") == 0
            return self.b.health()[0] == 200 and self.a.status(timeout=2)["role"] == "backup"
        except Exception:  # noqa: BLE001
            return False


# --- the verdict ----------------------------------------------------------------------------------------------
def role_file(data: Path, roles: tuple[str, ...] = ("primary", "backup")) -> dict:
    """role.json as docs/formats/role.md specifies it, its role one of ``roles``; {"problem": ...} when not."""
    path = data / "failover" / "role.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {"problem": f"{path.name}: {exc}"}
    bad = []
    if not isinstance(doc, dict) or doc.get("version") != 1:
        return {"problem": f"role.json: version {doc.get('version') if isinstance(doc, dict) else doc!r}"}
    if set(doc) - ROLE_KEYS or {"role", "generation"} - set(doc):
        bad.append(f"keys {sorted(doc)}")
    if doc.get("role") not in roles:
        bad.append(f"role {doc.get('role')!r}")
    if not isinstance(doc.get("generation"), int) or doc["generation"] < 0:
        bad.append(f"generation {doc.get('generation')!r}")
    if doc.get("role") == "backup" and doc.get("fork_seq") is not None:
        bad.append("a backup with a fork_seq")
    if doc.get("role") == "primary" and doc.get("primary") is not None:
        bad.append("a primary naming a primary")
    return {**doc, "problem": "; ".join(bad)} if bad else doc


def orphan_files(data: Path) -> tuple[list[dict], list[str]]:
    """Every orphan file of ``data``, parsed and checked against docs/formats/orphans.md; (docs, problems)."""
    docs, bad = [], []
    d = data / "failover" / "orphans"
    for p in sorted(d.iterdir()) if d.is_dir() else []:
        if p.name.endswith(".tmp"):
            continue  # a write killed before its rename: never read
        m = ORPHAN_NAME.fullmatch(p.name)
        try:
            doc = json.loads(p.read_text())
        except ValueError as exc:
            bad.append(f"{p.name}: not JSON ({exc})")
            continue
        if m is None or doc.get("format") != ORPHANS_FORMAT:
            bad.append(f"{p.name}: name or format {doc.get('format')!r}")
            continue
        entries = doc.get("entries")
        if (int(m[1]), int(m[2])) != (doc.get("from_generation"), doc.get("to_generation")) \
                or not isinstance(entries, list) or doc.get("count") != len(entries) \
                or doc["from_generation"] > doc["to_generation"]:
            bad.append(f"{p.name}: generations, count or entries do not agree")
            continue
        seqs = [e.get("seq") for e in entries]
        if seqs != sorted(seqs) or any(s <= doc["fork_seq"] for s in seqs):
            bad.append(f"{p.name}: entries not in order after the fork point {doc['fork_seq']}")
        docs.append(doc)
    return docs, bad


def check(lab: Lab, p: Member, q: Member, seen: dict, acked: list[str], checker: Checker,
          since: float) -> list[str]:
    bad = []
    now = {key: role_file(m.data) for key, m in lab.members.items()}
    for key, docs in seen.items():
        for doc in [*docs, now[key]]:
            if doc.get("problem"):
                bad.append(f"{key}: {doc['problem']}")
        gens = [d.get("generation", -1) for d in [*docs, now[key]] if "generation" in d]
        if gens != sorted(gens):
            bad.append(f"{key}: its generation went down: {gens}")
    pk, qk = next(k for k, m in lab.members.items() if m is p), next(k for k, m in lab.members.items() if m is q)
    if now[pk].get("role") != "primary" or now[qk].get("role") != "backup":
        bad.append(f"roles on disk: {pk} {now[pk].get('role')}, {qk} {now[qk].get('role')}")
    if now[pk].get("generation") != now[qk].get("generation"):
        bad.append(f"generations: primary {now[pk].get('generation')}, backup {now[qk].get('generation')}")
    highest = max(d.get("generation", 0) for docs in seen.values() for d in docs)
    if now[pk].get("generation", -1) < highest:
        bad.append(f"the primary's generation {now[pk].get('generation')} is below one seen: {highest}")
    for m in (p, q):
        s = m.status()
        if s["generation"] != now[pk].get("generation"):
            bad.append(f"{m.name} reports generation {s['generation']}, the primary's file {now[pk]['generation']}")
    track = {key: _read(m.data / "failover" / "track") for key, m in lab.members.items()}
    if track[pk] != "0" or track[qk] != "1":
        bad.append(f"track files: primary {track[pk]!r}, backup {track[qk]!r}")
    windows = checker.windows(since, time.monotonic())
    if windows:
        bad.append(f"both served as primary at {len(windows)} moments: {windows[:3]}")
    kept: set[str] = set()
    for key, m in lab.members.items():
        docs, problems = orphan_files(m.data)
        bad += [f"{key}: {x}" for x in problems]
        kept |= {(e.get("row") or {}).get("name") for d in docs for e in d["entries"]
                 if e.get("tbl") == "jump_client_groups" and e.get("op") == "upsert"}
    on_primary = group_names(p, "")
    lost = [n for n in acked if n not in on_primary and n not in kept]
    if lost:
        bad.append(f"acknowledged writes lost: {lost}")
    return bad


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _lines(path: Path) -> int:
    try:
        return path.read_text().count("\n")
    except OSError:
        return 0


def _role(m: Member) -> str | None:
    try:
        return m.status(timeout=2)["role"]
    except Exception:  # noqa: BLE001
        return None


def _state(m: Member) -> str:
    code, text = m.health(timeout=1)
    try:
        s = m.status(timeout=2)
        return f"health {code}, role {s['role']} gen {s['generation']} sync {(s.get('sync') or {}).get('lag_entries')}"
    except Exception as exc:  # noqa: BLE001
        return f"health {code} {text[:60]!r}, status unavailable ({type(exc).__name__})"


def pick(points: list[int], budget: int, rng: random.Random) -> list[int]:
    """``budget`` of ``points`` (all of them when there are fewer), chosen with ``rng``."""
    return sorted(points) if len(points) <= budget else sorted(rng.sample(points, budget))
