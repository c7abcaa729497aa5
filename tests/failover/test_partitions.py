"""Failover under partitions, pauses and restarts with real appliance pairs
(ROB-03, FO-08, FO-11):

- five seeded random schedules (one test each, on one pair) of link cuts,
  cuts from the connectivity test address, SIGSTOP pauses and kills +
  restarts against a pair with
  automatic failover (T = 3 s), a checker sampling both appliances' /health
  every 100 ms and a writer making API writes against both: after each
  schedule, healed and settled, no acknowledged write is lost (each is on
  the final primary or in an orphan file), and every moment both appliances
  served as primary was the documented case (only the link between the two
  cut while both reached their test address). bench/failover_partitions.py
  runs many more with the same harness (tests/failover/partitions.py);
- a restarted old primary serves nobody before it has heard the new one, nor
  does a primary frozen past the failover when it thaws (old or new); a
  backup frozen longer than T does not take over when it thaws;
- writes a primary acknowledged stay in its orphan file even when the new
  primary never followed it;
- one seeded schedule with the etcd witness (FO-11; a real three-member
  cluster, etcd.py) and its faults (an appliance cut from etcd members, a
  member paused or killed): no moment at all with both serving, no
  acknowledged write lost (``bench/failover_partitions.py --witness`` runs
  50)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid

import httpx
import pytest

from .etcd import etcd_cluster  # noqa: F401 - the fixture
from .netcut import LinkCut, need_nft, remove_tables
from .pairproc import Probe, Vendor, automatic_failover, make_members, pair, start_all, stop_all, wait_until
from .partitions import ETCD_KINDS, configure_witness, play, table_prefix

SEEDS = (1, 2, 3, 4, 5)  # ROB-03: about 5 schedules in the suite (bench/failover_partitions.py runs 50 and more)
TIMEOUT = 3
WITNESS_SEED = 25  # an etcd member paused, then killed; the primary cut from two members, then one; it is paused


@pytest.fixture(scope="module")
def vendor(tmp_path_factory):
    return Vendor.make(tmp_path_factory.mktemp("vendor"))


@contextlib.contextmanager
def _pair(work, vendor):
    """A fresh pair on 127.0.5.3 (primary) / 127.0.5.2 with automatic failover (T = 3 s) and one test-address
    listener per appliance; everything stopped and every cut of this process removed afterwards. Each freezes
    in its failover monitor, just after a heartbeat was answered, when its ``stop_file`` is written
    (``freeze_in_monitor``)."""
    need_nft()
    a, b = make_members(work, vendor, ("127.0.5.3", "127.0.5.2"))
    for m in (a, b):
        m.env.update({"TETHER_STOP_AT": "failover.monitor: answered",
                      "TETHER_STOP_FILE": str(work / f"{m.name}.stop")})
    probes = {}
    try:
        start_all(a, b)
        pair(a, b)
        for m in (a, b):
            probes[m.name] = Probe("127.0.5.4")
            automatic_failover(m, TIMEOUT, "127.0.5.4", probes[m.name].port)
        yield [a, b], {n: p.port for n, p in probes.items()}
    finally:
        stop_all(a, b, final=True)
        for p in probes.values():
            p.close()
        remove_tables(table_prefix())


@pytest.fixture
def lab(tmp_path, vendor):
    with _pair(tmp_path, vendor) as got:
        yield got


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory, vendor):
    """One pair for the seeded schedules and the tests that leave it healed and running: each starts from it
    settled (``settled``), whichever appliance is primary by then (a pair costs seconds to make)."""
    with _pair(tmp_path_factory.mktemp("shared"), vendor) as got:
        yield got, {}


def _settled(members, timeout: float = 60):
    """(primary, backup) once one serves and the other is its backup, connected and caught up."""
    def roles():
        serving = [m for m in members if m.health()[0] == 200]
        if len(serving) != 1:
            return None
        p = serving[0]
        b = next(m for m in members if m is not p)
        sync = b.status(timeout=2).get("sync") or {}
        return (p, b) if b.status()["role"] == "backup" and sync.get("connected") and sync.get("lag_entries") == 0 \
            else None

    return wait_until(roles, timeout, what="one primary serving and its backup in sync")


@pytest.fixture
def settled(shared_lab):
    """The shared pair, settled: ((primary, backup), probes)."""
    (members, probes), _ = shared_lab
    return _settled(members), probes


@pytest.mark.req("ROB-03", "FO-08")
@pytest.mark.parametrize("seed", SEEDS)
def test_random_partitions_lose_no_acknowledged_write(shared_lab, seed):
    (members, probes), cache = shared_lab
    v = play(members, probes, "127.0.5.4", seed, window=10, timeout=TIMEOUT, settle_timeout=60, orphan_cache=cache)
    story = f"seed {seed}: {[f.text() for f in v.schedule]}; events {v.events}"
    assert not v.problems, f"{v.problems}; {story}"
    assert sum(v.acked.values()) > 0, story
    assert v.lost == [], f"lost {v.lost}; {story}"
    assert v.findings == [], f"two primaries outside the documented case: {v.findings}; {story}"
    assert v.kept + v.orphaned == sum(v.acked.values())


@pytest.mark.req("FO-08", "ROB-03")
def test_a_restarted_old_primary_serves_nobody_before_it_has_heard_the_new_one(settled):
    """The old primary, killed and replaced by an automatic failover, starts again with its role file still
    saying primary: from its first answer on it must not serve (no /health 200, no write), and it re-enters
    as backup."""
    (a, b), _ = settled  # a: the primary now
    a.status()  # a current site token: the writes below are refused for the role, not for a stale login
    a.kill()
    wait_until(lambda: b.health()[0] == 200, 30, every=0.05, what="the automatic failover")
    a.launch()
    codes, writes = [], []
    deadline = time.monotonic() + 60
    with a.client(timeout=1) as c:
        while time.monotonic() < deadline:
            try:
                codes.append(c.get("/health").status_code)
                w = c.post("/api/config/jump-client-groups", headers=a.site_headers, json={"name": f"w{len(codes)}"})
                writes.append(w.status_code)
                if a.status(timeout=2)["role"] == "backup":
                    break
            except (httpx.HTTPError, OSError):
                time.sleep(0.02)
    assert a.status()["role"] == "backup", codes[-5:]
    assert codes and 200 not in codes, codes
    assert 201 not in writes, writes
    assert b.health()[0] == 200


def _group(m, name: str) -> None:
    r = m.api("POST", "/api/config/jump-client-groups", json={"name": name})
    assert r.status_code == 201, r.text


@pytest.mark.req("FO-08", "ROB-03")
def test_a_new_primary_that_never_followed_the_last_one_leaves_its_writes_in_the_orphans(lab):
    """b takes over during a cut and acknowledges writes; a, the old primary, steps down when the link heals
    but never takes b's copy (its backup operations are off), b dies, and a is made primary again with its own
    older history. When b comes back it steps down: every write it acknowledged must be in its orphan file,
    although a's fork point (a's head) is later than where the two histories parted."""
    (a, b), _ = lab
    a.set_failover(backup_operations_enabled=False)  # a, once a backup, will not follow (nor resync from) b
    _group(a, "before-cut")
    wait_until(lambda: "before-cut" in {g["name"] for g in b.ok("GET", "/api/config/jump-client-groups")}, 30,
               what="the first write on the backup")
    with LinkCut(a.address, b.address, table=f"tether_orph_{os.getpid()}", port=a.port) as link:
        link.cut()
        for i in range(3):
            _group(a, f"a-cut-{i}")  # acknowledged by a; b never receives them
        wait_until(lambda: b.health()[0] == 200, 30, every=0.05, what="b taking over")
        for i in range(3):
            _group(b, f"b-new-{i}")  # acknowledged by b: a never receives them
    wait_until(lambda: a.status()["role"] == "backup", 30, what="a stepping down once the link healed")
    b.kill()
    a.ok("POST", "/api/failover/become-primary", json={"force": True})
    b.start()
    wait_until(lambda: b.status()["role"] == "backup", 30, what="b stepping down for a's newer generation")
    head = a.status()["sync"]["head"]
    wait_until(lambda: (b.status().get("sync") or {}).get("applied_seq") == head and "before-cut" in
               {g["name"] for g in b.ok("GET", "/api/config/jump-client-groups")}, 30, what="b holding a's copy")
    kept = {(e.get("row") or {}).get("name") for f in b.ok("GET", "/api/failover/orphans")
            for e in b.ok("GET", f"/api/failover/orphans/{f['file']}")["entries"] if e["tbl"] == "jump_client_groups"}
    on_a = {g["name"] for g in a.ok("GET", "/api/config/jump-client-groups")}
    assert {f"a-cut-{i}" for i in range(3)} <= on_a
    lost = {f"b-new-{i}" for i in range(3)} - on_a - kept
    assert not lost, f"acknowledged by b, on neither a nor b's orphan files: {lost}"


def _stepped_down_at(m) -> list[float]:
    """Wall-clock times of the "stepping down" lines in an appliance's log (logging's local asctime, ms)."""
    out = []
    for line in m.log_path.read_text(errors="replace").splitlines():
        if "stepping down" in line and line[:4].isdigit():
            stamp, ms = line[:23].split(",")
            out.append(time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000)
    return out


@pytest.mark.req("ROB-03", "FO-08")
def test_a_newer_primary_frozen_across_the_heal_does_not_serve_beside_the_older_one_when_it_thaws(settled):
    """A cut of the link: b takes over, a keeps serving (the documented case). b is frozen (SIGSTOP) and the
    link heals: a, hearing nothing from b, serves alone. When b thaws, it must not serve before a has stepped
    down: a request that waited in b's socket is not answered 200 before a's step-down."""
    (a, b), _ = settled  # a: the primary now
    with LinkCut(a.address, b.address, table=f"tether_thaw_{os.getpid()}", port=a.port) as link:
        link.cut()
        wait_until(lambda: b.health()[0] == 200, 30, every=0.05, what="b taking over during the cut")
        b.pause()
    try:
        assert a.health()[0] == 200
        time.sleep(TIMEOUT)  # frozen longer than the primary timeout
        answers: list = []

        def ask():
            try:
                with b.client(timeout=20) as c:
                    code = c.get("/health").status_code
                answers.append((code, time.time()))
            except (httpx.HTTPError, OSError) as exc:
                answers.append((type(exc).__name__, time.time()))

        waiting = threading.Thread(target=ask)
        waiting.start()
        time.sleep(0.5)  # the request waits in the frozen appliance's socket
    finally:
        b.cont()
    waiting.join(30)
    wait_until(lambda: a.status()["role"] == "backup" and b.health()[0] == 200, 30, what="a stepping down for b")
    (code, received), = answers
    down = _stepped_down_at(a)
    assert down, "a's log has no step-down"
    assert code != 200 or received >= down[-1], (f"b answered 200 {down[-1] - received:.3f} s before a stepped "
                                                 f"down: two primaries")


@pytest.mark.req("FO-05", "ROB-03")
def test_a_backup_restarted_during_a_cut_waits_the_primary_timeout_before_taking_over(settled):
    """The backup, killed and started again while the link to the primary is cut, has heard nothing since it
    started, not nothing for ever: it takes over no sooner than T after it started (and not at all if the link
    heals first)."""
    (a, b), _ = settled  # a: the primary now
    b.kill()
    with LinkCut(a.address, b.address, table=f"tether_rst_{os.getpid()}", port=a.port) as link:
        link.cut()
        b.start()
        wait_until(lambda: b.health()[0] == 200, 30, every=0.05, what="b taking over")
        took = time.monotonic() - b.ready_at
    assert took >= TIMEOUT - 0.5, f"b took over {took:.2f} s after it started (T = {TIMEOUT} s)"


def _ask_health_while_frozen(m, answers: list) -> threading.Thread:
    """A /health request sent to ``m`` while it is frozen: it waits in its socket until it thaws."""
    def ask():
        try:
            with m.client(timeout=20) as c:
                code = c.get("/health").status_code
            answers.append((code, time.time()))
        except (httpx.HTTPError, OSError) as exc:
            answers.append((type(exc).__name__, time.time()))

    t = threading.Thread(target=ask)
    t.start()
    return t


@pytest.mark.req("ROB-03", "FO-05")
def test_a_frozen_appliance_does_not_act_on_its_own_freeze_when_it_thaws(settled):
    """SIGSTOP longer than T, link up. The backup, thawed, does not take over (the silence was its own freeze):
    the primary serves throughout. The primary, frozen: the backup takes over; thawed, the old primary answers
    no request 200 (not one that waited in its socket either) and steps down."""
    (a, b), _ = settled  # a: the primary now
    generation = a.status()["generation"]
    b.pause()
    try:
        time.sleep(2 * TIMEOUT)
    finally:
        b.cont()
    codes = []
    deadline = time.monotonic() + 2 * TIMEOUT
    while time.monotonic() < deadline:
        codes.append(b.health()[0])
        time.sleep(0.1)
    assert 200 not in codes, codes
    sa, sb = a.status(), b.status()
    assert (sa["role"], sa["generation"], sb["role"]) == ("primary", generation, "backup"), (sa, sb)
    assert a.health()[0] == 200

    a.pause()
    answers: list = []
    try:
        wait_until(lambda: b.health()[0] == 200, 30, every=0.05, what="b taking over from the frozen a")
        time.sleep(TIMEOUT)
        waiting = _ask_health_while_frozen(a, answers)
        time.sleep(0.5)
    finally:
        a.cont()
    waiting.join(30)
    wait_until(lambda: a.status()["role"] == "backup", 30, what="a stepping down for b")
    (code, _), = answers
    assert code != 200, "the thawed old primary answered 200 beside the new one"
    assert b.health()[0] == 200


def freeze_in_monitor(m) -> None:
    """``m`` stops itself (SIGSTOP) in its failover monitor, between a heartbeat's answer and acting on it."""
    stop_file = m.env["TETHER_STOP_FILE"]
    with open(stop_file, "w"):
        pass

    def stopped() -> bool:
        with open(f"/proc/{m.proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"

    wait_until(stopped, 10, every=0.02, what=f"{m.name} frozen in its failover monitor")
    m.paused = True


@pytest.mark.req("ROB-03", "FO-05")
def test_a_primary_frozen_between_a_heartbeat_and_its_decision_does_not_act_on_it_when_it_thaws(settled):
    """The primary freezes just after its peer answered a heartbeat, before it acted on the answer, and the
    link is cut meanwhile (so that nothing newer waits in its sockets); the backup takes over. Thawed, the old
    primary must not take that answer (from before its freeze) for fresh contact and confirm itself at once:
    like any thawed appliance it counts the silence from its thaw, and serves again (the documented case of
    a cut link) only once it has heard nothing for T/2 and reaches its test address."""
    (a, b), _ = settled  # a: the primary now
    with LinkCut(a.address, b.address, table=f"tether_held_{os.getpid()}", port=a.port) as link:
        freeze_in_monitor(a)
        link.cut()
        try:
            wait_until(lambda: b.health()[0] == 200, 30, every=0.05, what="b taking over from the frozen a")
        finally:
            a.cont()
        thawed = time.monotonic()
        first_200 = None
        while time.monotonic() < thawed + TIMEOUT / 2 + 2:
            if a.health(timeout=2)[0] == 200:
                first_200 = time.monotonic() - thawed
                break
            time.sleep(0.02)
    assert first_200 is None or first_200 >= TIMEOUT / 2 - 0.2, \
        f"the thawed old primary confirmed itself on a heartbeat from before its freeze ({first_200:.2f} s)"
    wait_until(lambda: a.status()["role"] == "backup" and b.health()[0] == 200, 30, what="a stepping down for b")


@pytest.mark.req("ROB-03", "FO-11", "FO-08")
def test_a_random_schedule_with_the_witness_never_has_two_primaries(tmp_path, vendor, etcd_cluster):
    with _pair(tmp_path, vendor) as (members, probes):
        configure_witness(members, etcd_cluster, 4, 1.5, f"/tether/test-{uuid.uuid4().hex[:8]}/primary")
        v = play(members, probes, "127.0.5.4", WITNESS_SEED, window=10, timeout=TIMEOUT, settle_timeout=60,
                 etcd=etcd_cluster)
    story = f"seed {WITNESS_SEED}: {[f.text() for f in v.schedule]}; events {v.events}"
    assert any(f.kind in ETCD_KINDS for f in v.schedule)
    assert not v.problems, f"{v.problems}; {story}"
    assert sum(v.acked.values()) > 0, story
    assert v.lost == [], f"lost {v.lost}; {story}"
    assert v.findings == [], f"two primaries with the witness: {v.findings}; {story}"
    assert v.kept + v.orphaned == sum(v.acked.values())
