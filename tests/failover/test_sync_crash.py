"""ROB-01 (sync apply), FO-02, FO-03: the backup's apply, killed with SIGKILL
at hundreds of points, always leaves the old or the new state of its site
(compared by content hash), never a mixture, and after a restart resumes
and converges to the primary's state.

The crash points are the named ones of failover/sink.py and
failover/blobs.py (tether.core.crashpoints): before, inside and after each
batch's transaction and each entry of it, each line of a full copy, each
chunk of a blob's part file, before and after its rename. A kill point is
"the N-th checkpoint of the run".

Two parts, both against a real primary appliance:

1. A harness that runs the backup's own sync code (SyncWorker's stream, the
   sink, the blob fetcher) in a forked process on a copy of the backup's
   site, against the real primary's stream, once with a trace of every
   point passed and the state at each commit, then once per kill point,
   armed to SIGKILL itself there. After each kill the site on disk is read
   from a copy and must be one of the traced states; another forked run
   from there must converge to the final one. Two starting states: the
   backup as it was paired (incremental batches and blobs) and the backup's
   own site from before pairing (another history: a full copy).
2. The real backup appliance restarted with ``TETHER_CRASH_AT`` (its sync
   threads, started by the job runner; ``TETHER_CRASH_ONLY=sync:``: the N-th
   point of its sync code, not of its start's role and track file writes)
   several times, then without it: it
   converges to the primary, whose data it holds byte for byte (dump hash),
   with the same change-log sequence numbers and every blob verified.
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tether.core import crashpoints
from tether.core.paths import DataDir
from tether.core.throttle import LoginThrottle
from tether.failover import peer_auth, sink
from tether.failover.peer_client import PeerClient
from tether.failover.source import BATCH_ENTRIES
from tether.failover import worker as worker_mod
from tether.failover.worker import SyncWorker
from tether.site import sections
from tether.site.site import Site
from tests.helpers import ok, wait_for
from tests import forked

from .e2e import (PSK, SiteState, db_state, blob_problems, converged, establish, live_state, make_pair, read_state,
                  status, visible_blobs)

CHILD_TIMEOUT = 60.0
COMMITS = ("sync: batch committed", "sync: copy committed")
STARTS = COMMITS + ("sync: blob stored",)  # a kill there leaves a state to start later kill runs from
# only the sync code's own points count (not, e.g., write_atomic's of a role or track file the appliance
# writes at its start): the same numbering in the traced run and in every kill run
ONLY = ("sync:",)


# --- the harness: the backup's sync code in a forked process --------------------------------------------------
def _sync(root: Path, peer: dict, db_trace: Path | None = None) -> None:
    """Sync the site under ``root`` from the primary until caught up, blobs included (the backup's code)."""
    # one transaction per batch as the primary cut them, so that the clean run's commit points are every
    # run's: grouping the batches that queued up (the worker's group commit) depends on timing, and a group
    # is applied in one transaction all the same
    worker_mod.GROUP_ENTRIES = 0
    site = Site(DataDir.at(root), LoginThrottle())
    if db_trace is not None:
        def observe(n: int, label: str) -> None:
            state = db_state(root / "site" / "site.db").__dict__ if label in COMMITS else None
            with open(db_trace, "a") as f:
                f.write(json.dumps({"n": n, "label": label, "state": state}) + "\n")
        crashpoints.observe(observe)
    worker = SyncWorker(lambda: site, lambda: None,
                        lambda: sections.get_model(site.engine, sections.section("failover")), lambda g: None,
                        lambda fork, reason: None)
    stop = threading.Event()
    with PeerClient(peer["url"], peer["pin"], peer["key"], peer["me"]) as client:
        for _ in range(5):
            if worker._stream(site, client, stop, interval=True):
                break
        else:
            raise AssertionError("the stream did not catch up")
        stores = {"files": site.files.blobs, "recordings": site.recordings}
        for kind, sha, size in dict.fromkeys(sink.all_blob_refs(site.engine)):
            if not stores[kind].exists(sha):
                worker._fetch_one(client, stores[kind], kind, sha, size)
    site.close()


def _fork(fn, *args, kill_at: int | None = None) -> int:
    """Run ``fn(*args)`` in a forked process (armed to SIGKILL itself at checkpoint ``kill_at``); its wait status."""
    def armed(*a):
        crashpoints.arm(kill_at, only=ONLY)
        fn(*a)
    armed.__name__ = f"{fn.__name__}, kill at {kill_at}"
    try:
        return forked.fork(armed, *args, timeout=CHILD_TIMEOUT)
    except TimeoutError as exc:
        raise AssertionError(f"the sync child did not finish in time: {exc}") from None


def _killed(status_: int) -> bool:
    return forked.killed(status_)


def _fresh(base: Path, trial: Path) -> Path:
    shutil.rmtree(trial, ignore_errors=True)
    shutil.copytree(base, trial, symlinks=True)
    return trial


def _pick(labels: list[str], budget: int) -> list[int]:
    """About ``budget`` kill points (1-based), shared evenly by the kinds of point (a rare kind: all of its
    occurrences), each kind's spread evenly over the run."""
    by_kind: dict[str, list[int]] = {}
    for n, label in enumerate(labels, 1):
        by_kind.setdefault(label, []).append(n)
    chosen: set[int] = set()
    kinds = sorted(by_kind.values(), key=len)
    for i, ns in enumerate(kinds):
        quota = max(1, (budget - len(chosen)) // (len(kinds) - i))
        step = max(1.0, len(ns) / quota)
        chosen |= {ns[int(j * step)] for j in range(min(quota, len(ns)))}
    return sorted(chosen)


def _sweep(name: str, base: Path, peer: dict, work: Path, budget: int, *, resume_every: int = 8) -> dict:
    """Trace a clean run from ``base``, then kill runs at ~``budget`` of its points and check each result.

    A run killed at a commit point (or just after a blob is stored) leaves the state committed there; that
    copy is the starting state of the kill runs at the points after it (the same points as the clean run's,
    numbered from there), so no run repeats the batches or blobs before it. Every few kills, a run from the
    killed state checks the convergence."""
    trace = work / f"{name}.trace"
    trial = work / f"{name}-trial"
    assert _fork(_sync, _fresh(base, trial), peer, trace) == 0, f"{name}: the clean run failed"
    points = [json.loads(x) for x in trace.read_text().splitlines()]
    labels = [p["label"] for p in points]
    old = read_state(base / "site", work / "check")
    states = {old.full: old} | {SiteState(**p["state"]).full: SiteState(**p["state"]) for p in points if p["state"]}
    new = read_state(trial / "site", work / "check")
    assert new.full in states and new != old and not blob_problems(trial / "site")
    final_blobs = visible_blobs(trial / "site")
    commits = [n for n, label in enumerate(labels, 1) if label in COMMITS]
    starts_at = [n for n, label in enumerate(labels, 1) if label in STARTS]
    chosen = sorted(set(_pick(labels, budget - len(starts_at))) | set(starts_at))
    starts = [(0, base)]  # (the point a starting state was committed at, its copy)
    outcomes = {"points": len(labels), "kills": 0, "old": 0, "new": 0, "between": 0, "resumed": 0}
    for i, n in enumerate(chosen):
        since, start = max((c, d) for c, d in starts if c < n)
        st = _fork(_sync, _fresh(start, trial), peer, kill_at=n - since)
        where = f"point {n} ({labels[n - 1]})"
        assert _killed(st), f"{name}: not killed at {where}: status {st}"
        outcomes["kills"] += 1
        got = read_state(trial / "site", work / "check")
        assert got.full in states, (f"{name}: a mixture after a kill at {where}: {got.short()}; "
                                    f"consistent states: {[s.short() for s in states.values()]}")
        assert not blob_problems(trial / "site"), f"{name}: a blob visible unverified after a kill at {where}"
        outcomes["old" if got.full == old.full else "new" if got.full == new.full else "between"] += 1
        if n in commits:
            assert got.full == SiteState(**points[n - 1]["state"]).full, f"{name}: not the state committed at {n}"
        if n in starts_at:
            starts.append((n, _fresh(trial, work / f"{name}-at-{n}")))
        if i % resume_every == 0:  # the next start resumes and converges
            assert _fork(_sync, trial, peer) == 0, f"{name}: the run after a kill at {where} failed"
            assert read_state(trial / "site", work / "check").full == new.full, f"{name}: no convergence after {n}"
            assert visible_blobs(trial / "site") == final_blobs and not blob_problems(trial / "site")
            outcomes["resumed"] += 1
    outcomes["kinds"] = sorted({labels[n - 1] for n in chosen})
    return {**outcomes, "states": states}


def _copy_site(site_dir: Path, dest: Path) -> Path:
    """A consistent copy of a running appliance's site (database by SQLite's backup API, blobs by file)."""
    (dest / "site").mkdir(parents=True)
    src = sqlite3.connect(f"file:{site_dir / 'site.db'}?mode=ro", uri=True)
    dst = sqlite3.connect(dest / "site" / "site.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    for sub in ("files", "recordings"):
        if (site_dir / sub).exists():
            shutil.copytree(site_dir / sub, dest / "site" / sub)
        else:
            (dest / "site" / sub).mkdir()
    return dest


def _workload(pc, psh, tag: str, messages: int, files: int, file_size: int) -> None:
    for i in range(messages):
        ok(pc.post("/api/config/canned-messages", headers=psh,
                   json={"name": f"{tag}-{i}", "body": f"message {i} of {tag} " * 20}), 201)
    for i in range(0, messages, 7):
        ok(pc.put(f"/api/config/canned-messages/{tag}-{i}", headers=psh,
                  json={"name": f"{tag}-{i}", "body": "edited", "category": "Edited"}))
    for i in range(3, messages, 11):
        ok(pc.delete(f"/api/config/canned-messages/{tag}-{i}", headers=psh))
    for i in range(files):
        ok(pc.put(f"/api/files/{tag}-{i}.bin", headers=psh, content=os.urandom(file_size + i)))


@pytest.mark.req("ROB-01", "FO-02", "FO-03")
@pytest.mark.timeout(900)
def test_sync_apply_killed_at_every_point_leaves_old_or_new_and_converges(make_appliance, tmp_path):
    pair = make_pair(make_appliance)
    work = tmp_path / "work"
    try:
        pc, psh, b = pair.pc, pair.psh, pair.b
        # the backup's own site from before the pair: another history (its own first login changed its admin)
        own = _copy_site(pair.backup_site, work / "own")
        ok(pc.put("/api/files/early.bin", headers=psh, content=os.urandom(200_000)))
        establish(pair)
        wait_for(lambda: converged(pair), 60, what="the first sync")
        bstatus = status(pair.bc, pair.bsh)
        peer = {"url": bstatus["peer"]["peer_url"], "pin": bstatus["peer"]["peer_pin"],
                "key": peer_auth.derive_key(PSK), "me": bstatus["appliance_id"]}
        b.stop()
        paired = work / "paired"
        shutil.copytree(pair.backup_site, paired / "site")
        before = read_state(paired / "site", work / "check")

        # what the primary does while the backup is down: more than one batch of entries, and blobs
        t0 = time.monotonic()
        _workload(pc, psh, "w", messages=240, files=5, file_size=1_300_000)
        primary = live_state(pair.primary_site, work / "check")
        assert primary.position - before.position > BATCH_ENTRIES, "the workload should span several batches"
        print(f"\nworkload: {primary.position - before.position} entries in {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        inc = _sweep("incremental", paired, peer, work, budget=90)
        print(f"incremental: { {k: v for k, v in inc.items() if k != 'states'} } in {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        full = _sweep("full-copy", own, peer, work, budget=140)
        print(f"full copy: { {k: v for k, v in full.items() if k != 'states'} } in {time.monotonic() - t0:.1f} s")
        assert inc["kills"] + full["kills"] >= 200, (inc["kills"], full["kills"])
        assert inc["old"] and inc["new"] and inc["between"] and full["old"] and full["new"]
        assert "sync: copy rows users" in full["kinds"] and "sync: blob chunk" in inc["kinds"]

        # the same data as the primary's (the clean run's final state, checked once more against it)
        clean = read_state(work / "incremental-trial" / "site", work / "check")
        assert clean.data == primary.data
        assert clean.seqs == before.seqs + tuple(s for s in primary.seqs if s > before.position)
        assert read_state(work / "full-copy-trial" / "site", work / "check").data == primary.data

        # 2. the real backup appliance, killed by its own crash points while its jobs sync, then restarted
        t0 = time.monotonic()
        kills = 0
        for k in (5, 300, 520, 150, 60):
            log = tmp_path / "crash.log"
            log.unlink(missing_ok=True)
            pair.restart_backup({"TETHER_CRASH_AT": str(k), "TETHER_CRASH_LOG": str(log),
                                 "TETHER_CRASH_ONLY": ",".join(ONLY)})
            wait_for(lambda: b.proc.poll() is not None or _quietly(converged, pair), 90,
                     what=f"the backup killed at point {k}, or in sync")
            if b.proc.poll() is None:
                continue  # in sync before its point k
            assert b.proc.returncode == -signal.SIGKILL, b.log_path.read_text()[-3000:]
            kills += 1
            got = read_state(pair.backup_site, work / "check")
            where = log.read_text().strip() if log.exists() else f"{k} (before it was ready)"
            print(f"real backup killed at {where}: {got.short()}")
            assert got.full in inc["states"], f"a mixture on the real backup after a kill at {where}: {got.short()}"
            assert not blob_problems(pair.backup_site)
        assert kills >= 3
        # a change while it is down, then a clean start: it resumes and converges
        b.stop()
        ok(pc.post("/api/users", headers=psh, json={"username": "after", "password": "After-pass-1234"}), 201)
        ok(pc.put("/api/files/after.bin", headers=psh, content=os.urandom(700_000)))
        pair.restart_backup()
        wait_for(lambda: converged(pair), 90, what="the backup converged after its crashes")
        print(f"real backup: {kills} kills, then convergence, in {time.monotonic() - t0:.1f} s")
        b.stop()
        got = read_state(pair.backup_site, work / "check")
        primary = live_state(pair.primary_site, work / "check")
        assert got.data == primary.data
        assert got.seqs == tuple(s for s in primary.seqs if s >= got.seqs[0])
        assert not blob_problems(pair.backup_site)
        assert visible_blobs(pair.backup_site) == visible_blobs(pair.primary_site)
    finally:
        pair.close()


def _quietly(pred, *args) -> bool:
    try:
        return pred(*args)
    except Exception:  # noqa: BLE001 - the appliance is starting, or was just killed
        return False
