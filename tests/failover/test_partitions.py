"""Failover under partitions, pauses and restarts with real appliance pairs
(FO-08, ROB-03): a restarted old primary serves nobody before it has heard
the new one."""

from __future__ import annotations

import time

import httpx
import pytest

from .netcut import need_nft
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
