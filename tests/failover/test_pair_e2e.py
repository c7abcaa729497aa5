"""The failover pair with two real appliance processes on loopback (FO-01..04,
FO-10, SEC-04): the pre-shared key on both, ``tether failover establish``
from the primary, then every change made on the primary (users, settings,
files of any size) reaches the backup over one continuous stream, the
pair's own settings and key stay where they are, and the backup serves no
clients and takes no writes. Bad peers are refused and logged."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from tests.helpers import admin_token, ok, site_token, wait_for

from .pairs import OTHER_PSK, PSK, cli, peer_addr, set_psk, status


@pytest.mark.req("FO-01", "FO-02", "FO-03", "FO-04", "FO-10", "SEC-04")
def test_establish_and_sync_continuously(pair):
    p, pc, psh, b, bc, bsh = pair
    # data made before the pair exists reaches the backup by a full copy (FO-10)
    ok(pc.post("/api/users", headers=psh, json={"username": "early", "password": "Early-pass-123"}), 201)
    ok(pc.put("/api/config/settings/failover", headers=psh,
              json={**status(pc, psh)["settings"], "sync_interval_minutes": 42}))
    big = os.urandom(3 * 1024 * 1024 + 17)
    ok(pc.put("/api/files/big.bin", headers=psh, content=big))

    out = cli(p, "establish", "--peer", peer_addr(b), "--json")
    s = json.loads(out.stdout)
    assert s["role"] == "primary" and s["peer"]["peer_address"] == peer_addr(b) and s["generation"] >= 1

    # the backup: role, gates, and the data
    wait_for(lambda: status(bc, bsh)["role"] == "backup", 10, what="the backup role")
    assert bc.get("/health").status_code == 503
    users = lambda: {u["username"] for u in ok(bc.get("/api/users", headers=bsh))}  # noqa: E731
    wait_for(lambda: "early" in users(), 20, what="the full copy on the backup")
    wait_for(lambda: status(bc, bsh)["sync"]["blobs_pending"] == 0
             and status(bc, bsh)["sync"]["blobs_fetched"] >= 1, 30, what="the file on the backup")
    assert status(bc, bsh)["sync"]["blob_bytes_received"] >= len(big)  # blob bytes are counted apart from the stream's
    got = bc.get("/api/files/big.bin", headers=bsh)
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(big).digest()

    # continuous: a change on the primary is on the backup within a second or two
    t0 = time.monotonic()
    ok(pc.post("/api/users", headers=psh, json={"username": "late", "password": "Late-pass-1234"}), 201)
    wait_for(lambda: "late" in users(), 10, every=0.05, what="the new user on the backup")
    assert time.monotonic() - t0 < 5

    # the pair's own settings and key are not synced (FO-03)
    bs = status(bc, bsh)
    assert bs["settings"]["sync_interval_minutes"] != 42 and bs["settings"]["backup_operations_enabled"] is True
    st = cli(b, "status", "--json")
    sb = json.loads(st.stdout)
    assert sb["role"] == "backup" and sb["sync"]["lag_entries"] == 0 and sb["sync"]["last_sync_result"].startswith("ok")
    assert sb["sync"]["peer_reachable"] is True
    sp = status(pc, psh)
    assert sp["sync"]["lag_entries"] == 0 and sp["sync"]["peer_reachable"] is True

    # the backup takes no writes and names the primary (FO-04)
    r = bc.post("/api/users", headers=bsh, json={"username": "nope", "password": "Nope-pass-1234"})
    assert r.status_code == 409 and peer_addr(p) in r.json()["message"]

    # break: both standalone again; the backup keeps its copy and serves
    out = cli(p, "break", "--json")
    assert json.loads(out.stdout)["peer_told"] is True
    wait_for(lambda: status(bc, bsh)["role"] == "none", 10, what="the backup released")
    assert bc.get("/health").status_code == 200
    assert "late" in users()


@pytest.mark.req("FO-01", "SEC-04")
def test_bad_peers_are_refused_and_logged(pair, make_appliance):
    p, pc, psh, b, bc, bsh = pair
    set_psk(bc, bsh, OTHER_PSK)
    cp = cli(p, "establish", "--peer", peer_addr(b), check=False)
    assert cp.returncode != 0 and "key" in cp.stderr
    assert status(pc, psh)["role"] == "none" and status(bc, bsh)["role"] == "none"
    # written to the /appliance audit log (peer traffic is the machine's, and a backup's site log is the primary's)
    bah = {"Authorization": f"Bearer {admin_token(bc)}"}
    audit = ok(bc.get("/appliance/api/audit", headers=bah))
    assert any(e["action"] == "failover.peer_refused" and e["details"]["reason"] == "key" for e in audit)

    set_psk(bc, bsh, PSK)

    # an unsigned request to the peer routes is refused with 401 and the reason
    r = bc.post("/peer/v1/pair", json={"appliance_id": "x"})
    assert r.status_code == 401 and r.json()["reason"] == "missing"
    # a replayed, correctly signed request is refused
    from tether.failover import peer_auth

    key = peer_auth.derive_key(PSK)
    body = json.dumps({"through": 1}).encode()
    headers = peer_auth.sign_request(key, "impostor", "POST", "/peer/v1/ack", body)
    first = bc.post("/peer/v1/ack", content=body, headers=headers)
    assert first.status_code == 403  # authentic, but not the paired appliance
    again = bc.post("/peer/v1/ack", content=body, headers=headers)
    assert again.status_code == 401 and again.json()["reason"] == "replay"
    assert site_token(bc)
