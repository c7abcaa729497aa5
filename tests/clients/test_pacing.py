"""CL-04: the site-wide jump-client connection rate paces the reconnection
storm after an outage; the excess is told when to retry, and does."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.helpers import NEW_SITE_PASSWORD

from .conftest import Clients, ok, overview, wait_for

N = 8
RATE = 2


@pytest.mark.req("CL-04")
def test_connection_rate_paces_reconnection(ready_site, clients: Clients):
    a, c, _ah, h = ready_site
    port = httpx.URL(a.url).port
    settings = ok(c.get("/api/config/settings/jump-clients", headers=h))
    assert settings["connection_rate_per_second"] == 50  # the default
    for bad in (0, 301, "fast"):
        r = c.put("/api/config/settings/jump-clients", headers=h, json={**settings, "connection_rate_per_second": bad})
        assert r.status_code == 422, r.text
    ok(c.put("/api/config/settings/jump-clients", headers=h, json={**settings, "connection_rate_per_second": 300}))
    ok(c.put("/api/config/settings/jump-clients", headers=h, json={**settings, "connection_rate_per_second": RATE}))

    names = [f"node-{i}" for i in range(N)]
    for name in names:
        clients.install("jump", port, clients.deploy(c, h, "jump")["token"], name)
    procs = [clients.run("jump", name, "--max-backoff", "2") for name in names]
    wait_for(lambda: overview(c, h)["connected"]["jump_clients"] == N, timeout=30, what="all connected")
    c.close()

    a.listen = [f"127.0.0.1:{port}"]  # back on the same address
    marks = [len(p.text()) for p in procs]
    a.stop(signal.SIGKILL)
    wait_for(lambda: all("reconnecting in" in p.text()[m:] for p, m in zip(procs, marks)), timeout=30,
             what="every client noticing the outage and retrying")
    a.start()
    t0 = time.monotonic()
    c = a.client()
    h = {"Authorization": "Bearer " + ok(c.post("/api/session", json={"username": "admin",
                                                                      "password": NEW_SITE_PASSWORD}))["token"]}
    samples = []
    while True:
        ov = overview(c, h)
        t = time.monotonic() - t0
        samples.append((t, ov["connected"]["jump_clients"]))
        if samples[-1][1] == N:
            break
        assert t < 30, samples
        time.sleep(0.1)
    # never more than the burst (one second's worth) plus RATE per second since serving began
    for t, n in samples:
        assert n <= RATE + RATE * t + 1, samples
    assert samples[-1][0] >= (N - RATE) / RATE - 1.0, samples  # paced, not all at once
    assert ov["refused_busy"] > 0
    told = [p for p in procs if "site refused: busy" in p.text()]
    assert told, "no client was told to retry later"
    assert all(p.proc.poll() is None for p in procs)
    c.close()
