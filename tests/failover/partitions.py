"""ROB-03 without a witness, as a harness shared by bench/failover_partitions.py
(many schedules) and tests/failover/test_partitions.py (a few): seeded,
randomized schedules of faults played against a real pair, a checker, a
writer and the verdict. It owns:

- ``make_schedule(seed)``: faults, each an interval: ``link`` (nftables drop
  between the two appliances' site addresses, on the pair's port only),
  ``test`` (one appliance cut from its connectivity test address), ``pause``
  (SIGSTOP, then SIGCONT) and ``kill`` (SIGKILL, then a restart on the same
  data and ports). ``pause``/``kill``/``test`` name a role (primary or
  backup), resolved when the fault starts.
- ``Checker``: every 100 ms (the same tick for both) asks each appliance's
  /health; a tick at which both answer 200 is a dual-primary tick. A write
  acknowledged by one while the other answered as primary with a newer
  generation (``stale_acks``) counts too: a moment between two ticks.
- ``Writer``: keeps making API writes (a jump client group with a unique
  name) against both appliances, and records each acknowledged one (201) with
  which appliance took it.
- ``play(...)``: one schedule: faults, then everything healed and running,
  settled (one primary serving, the other its backup holding the same log
  and data once the writes stop), then the
  verdict: each acknowledged write is on the final primary, or in an orphan
  file (FO-08) of either appliance, or lost; and each dual-primary window,
  classified (``classify``): ``documented`` when it began while only the link
  between the two was cut (both reached their test address) and ended within
  T after the heal; ``hand-over`` when the answers do not show both serving
  at one moment (``Checker.proven``: each answer is given at some moment
  between its request and its answer, up to 0.5 s apart on a loaded machine;
  a window is proven when one's answer falls between two consecutive 200s of
  the other); anything else a finding.

The connectivity test connects of both appliances leave from 127.0.0.1 (the
test does not bind a source address), so the one test address is reached on
one port per appliance, and cutting ``test`` for an appliance drops its port
only.

With a witness (FO-11; ``play(..., etcd=cluster)``, a three-member cluster
from etcd.py, both appliances' ``witness`` settings on: ``configure_witness``)
the schedule (``make_schedule(..., witness=True)``, a generator of its own) adds
``etcd-cut`` (one appliance, by role, cut from one etcd member: nftables
between its site address, which its witness client binds, and the member's
client port), ``etcd-majority`` (cut from two or all three members),
``etcd-pause`` (SIGSTOP, then SIGCONT, of one member) and ``etcd-kill``
(SIGKILL, then a restart on its data and ports). Every proven overlap is then
a finding (no ``documented`` class), and so is a write one acknowledged while
the other served throughout the write's request (``witness_stale_acks``); the
verdict also has ``unserved``, the seconds during which neither served (the
witness's availability cost)."""

from __future__ import annotations

import heapq
import os
import random
import threading
import time
from dataclasses import dataclass, field

import httpx

from .netcut import LinkCut
from .pairproc import Member, wait_until

TICK = 0.1
KINDS = (("link", 3), ("test", 2), ("pause", 2), ("kill", 2))
WITNESS_KINDS = (("link", 3), ("test", 2), ("pause", 2), ("kill", 2),
                 ("etcd-cut", 2), ("etcd-majority", 2), ("etcd-pause", 1), ("etcd-kill", 1))
ETCD_KINDS = ("etcd-cut", "etcd-majority", "etcd-pause", "etcd-kill")


@dataclass
class Fault:
    kind: str
    target: str | None  # "primary" | "backup" (None for link)
    at: float
    duration: float
    etcd: tuple[int, ...] = ()  # the etcd members (indexes) an etcd-* fault is about

    def text(self) -> str:
        who = f" {self.target}" if self.target else ""
        if self.etcd:
            who += (" from " if self.target else " ") + "+".join(f"m{i + 1}" for i in self.etcd)
        return f"{self.kind}{who} @{self.at:.1f}s for {self.duration:.1f}s"


def make_schedule(seed: int, window: float, timeout: float, faults: tuple[int, int] = (3, 6),
                  witness: bool = False) -> list[Fault]:
    """Faults starting within ``window`` seconds; durations around the primary timeout (some shorter, some
    longer), so that some cross it and some do not."""
    if witness:
        return _witness_schedule(seed, window, timeout, faults)
    rng = random.Random(seed)
    out = []
    for _ in range(rng.randint(*faults)):
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        target = None if kind == "link" else rng.choice(("primary", "backup"))
        if rng.random() < 0.4:
            dur = rng.uniform(0.5, 0.8 * timeout)
        else:
            dur = rng.uniform(1.2 * timeout, 3 * timeout)
        out.append(Fault(kind, target, round(rng.uniform(0, window), 2), round(dur, 2)))
    return sorted(out, key=lambda f: f.at)


def _witness_schedule(seed: int, window: float, timeout: float, faults: tuple[int, int]) -> list[Fault]:
    """Like ``make_schedule`` over ``WITNESS_KINDS``: at least one fault of the witness in each schedule."""
    rng = random.Random(seed)
    out = []
    n = rng.randint(*faults)
    for j in range(n):
        kinds = WITNESS_KINDS if j < n - 1 or any(f.kind in ETCD_KINDS for f in out) else \
            [kw for kw in WITNESS_KINDS if kw[0] in ETCD_KINDS]
        kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        target = None if kind in ("link", "etcd-pause", "etcd-kill") else rng.choice(("primary", "backup"))
        etcd: tuple[int, ...] = ()
        if kind in ("etcd-cut", "etcd-pause", "etcd-kill"):
            etcd = (rng.randrange(3),)
        elif kind == "etcd-majority":
            etcd = tuple(sorted(rng.sample(range(3), rng.choice((2, 2, 3)))))
        if rng.random() < 0.4:
            dur = rng.uniform(0.5, 0.8 * timeout)
        else:
            dur = rng.uniform(1.2 * timeout, 3 * timeout)
        out.append(Fault(kind, target, round(rng.uniform(0, window), 2), round(dur, 2), etcd))
    return sorted(out, key=lambda f: f.at)


# --- the checker ------------------------------------------------------------------------------------------------
class Checker:
    """/health of each member at every tick (one thread per member; a tick whose request is still outstanding
    is missed, i.e. counted as not serving: a paused appliance serves nobody)."""

    def __init__(self, members: list[Member]):
        self.members = members
        self.t0 = time.monotonic()
        self.ticks: dict[str, dict[int, int | None]] = {m.name: {} for m in members}
        self.gens: dict[str, dict[int, int | None]] = {m.name: {} for m in members}  # of each 200: its generation
        self.spans: dict[str, dict[int, tuple[float, float]]] = {m.name: {} for m in members}  # sent, answered
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(m,), daemon=True, name=f"checker-{m.name}")
                        for m in members]
        for t in self.threads:
            t.start()

    def _run(self, m: Member) -> None:
        c = None
        k = 0
        try:
            while not self.stop.is_set():
                k = max(k + 1, int((time.monotonic() - self.t0) / TICK) + 1)
                delay = self.t0 + k * TICK - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    if c is None:
                        c = m.client(timeout=0.5)
                    sent = time.monotonic()
                    r = c.get("/health")
                    code = r.status_code
                    if code == 200:
                        self.gens[m.name][k] = _generation(r.text)
                        self.spans[m.name][k] = (sent, time.monotonic())
                except (httpx.HTTPError, OSError):
                    code = None
                    if c is not None:
                        c.close()
                    c = None
                self.ticks[m.name][k] = code
        finally:
            if c is not None:
                c.close()

    def at(self, k: int) -> float:
        return self.t0 + k * TICK

    def latest(self, name: str, within: float = 0.5) -> int | None:
        ticks = self.ticks[name]
        if not ticks:
            return None
        k = max(ticks)
        return ticks[k] if time.monotonic() - self.at(k) <= within else None

    def serving_since(self, name: str, seconds: float) -> bool:
        """Answered 200 at every tick of the last ``seconds``."""
        now_k = int((time.monotonic() - self.t0) / TICK)
        ks = range(now_k - int(seconds / TICK), now_k)
        return all(self.ticks[name].get(k) == 200 for k in ks)

    def windows(self, start: float, end: float) -> list[tuple[float, float]]:
        """(start, duration) of every run of ticks at which both answered 200, between two monotonic times."""
        return [(self.at(k0), (k1 - k0) * TICK) for k0, k1 in self._runs(start, end)]

    def _runs(self, start: float, end: float) -> list[tuple[int, int]]:
        a, b = (self.ticks[m.name] for m in self.members)
        k0, k1 = int((start - self.t0) / TICK), int((end - self.t0) / TICK) + 1
        out, run = [], None
        for k in range(k0, k1):
            both = a.get(k) == 200 and b.get(k) == 200
            if both and run is None:
                run = k
            elif not both and run is not None:
                out.append((run, k))
                run = None
        if run is not None:
            out.append((run, k1))
        return out

    def proven(self, w_start: float, w_len: float) -> bool:
        """Whether the answers show both serving at one moment, not only answers in flight across a hand-over
        (a request sent at a tick is answered up to 0.5 s later, each appliance's at its own moment). Proven
        when one answered 200 at some moment within [sent, answered] of one of its requests, and that span lies
        within a run of the other's 200s at consecutive ticks (from an answer before it to a request after it):
        the other served throughout."""
        k0 = int(round((w_start - self.t0) / TICK))
        k1 = k0 + max(1, int(round(w_len / TICK)))
        for x, y in ((m.name, o.name) for m in self.members for o in self.members if m is not o):
            ys = self.spans[y]
            for j in range(k0, k1):
                span = ys and self.spans[x].get(j)
                if not span:
                    continue
                k = j
                while k - 1 in ys and ys[k][1] > span[0]:  # back to an answer of y given before x's request
                    k -= 1
                if ys.get(k) is None or ys[k][1] > span[0]:
                    continue
                while k in ys:  # forward, along y's run of 200s, to a request of y sent after x's answer
                    if ys[k][0] >= span[1]:
                        return True
                    k += 1
        return False

    def served_throughout(self, name: str, start: float, end: float) -> bool:
        """Whether ``name`` answered 200 at consecutive ticks from an answer given before ``start`` to a request
        sent after ``end``: it served at every moment of [start, end]."""
        ys = self.spans[name]
        k = int((start - self.t0) / TICK)
        while k in ys and ys[k][1] > start:
            k -= 1
        if k not in ys:
            return False
        while k in ys:
            if ys[k][0] >= end:
                return True
            k += 1
        return False

    def unserved(self, start: float, end: float) -> float:
        """Seconds (ticks) between two monotonic times at which neither member answered 200."""
        k0, k1 = int((start - self.t0) / TICK), int((end - self.t0) / TICK)
        return sum(TICK for k in range(k0, k1) if all(self.ticks[m.name].get(k) != 200 for m in self.members))

    def newest_primary_before(self, name: str, t: float) -> tuple[float, int] | None:
        """(time, generation) of ``name``'s last 200 before ``t``."""
        k_max = int((t - self.t0) / TICK)
        ks = [k for k in self.gens[name] if k <= k_max and self.gens[name][k] is not None]
        return (self.at(max(ks)), self.gens[name][max(ks)]) if ks else None

    def primary_at(self, name: str, t: float) -> int | None:
        """The generation ``name`` served with at ``t``: its answers at the ticks around ``t`` were both 200."""
        k = int((t - self.t0) / TICK)
        if self.ticks[name].get(k) == 200 and self.ticks[name].get(k + 1) == 200:
            return self.gens[name].get(k)
        return None

    def next_primary_after(self, name: str, t: float, within: float) -> int | None:
        """The generation of ``name``'s first 200 after ``t`` (within ``within`` seconds), if any."""
        k0, k1 = int((t - self.t0) / TICK) + 1, int((t + within - self.t0) / TICK)
        for k in range(k0, k1 + 1):
            if self.gens[name].get(k) is not None:
                return self.gens[name][k]
        return None

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)


def _generation(text: str) -> int | None:
    """``primary (generation N)`` (what /health answers on a primary) -> N."""
    if "generation " not in text:
        return None
    try:
        return int(text.split("generation ", 1)[1].split(")", 1)[0])
    except ValueError:
        return None


# --- the writer -------------------------------------------------------------------------------------------------
class Writer:
    """API writes against both members, all the time; the acknowledged ones with who took them."""

    def __init__(self, members: list[Member], tag: str, every: float = 0.15):
        self.tag, self.every = tag, every
        self.acked: list[tuple[str, str, float]] = []  # (name, member, monotonic time of the answer)
        self.sent: dict[str, float] = {}  # name -> monotonic time its request was sent (acknowledged ones)
        self.refused = {m.name: 0 for m in members}
        self.failed = {m.name: 0 for m in members}
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(m,), daemon=True, name=f"writer-{m.name}")
                        for m in members]
        for t in self.threads:
            t.start()

    def _run(self, m: Member) -> None:
        i = 0
        c = None
        try:
            while not self.stop.is_set():
                i += 1
                name = f"{self.tag}-{m.name}-{i}"
                try:
                    if c is None:
                        c = m.client(timeout=2)
                    sent = time.monotonic()
                    r = c.post("/api/config/jump-client-groups", headers=m.site_headers, json={"name": name})
                    if r.status_code == 401:
                        m.login(c)
                        sent = time.monotonic()
                        r = c.post("/api/config/jump-client-groups", headers=m.site_headers, json={"name": name})
                    if r.status_code == 201:
                        with self._lock:
                            self.acked.append((name, m.name, time.monotonic()))
                            self.sent[name] = sent
                    else:
                        self.refused[m.name] += 1
                except Exception:  # noqa: BLE001 - unanswered (paused, down, cut): not acknowledged
                    self.failed[m.name] += 1
                    if c is not None:
                        c.close()
                    c = None
                self.stop.wait(self.every)
        finally:
            if c is not None:
                c.close()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


# --- the faults ---------------------------------------------------------------------------------------------
def table_prefix() -> str:
    """The nftables tables of this process's faults start with this (netcut.remove_tables cleans up)."""
    return f"tether_rob_{os.getpid()}_"


class Faults:
    """Applies faults to the pair and records when (monotonic) each one really started and ended."""

    def __init__(self, members: list[Member], probes: dict[str, int], test_ip: str, checker: Checker):
        self.members = {m.name: m for m in members}
        self.checker = checker
        a, b = members
        tag = table_prefix()
        self.link = LinkCut(a.address, b.address, table=f"{tag}link", port=a.port)
        self.tests = {m.name: LinkCut("127.0.0.1", test_ip, table=f"{tag}test_{m.name}", port=probes[m.name])
                      for m in members}
        self.state = {m.name: "up" for m in members}  # up | paused | down | starting
        self.log: list[tuple[float, str, str | None]] = []  # (time, what, member)
        self.intervals: list[tuple[str, str | None, float, float | None]] = []  # (kind, member, start, end)
        self.restarts: list[threading.Thread] = []
        self.errors: list[str] = []

    def note(self, what: str, member: str | None) -> None:
        self.log.append((time.monotonic(), what, member))

    def resolve(self, role: str) -> Member:
        """The member that has the role now (the one answering /health 200 is the primary)."""
        serving = [n for n in self.members if self.checker.latest(n) == 200]
        if len(serving) == 1:
            primary = serving[0]
        else:
            best = None
            for n, m in self.members.items():
                try:
                    s = m.status(timeout=1)
                except Exception:  # noqa: BLE001 - down or paused
                    continue
                if s["role"] == "primary" and (best is None or s["generation"] > best[1]):
                    best = (n, s["generation"])
            primary = best[0] if best else next(iter(self.members))
        if role == "primary":
            return self.members[primary]
        return next(m for n, m in self.members.items() if n != primary)

    def start(self, f: Fault) -> tuple | None:
        """Begin a fault; the handle to end it, or None when it cannot apply now (skipped)."""
        if f.kind == "link":
            if self.link.cut_now:
                return None
            self.link.cut()
            self.note("link cut", None)
            return ("link", None, self._open("link", None))
        m = self.resolve(f.target)
        if f.kind == "test":
            cut = self.tests[m.name]
            if cut.cut_now:
                return None
            cut.cut()
            self.note("test cut", m.name)
            return ("test", m.name, self._open("test", m.name))
        if self.state[m.name] != "up":
            return None
        if f.kind == "pause":
            m.pause()
            self.state[m.name] = "paused"
            self.note("SIGSTOP", m.name)
            return ("pause", m.name, self._open("pause", m.name))
        m.kill()
        self.state[m.name] = "down"
        self.note("SIGKILL", m.name)
        return ("kill", m.name, self._open("kill", m.name))

    def _open(self, kind: str, member: str | None) -> int:
        self.intervals.append((kind, member, time.monotonic(), None))
        return len(self.intervals) - 1

    def _close(self, i: int) -> None:
        kind, member, start, _ = self.intervals[i]
        self.intervals[i] = (kind, member, start, time.monotonic())

    def end(self, handle: tuple) -> None:
        kind, name, i = handle
        if kind == "link":
            self.link.heal()
            self.note("link healed", None)
            self._close(i)
        elif kind == "test":
            self.tests[name].heal()
            self.note("test healed", name)
            self._close(i)
        elif kind == "pause":
            self.members[name].cont()
            self.state[name] = "up"
            self.note("SIGCONT", name)
            self._close(i)
        else:
            self.state[name] = "starting"
            self.note("restart", name)
            t = threading.Thread(target=self._restart, args=(name, i), daemon=True)
            t.start()
            self.restarts.append(t)

    def _restart(self, name: str, i: int) -> None:
        m = self.members[name]
        try:
            m.start()
            self.note("ready", name)
        except Exception as exc:  # noqa: BLE001 - reported in the verdict
            self.errors.append(f"restart of {name} failed: {exc}")
        self._close(i)
        self.state[name] = "up"

    def heal_all(self, timeout: float = 180) -> None:
        for cut in (self.link, *self.tests.values()):
            if cut.cut_now:
                cut.heal()
        for name, m in self.members.items():
            if self.state[name] == "paused":
                m.cont()
                self.state[name] = "up"
        for t in self.restarts:
            t.join(timeout)
        for j, (kind, member, start, end) in enumerate(self.intervals):
            if end is None:
                self.intervals[j] = (kind, member, start, time.monotonic())

    def active(self, kind: str, member: str | None, t: float) -> list[tuple]:
        return [iv for iv in self.intervals if iv[0] == kind and (member is None or iv[1] == member)
                and iv[2] <= t and (iv[3] is None or t < iv[3])]


class WitnessFaults(Faults):
    """``Faults`` plus those of the witness: an appliance cut from etcd members (its witness client binds its site
    address: the cut is from that address to each member's client port), an etcd member paused or killed and
    restarted."""

    def __init__(self, members: list[Member], probes: dict[str, int], test_ip: str, checker: Checker, etcd):
        super().__init__(members, probes, test_ip, checker)
        self.etcd = etcd
        tag = table_prefix()
        self.etcd_cuts = {(m.name, i): LinkCut(m.address, em.host, table=f"{tag}w_{m.name}_{em.name}",
                                               port=em.client_port)
                          for m in members for i, em in enumerate(etcd.members)}
        self.etcd_state = {i: "up" for i in range(len(etcd.members))}

    def start(self, f: Fault) -> tuple | None:
        if f.kind not in ETCD_KINDS:
            return super().start(f)
        from . import etcd as etcdmod

        if f.kind in ("etcd-cut", "etcd-majority"):
            m = self.resolve(f.target)
            cuts = [self.etcd_cuts[(m.name, i)] for i in f.etcd if not self.etcd_cuts[(m.name, i)].cut_now]
            if not cuts:
                return None
            for c in cuts:
                c.cut()
            names = "+".join(self.etcd.members[i].name for i in f.etcd)
            self.note(f"{f.kind} from {names}", m.name)
            return (f.kind, m.name, self._open(f.kind, m.name), cuts)
        (i,) = f.etcd
        em = self.etcd.members[i]
        if self.etcd_state[i] != "up":
            return None
        if f.kind == "etcd-pause":
            etcdmod.pause_member(em)
            self.etcd_state[i] = "paused"
            self.note(f"SIGSTOP etcd {em.name}", None)
        else:
            etcdmod.kill_member(em)
            self.etcd_state[i] = "down"
            self.note(f"SIGKILL etcd {em.name}", None)
        return (f.kind, None, self._open(f.kind, em.name), i)

    def end(self, handle: tuple) -> None:
        if handle[0] not in ETCD_KINDS:
            return super().end(handle)
        from . import etcd as etcdmod

        kind, name, i, what = handle
        if kind in ("etcd-cut", "etcd-majority"):
            for c in what:
                c.heal()
            self.note(f"{kind} healed", name)
        elif kind == "etcd-pause":
            etcdmod.cont_member(self.etcd.members[what])
            self.etcd_state[what] = "up"
            self.note(f"SIGCONT etcd {self.etcd.members[what].name}", None)
        else:
            try:
                etcdmod.start_member(self.etcd.members[what])
                self.note(f"restart etcd {self.etcd.members[what].name}", None)
            except Exception as exc:  # noqa: BLE001 - reported in the verdict
                self.errors.append(f"restart of etcd {self.etcd.members[what].name} failed: {exc}")
            self.etcd_state[what] = "up"
        self._close(i)

    def heal_all(self, timeout: float = 180) -> None:
        from . import etcd as etcdmod

        for c in self.etcd_cuts.values():
            if c.cut_now:
                c.heal()
        for i, state in self.etcd_state.items():
            em = self.etcd.members[i]
            if state == "paused":
                etcdmod.cont_member(em)
            elif state == "down":
                etcdmod.start_member(em)
            self.etcd_state[i] = "up"
        super().heal_all(timeout)


def witness_stale_acks(acked, sent: dict[str, float], members: list[Member], checker: Checker, faults: Faults,
                       t0: float, windows: list[tuple[float, float]]) -> list[dict]:
    """With the witness: writes one appliance acknowledged while the other served throughout the write's request
    (a 200 answered before it was sent, 200s at every tick until a request sent after its answer): the write was
    committed at a moment both served. One finding per run of them (5 s)."""
    out: list[dict] = []
    last: dict | None = None
    for name, who, t in sorted(acked, key=lambda x: x[2]):
        other = next(m.name for m in members if m.name != who)
        start = sent.get(name, t)
        if not checker.served_throughout(other, start, t):
            continue
        if any(w_start - 0.2 <= t <= w_start + w_len + 0.2 for w_start, w_len in windows):
            continue  # inside a window the checker saw (and classified)
        if last is not None and last["member"] == who and t - t0 - last["start"] < 5:
            last["writes"] += 1
            continue
        recent = [f"{what}{' ' + (m or '')} at {tt - t:+.1f}s" for tt, what, m in faults.log if t - 15 <= tt <= t]
        last = {"start": round(start - t0, 2), "duration": round(t - start, 2), "kind": "finding", "member": who,
                "writes": 1, "why": f"{who} acknowledged a write (request {t - start:.2f} s) while {other} served "
                                    f"throughout it; events nearby: " + "; ".join(recent)}
        out.append(last)
    return out


def configure_witness(members: list[Member], etcd, ttl: int, margin: float, key: str, timeout: float = 30) -> None:
    """Both appliances' witness settings on (the backup first, then the primary, as docs/operations.md says), and
    wait for the primary to hold the key and serve."""
    w = {"enabled": True, "endpoints": etcd.endpoints, "lease_ttl_seconds": ttl, "margin_seconds": margin,
         "key": key}
    roles = {m.name: m.status()["role"] for m in members}
    for m in sorted(members, key=lambda m: roles[m.name] == "primary"):
        m.set_failover(witness=w)
    p = next(m for m in members if roles[m.name] == "primary")
    wait_until(lambda: (p.status().get("witness") or {}).get("state") == "held", timeout,
               what=f"{p.name} holding the witness's key")
    wait_until(lambda: p.health()[0] == 200, timeout, what=f"{p.name} serving under the lease")


def _etcd_healthy(etcd) -> bool:
    return all(m.proc is not None and m.proc.poll() is None for m in etcd.members) and etcd.healthy()


# --- one schedule -----------------------------------------------------------------------------------------------
@dataclass
class Verdict:
    seed: int
    schedule: list[Fault]
    acked: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    orphaned: int = 0
    lost: list[str] = field(default_factory=list)
    backup_missing: int = 0
    windows: list[dict] = field(default_factory=list)
    settled_after: float | None = None
    final_primary: str | None = None
    skipped: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unserved: float | None = None  # seconds with neither serving, from the schedule's start to settled
    observed: float | None = None  # seconds from the schedule's start to settled
    witness_faults: int = 0

    @property
    def findings(self) -> list[dict]:
        return [w for w in self.windows if w["kind"] not in ("documented", "hand-over")]

    @property
    def ok(self) -> bool:
        return not self.lost and not self.findings and not self.problems


def orphan_names(m: Member, cache: dict, prefix: str) -> set[str]:
    """Names of the groups in the orphan files of ``m`` (files read once; they are written once)."""
    names: set[str] = set()
    for f in m.ok("GET", "/api/failover/orphans"):
        key = (m.name, f["file"])
        if key not in cache:
            doc = m.ok("GET", f"/api/failover/orphans/{f['file']}")
            cache[key] = {(e.get("row") or {}).get("name") for e in doc["entries"]
                          if e["tbl"] == "jump_client_groups" and e["op"] == "upsert"}
        names |= {n for n in cache[key] if n and n.startswith(prefix)}
    return names


def group_names(m: Member, prefix: str) -> set[str]:
    out: set[str] = set()
    offset = 0
    while True:
        page = m.ok("GET", "/api/config/jump-client-groups", params={"limit": 1000, "offset": offset})
        out |= {g["name"] for g in page if g["name"].startswith(prefix)}
        if len(page) < 1000:
            return out
        offset += 1000


def settle(members: list[Member], checker: Checker, timeout: float) -> tuple[Member, Member] | None:
    """Wait for one member serving (2 s of 200s) and the other its backup, connected and caught up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        serving = [m for m in members if checker.serving_since(m.name, 2.0)]
        if len(serving) == 1:
            p = serving[0]
            b = next(m for m in members if m is not p)
            try:
                s = b.status(timeout=2)
                sync = s.get("sync") or {}
                if s["role"] == "backup" and sync.get("connected") and sync.get("lag_entries") == 0:
                    return p, b
            except Exception:  # noqa: BLE001 - not yet
                pass
        time.sleep(0.2)
    return None


def classify(w_start: float, w_len: float, faults: Faults, timeout: float) -> tuple[str, str]:
    """``documented`` or a finding, with why. Documented: the window began while the link between the two was
    cut (or within T after a cut healed: the overlap of the cut, which a tick missed on a loaded machine
    splits in two) and neither appliance had been cut from its test address for longer than it takes to
    notice (T/2 + 1 s: an isolated primary stops serving by then), and it ended within T of the heal (the
    first heartbeat after it makes the older primary step down) and within T/2 + 1 s of any test cut that
    began meanwhile."""
    w_end = w_start + w_len
    react = timeout / 2 + 1.0
    links = faults.active("link", None, w_start)
    if not links:  # begun just after a heal: the same overlap, split by a tick missed on a loaded machine
        links = [iv for iv in faults.intervals if iv[0] == "link" and iv[3] is not None
                 and iv[3] <= w_start < iv[3] + timeout]
        links = links[-1:]
    tests = [iv for name in faults.members for iv in faults.active("test", name, w_start)]
    isolated = [iv for iv in tests if w_start - iv[2] > react]
    if links and not isolated:
        heal = links[0][3]
        later = [iv for iv in faults.intervals if iv[0] == "test" and w_start <= iv[2] < w_end]
        if heal is not None and w_end > heal + timeout:
            return "finding", f"lasted {w_end - heal:.1f} s after the link healed"
        if later and w_end > min(iv[2] for iv in later) + react:
            return "finding", "an appliance cut from both its peer and its test address kept serving"
        return "documented", "only the link between the two was cut; both reached their test address"
    recent = [f"{what}{' ' + (m or '')} at {t - w_start:+.1f}s" for t, what, m in faults.log
              if w_start - 15 <= t <= w_end]
    if links:
        why = "the link was cut while " + ", ".join(f"{iv[1]} had been cut from its test address for "
                                                   f"{w_start - iv[2]:.1f} s" for iv in isolated)
    else:
        why = "the link was not cut"
    return "finding", why + "; events nearby: " + "; ".join(recent)


def stale_acks(acked, members: list[Member], checker: Checker, faults: Faults, t0: float, timeout: float,
               windows: list[tuple[float, float]]) -> list[dict]:
    """Writes acknowledged by an appliance while the other answered /health as primary (at the ticks just
    before and after) with a newer generation than this one's last answer: a moment of two primaries that fell
    between the checker's ticks (e.g. a paused old primary answering before its first heartbeat). One window
    per run of them; those of the documented case are left out (the checker's windows show that case)."""
    out: list[dict] = []
    last: dict | None = None
    for name, who, t in sorted(acked, key=lambda x: x[2]):
        other = next(m.name for m in members if m.name != who)
        mine, theirs = checker.newest_primary_before(who, t), checker.primary_at(other, t)
        if not (mine and mine[1] is not None and theirs is not None and theirs > mine[1]):
            continue  # the other one was not serving right then, or not with a newer generation
        later = checker.next_primary_after(who, t, 2.0)
        if later is not None and later > theirs:
            continue  # a new term of its own, not yet seen by the checker
        if any(w_start - 0.2 <= t <= w_start + w_len + 0.2 for w_start, w_len in windows):
            continue  # inside a window the checker saw
        if last is not None and last["member"] == who and t - t0 - last["start"] < 5:
            last["writes"] += 1
            continue
        kind, why = classify(t, 0.0, faults, timeout)
        if kind == "documented":
            continue
        last = {"start": round(t - t0, 2), "duration": 0.0, "kind": kind, "member": who, "writes": 1,
                "why": f"{who} acknowledged a write while {other} served as primary with generation "
                       f"{theirs} (> its own {mine[1]}): {why}"}
        out.append(last)
    return out


def play(members: list[Member], probes: dict[str, int], test_ip: str, seed: int, *, window: float, timeout: int,
         settle_timeout: float = 90, orphan_cache: dict | None = None, log=print, etcd=None) -> Verdict:
    """One schedule against the pair (both running, settled). Returns the verdict; leaves the pair settled
    (or says it could not: ``problems``). ``etcd``: the witness's cluster (etcd.EtcdCluster), both appliances
    configured for it (``configure_witness``)."""
    schedule = make_schedule(seed, window, timeout, witness=etcd is not None)
    v = Verdict(seed, schedule)
    v.witness_faults = sum(1 for f in schedule if f.kind in ETCD_KINDS)
    tag = f"s{seed}x{os.getpid() % 1000}t{int(time.time()) % 100000}"
    checker = Checker(members)
    faults = Faults(members, probes, test_ip, checker) if etcd is None else \
        WitnessFaults(members, probes, test_ip, checker, etcd)
    writer = Writer(members, tag)
    t0 = time.monotonic()
    interrupted = False
    try:
        # one timeline: the starts are known; each applied fault pushes its end
        timeline = [(f.at, 1, i, None) for i, f in enumerate(schedule)]
        heapq.heapify(timeline)
        while timeline:
            at, is_start, i, handle = heapq.heappop(timeline)
            _sleep_until(t0 + at)
            if not is_start:
                faults.end(handle)
                continue
            f = schedule[i]
            h = faults.start(f)
            if h is None:
                v.skipped.append(f.text())
            else:
                heapq.heappush(timeline, (f.at + f.duration, 0, i, h))
        faults.heal_all()
        v.problems += faults.errors
        t_healed = time.monotonic()
        if etcd is not None:
            try:
                wait_until(lambda: _etcd_healthy(etcd), 30, what="the etcd cluster healthy again")
            except TimeoutError as exc:
                v.problems.append(f"{exc}:\n{etcd.logs()}")
        got = settle(members, checker, settle_timeout)
        if got is None:
            v.problems.append(f"not settled within {settle_timeout:.0f} s of the heal: "
                              + ", ".join(f"{m.name}: {_state(m)}" for m in members))
        writer.close()
        if got is not None:
            p, b = got
            v.settled_after = time.monotonic() - t_healed
            v.observed = time.monotonic() - t0
            v.unserved = checker.unserved(t0, t0 + v.observed)
            v.final_primary = p.name
            try:  # the writes have stopped: the backup must come to hold the primary's whole log and data
                head = p.status()["sync"]["head"]
                wait_until(lambda: _caught_up(p, b, head, tag), 60,
                           what=f"{b.name} holding {p.name}'s log up to {head} and the same writes")
            except TimeoutError as exc:
                v.problems.append(str(exc))
    except BaseException:  # interrupted (Ctrl-C, SIGTERM in a bench) or failed: heal, do not wait for restarts
        interrupted = True
        raise
    finally:
        writer.close()
        faults.heal_all(timeout=2 if interrupted else 180)
        checker.close()
    v.events = [f"{t - t0:6.2f}s {what}{' ' + m if m else ''}" for t, what, m in faults.log]
    acked = writer.acked
    v.acked = {m.name: sum(1 for _, who, _ in acked if who == m.name) for m in members}
    seen = checker.windows(t0, time.monotonic())
    for w_start, w_len in seen:
        if etcd is not None:  # with the witness every proven moment of two primaries is a finding
            recent = [f"{what}{' ' + (m or '')} at {t - w_start:+.1f}s" for t, what, m in faults.log
                      if w_start - 15 <= t <= w_start + w_len]
            kind, why = "finding", "both served with the witness on; events nearby: " + "; ".join(recent)
        else:
            kind, why = classify(w_start, w_len, faults, float(timeout))
        if kind != "documented" and not checker.proven(w_start, w_len):
            kind, why = "hand-over", f"answers in flight across a hand-over, not both at one moment ({why})"
        v.windows.append({"start": round(w_start - t0, 2), "duration": round(w_len, 2), "kind": kind, "why": why})
    if etcd is not None:
        v.windows += witness_stale_acks(acked, writer.sent, members, checker, faults, t0, seen)
    else:
        v.windows += stale_acks(acked, members, checker, faults, t0, float(timeout), seen)
    v.windows.sort(key=lambda w: w["start"])
    if v.final_primary is not None:
        p = next(m for m in members if m.name == v.final_primary)
        b = next(m for m in members if m is not p)
        on_p, on_b = group_names(p, tag), group_names(b, tag)
        cache = orphan_cache if orphan_cache is not None else {}
        orphans = orphan_names(p, cache, tag) | orphan_names(b, cache, tag)
        for name, who, _ in acked:
            if name in on_p:
                v.kept += 1
            elif name in orphans:
                v.orphaned += 1
            else:
                v.lost.append(f"{name} (acknowledged by {who})")
        v.backup_missing = len(on_p - on_b)
        if v.backup_missing:
            v.problems.append(f"{v.backup_missing} writes on the primary {p.name} are missing on its backup in sync")
    return v


def _caught_up(p: Member, b: Member, head: int, tag: str) -> bool:
    """The backup applied exactly the primary's log up to ``head`` (not its own, diverged one: a stepped-down
    primary is ahead until it has taken a full copy) and holds the same writes."""
    sync = b.status().get("sync") or {}
    if not (b.status()["role"] == "backup" and sync.get("connected") and sync.get("applied_seq") == head):
        return False
    return group_names(b, tag) == group_names(p, tag)


def _state(m: Member) -> str:
    code, text = m.health(timeout=1)
    try:
        s = m.status(timeout=2)
        extra = f"role {s['role']} gen {s['generation']} sync {(s.get('sync') or {}).get('lag_entries')}"
    except Exception as exc:  # noqa: BLE001
        extra = f"status unavailable ({type(exc).__name__})"
    return f"health {code} {text[:60]!r}, {extra}"


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)
