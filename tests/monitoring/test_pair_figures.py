"""Role, peer and sync lag on a real failover pair (the failover tests' ``pair``
fixture): the dashboard API and /metrics of both appliances show primary and
backup, the peer, and a lag of 0 entries once in sync (OPS-04, OPS-07); the
readiness audit's failover checks (DR-01) fail and pass by what mends them —
the connectivity test addresses set to one that answers, and the primary
reachable again after it was frozen (SIGSTOP, then SIGCONT)."""

from __future__ import annotations

import signal

import pytest

from tests.failover.pairs import cli, in_sync, pair, peer_addr, status  # noqa: F401 - pair: the fixture
from tests.helpers import admin_token, ok, wait_for


def _metrics(c, ah) -> dict[str, float]:
    mon = ok(c.get("/appliance/api/monitoring", headers=ah))
    ok(c.put("/appliance/api/monitoring", headers=ah, json={**mon, "metrics": {"allowed_networks": ["127.0.0.0/8"]}}))
    text = c.get("/metrics").text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _check(c, ah, name: str) -> dict:
    report = ok(c.get("/appliance/api/readiness", headers=ah))
    return next(x for x in report["checks"] if x["name"] == name)


@pytest.mark.req("OPS-04", "OPS-07", "DR-01")
def test_pair_role_peer_lag_and_the_failover_checks(pair):
    p, pc, psh, b, bc, bsh = pair
    pah = {"Authorization": f"Bearer {admin_token(pc)}"}
    bah = {"Authorization": f"Bearer {admin_token(bc)}"}
    cli(p, "establish", "--peer", peer_addr(b), "--json")
    wait_for(lambda: status(bc, bsh)["role"] == "backup" and in_sync(pc, psh, bc, bsh), 30, what="the pair in sync")
    wait_for(lambda: (status(bc, bsh).get("sync") or {}).get("peer_reachable"), 15, what="the backup hears the primary")

    for c, ah, role, other in ((pc, pah, "primary", b), (bc, bah, "backup", p)):
        dash = ok(c.get("/appliance/api/dashboard", headers=ah))
        f = dash["failover"]
        assert f["role"] == role and f["paired"] and f["peer"] == peer_addr(other), f
        assert f["lag_entries"] == 0 and f["peer_reachable"] is True, f
        m = _metrics(c, ah)
        assert m[f'tether_role{{role="{role}"}}'] == 1 and m["tether_failover_paired"] == 1
        assert m["tether_generation"] == f["generation"] >= 1
        assert m["tether_sync_lag_entries"] == 0 and m["tether_peer_reachable"] == 1
        assert _check(c, ah, "failover_in_sync")["status"] == "pass"
    assert ok(bc.get("/appliance/api/dashboard", headers=bah))["failover"]["last_sync_result"].startswith("ok")
    m = _metrics(bc, bah)
    assert m['tether_sync_last_result{result="ok"}'] == 1 and m['tether_sync_last_result{result="failed"}'] == 0

    # connectivity test addresses: none set, then one that does not answer (the IPv6 documentation prefix), then one that does
    got = _check(pc, pah, "connectivity_tests")
    assert got["status"] == "fail" and "no connectivity test address" in got["detail"]
    full = ok(pc.get("/api/config/settings/failover", headers=psh))
    ok(pc.put("/api/config/settings/failover", headers=psh, json={**full, "connectivity_test_ips": ["2001:db8::1"]}))
    got = _check(pc, pah, "connectivity_tests")
    assert got["status"] == "fail" and got["data"]["unreachable"] == ["2001:db8::1"]
    backup_host, backup_port = peer_addr(b).rsplit(":", 1)
    ok(pc.put("/api/config/settings/failover", headers=psh,
              json={**full, "connectivity_test_ips": [backup_host], "connectivity_test_port": int(backup_port)}))
    assert _check(pc, pah, "connectivity_tests")["status"] == "pass"

    # the primary frozen: the backup's audit fails failover_in_sync; thawed, it passes again
    p.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: _check(bc, bah, "failover_in_sync")["status"] == "fail", 30, what="the peer seen unreachable")
        assert "not reachable" in _check(bc, bah, "failover_in_sync")["detail"]
    finally:
        p.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: _check(bc, bah, "failover_in_sync")["status"] == "pass", 30, what="the peer back in sync")
