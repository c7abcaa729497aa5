"""Failover under partitions, pauses and restarts with real appliance pairs
(FO-08, ROB-03): a restarted old primary serves nobody before it has heard
the new one; writes a primary acknowledged stay in its orphan file even
when the new primary never followed it."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from .netcut import LinkCut, need_nft
from .pairproc import Probe, Vendor, automatic_failover, make_members, pair, start_all, wait_until

TIMEOUT = 3


@pytest.fixture
def lab(tmp_path):
    need_nft()
    a, b = make_members(tmp_path, Vendor.make(tmp_path), ("127.0.5.3", "127.0.5.2"))
    probes = {}
    try:
        start_all(a, b)
        pair(a, b)
        for m in (a, b):
            probes[m.name] = Probe("127.0.5.4")
            automatic_failover(m, TIMEOUT, "127.0.5.4", probes[m.name].port)
        yield [a, b], {n: p.port for n, p in probes.items()}
    finally:
        for m in (a, b):
            m.stop()
        for p in probes.values():
            p.close()


@pytest.mark.req("FO-08", "ROB-03")
def test_a_restarted_old_primary_serves_nobody_before_it_has_heard_the_new_one(lab):
    """The old primary, killed and replaced by an automatic failover, starts again with its role file still
    saying primary: from its first answer on it must not serve (no /health 200, no write), and it re-enters
    as backup."""
    (a, b), _ = lab
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
