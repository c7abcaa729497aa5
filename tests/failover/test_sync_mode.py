"""Synchronous mode (issue 13, item 6; PERF-03's "an optional synchronous
mode loses none"): with sync_commit=sync a change is acknowledged only
once the backup has applied it, so it is on the backup the moment the
caller sees its 2xx. When the backup stops answering, strict mode refuses
(503 not_replicated, then the write fence refuses new changes) and fallback
mode continues asynchronously, each said in status and in the audit log."""

from __future__ import annotations

import signal

import pytest

from tests.helpers import admin_token, ok, wait_for

from .pairs import cli, peer_addr, status


def users(c, sh) -> set[str]:
    return {u["username"] for u in ok(c.get("/api/users", headers=sh))}


def set_sync(c, sh, fallback: str) -> None:
    fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "sync_commit": "sync",
          "sync_fallback": fallback, "sync_timeout_ms": 1500}
    fs.pop("dns_tsig_secret_set", None)
    ok(c.put("/api/config/settings/failover", headers=sh, json=fs))


@pytest.mark.req("FO-02", "PERF-03")
def test_synchronous_mode_strict_and_fallback(pair):
    p, pc, psh, b, bc, bsh = pair
    cli(p, "establish", "--peer", peer_addr(b))
    wait_for(lambda: status(bc, bsh)["role"] == "backup" and status(bc, bsh)["sync"]["connected"], 15,
             what="the backup streaming")
    set_sync(pc, psh, "strict")
    for i in range(10):  # each change is on the backup when its 201 arrives: no waiting
        ok(pc.post("/api/users", headers=psh, json={"username": f"sync{i}", "password": "Sync-pass-12345"}), 201)
        assert f"sync{i}" in users(bc, bsh)

    b.proc.send_signal(signal.SIGSTOP)
    try:
        r = pc.post("/api/users", headers=psh, json={"username": "unconfirmed", "password": "Unconf-pass-123"})
        assert r.status_code == 503 and r.json()["error"] == "not_replicated", r.text
        r = pc.post("/api/users", headers=psh, json={"username": "refused", "password": "Refused-pass-123"})
        assert r.status_code == 503 and "strict" in r.json()["message"]
        assert "refused" not in users(pc, psh)
        assert "strict" in status(pc, psh)["synchronous"]["degraded"]
    finally:
        b.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: status(pc, psh)["synchronous"]["degraded"] is None, 20, what="the backup confirming again")
    wait_for(lambda: "unconfirmed" in users(bc, bsh), 20, what="the unconfirmed change on the backup")
    ok(pc.post("/api/users", headers=psh, json={"username": "again", "password": "Again-pass-1234"}), 201)

    set_sync(pc, psh, "fallback")
    b.proc.send_signal(signal.SIGSTOP)
    try:
        ok(pc.post("/api/users", headers=psh, json={"username": "async1", "password": "Async-pass-1234"}), 201)
        ok(pc.post("/api/users", headers=psh, json={"username": "async2", "password": "Async-pass-1234"}), 201)
        assert "fallback" in status(pc, psh)["synchronous"]["degraded"]
    finally:
        b.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: {"async1", "async2"} <= users(bc, bsh), 20, what="the backup catching up")
    audit = ok(pc.get("/appliance/api/audit", headers={"Authorization": f"Bearer {admin_token(pc)}"}))
    actions = {e["action"] for e in audit}
    assert {"failover.sync_mode.strict_refusal", "failover.sync_mode.fallback",
            "failover.sync_mode.restored"} <= actions
