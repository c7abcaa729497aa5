"""Role changes of a real pair (FO-05, FO-06, FO-08, IC-04): a planned swap
with no write lost and the old primary following the new one; an automatic
failover when the primary goes silent and a connectivity test address
answers, with the old primary stepping down when it comes back and keeping
what the new primary never received in an orphan file that can be
re-applied; a forced promotion with the peer gone."""

from __future__ import annotations

import json
import os
import signal
import socket

import pytest

from tests.helpers import admin_token, ok, wait_for

from .e2e import restart
from .netcut import LinkCut, need_nft
from .pairs import cli, peer_addr, status


def users(c, sh) -> set[str]:
    return {u["username"] for u in ok(c.get("/api/users", headers=sh))}


def add_user(c, sh, name: str) -> None:
    ok(c.post("/api/users", headers=sh, json={"username": name, "password": f"{name.title()}-pass-1234"}), 201)


@pytest.fixture
def paired(pair):
    p, pc, psh, b, bc, bsh = pair
    cli(p, "establish", "--peer", peer_addr(b))
    wait_for(lambda: status(bc, bsh)["role"] == "backup", 10, what="the backup role")
    return pair


@pytest.mark.req("FO-06", "FO-08", "IC-04")
def test_planned_swap_loses_nothing_and_the_old_primary_follows(paired):
    p, pc, psh, b, bc, bsh = paired
    for i in range(20):
        add_user(pc, psh, f"before{i}")
    gen = status(pc, psh)["generation"]
    out = cli(b, "become-primary", "--data-sync-first", "--json")
    s = json.loads(out.stdout)
    assert s["role"] == "primary" and s["generation"] > gen
    assert {f"before{i}" for i in range(20)} <= users(bc, bsh)  # everything the old primary held
    wait_for(lambda: status(pc, psh)["role"] == "backup", 10, what="the old primary stepping down")
    assert pc.get("/health").status_code == 503 and bc.get("/health").status_code == 200
    add_user(bc, bsh, "after")
    wait_for(lambda: "after" in users(pc, psh), 15, what="the old primary following the new one")
    assert status(pc, psh)["orphan_files"] == 0

    # and back, through the command API (IC-04)
    r = ok(bc.post("/api/command/set_failover_role", headers=bsh,
                   json={"role": "backup", "data_sync_first": True}))
    assert r["role"] == "backup"
    wait_for(lambda: status(pc, psh)["role"] == "primary", 15, what="the first appliance primary again")
    health = ok(pc.post("/api/command/check_health", headers=psh))
    assert health["failover_role"] == "primary" and health["generation"] > s["generation"]


@pytest.mark.req("FO-05", "FO-08", "FO-06")
def test_automatic_failover_then_the_old_primary_keeps_its_orphans(paired, tmp_path):
    need_nft()
    p, pc, psh, b, bc, bsh = paired
    probe = socket.socket()  # a connectivity test address that answers
    probe.bind(("127.0.0.4", 0))
    probe.listen(16)
    try:
        fs = {**ok(bc.get("/api/config/settings/failover", headers=bsh)), "automatic_failover": True,
              "primary_timeout_seconds": 3, "connectivity_test_ips": ["127.0.0.4"],
              "connectivity_test_method": "tcp", "connectivity_test_port": probe.getsockname()[1]}
        fs.pop("dns_tsig_secret_set", None)
        ok(bc.put("/api/config/settings/failover", headers=bsh, json=fs))
        add_user(pc, psh, "synced")
        wait_for(lambda: "synced" in users(bc, bsh), 15, what="the first write on the backup")

        with LinkCut("127.0.0.3", "127.0.0.2") as link:
            # only the link between the two is cut: both still reach the test address, so without a
            # witness this is the documented case of two primaries until the link heals
            link.cut()
            add_user(pc, psh, "orphan")  # acknowledged by the primary; the backup never receives it
            wait_for(lambda: status(bc, bsh)["role"] == "primary", 15, what="the automatic failover")
            assert bc.get("/health").status_code == 200
            add_user(bc, bsh, "new-primary")
            bah = {"Authorization": f"Bearer {admin_token(bc)}"}
            audit = ok(bc.get("/appliance/api/audit", headers=bah))
            assert any(e["action"] == "failover.automatic" for e in audit)
            assert status(pc, psh)["role"] == "primary"  # it cannot know yet
            link.heal()
            # the old primary hears of the newer generation, steps down and keeps its orphan
            wait_for(lambda: status(pc, psh)["role"] == "backup", 15, what="the old primary stepping down")
        assert pc.get("/health").status_code == 503
        wait_for(lambda: "new-primary" in users(pc, psh), 30, what="the old primary following the new one")
        assert "orphan" not in users(pc, psh) and "orphan" not in users(bc, bsh)
        files = json.loads(cli(p, "orphans", "list", "--json").stdout)
        assert len(files) == 1 and "users" in files[0]["tables"]
        # the old side's audit: its step-down, then the orphan file, both with the generations
        new_gen = status(bc, bsh)["generation"]
        pah = {"Authorization": f"Bearer {admin_token(pc)}"}
        old_audit = ok(pc.get("/appliance/api/audit", headers=pah))
        [yielded] = [e for e in old_audit if e["action"] == "failover.yield"]
        old_gen = yielded["details"]["from_generation"]
        assert yielded["details"]["to_generation"] == new_gen > old_gen
        [kept] = [e for e in old_audit if e["action"] == "failover.orphans"]
        assert kept["target"] == files[0]["file"] and kept["details"]["from_generation"] == old_gen
        assert kept["details"]["to_generation"] == new_gen
        assert files[0]["file"].startswith(f"orphans-{old_gen}-to-{new_gen}-")
        doc = json.loads(cli(p, "orphans", "show", files[0]["file"], "--json").stdout)
        mine = [e for e in doc["entries"] if e["tbl"] == "users" and (e["row"] or {}).get("username") == "orphan"]
        assert mine, doc["entries"]
        f = tmp_path / "orphans.json"
        f.write_text(json.dumps(doc))
        cli(b, "orphans", "apply", str(f), "--seq", str(mine[0]["seq"]))
        assert "orphan" in users(bc, bsh)
        wait_for(lambda: "orphan" in users(pc, psh), 15, what="the re-applied change synced back")
    finally:
        probe.close()


@pytest.mark.req("FO-06")
def test_become_primary_alone_needs_force_when_the_primary_is_gone(paired):
    p, pc, psh, b, bc, bsh = paired
    p.stop(signal.SIGKILL)
    cp = cli(b, "become-primary", check=False)
    assert cp.returncode != 0 and "--force" in cp.stderr
    assert status(bc, bsh)["role"] == "backup"
    s = json.loads(cli(b, "become-primary", "--force", "--json").stdout)
    assert s["role"] == "primary" and bc.get("/health").status_code == 200
    add_user(bc, bsh, "alone")


@pytest.mark.req("FO-05", "FO-06", "ROB-01")
def test_a_planned_swap_cut_short_by_a_kill_is_finished_by_the_appliance_with_the_longer_log(paired):
    """The backup is killed just after the primary stepped down for it (crash point 2 of become-primary): both
    are backups. With automatic failover on, once they have heard each other as backups for T, the one with the
    longer log (on a tie, the lower appliance id) takes the role by itself, with a newer generation than either;
    never two primaries meanwhile, and nothing lost."""
    p, pc, psh, b, bc, bsh = paired
    probe = socket.socket()
    probe.bind(("127.0.0.4", 0))
    probe.listen(16)
    need_nft()
    dead = LinkCut("127.0.0.1", "127.0.0.9", table=f"tether_dead_{os.getpid()}", port=probe.getsockname()[1])
    dead.cut()  # (a refused connection counts as an answer: the address must drop what is sent to it)
    try:
        # the first appliance's test address never answers: while the other is down it cannot take over by the
        # silent-primary rule, so the role is settled by the two-backups rule once both are up
        for c, sh, ip in ((pc, psh, "127.0.0.9"), (bc, bsh, "127.0.0.4")):
            fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "automatic_failover": True,
                  "primary_timeout_seconds": 3, "connectivity_test_ips": [ip],
                  "connectivity_test_method": "tcp", "connectivity_test_port": probe.getsockname()[1]}
            fs.pop("dns_tsig_secret_set", None)
            ok(c.put("/api/config/settings/failover", headers=sh, json=fs))
        for i in range(5):
            add_user(pc, psh, f"kept{i}")
        gen = status(pc, psh)["generation"]
        bc.close()
        bc = restart(b, {"TETHER_CRASH_ONLY": "become primary", "TETHER_CRASH_AT": "2"})
        wait_for(lambda: status(bc, bsh)["role"] == "backup", 20, what="the backup back")
        cp = cli(b, "become-primary", check=False)  # the backup dies once the primary has stepped down
        assert cp.returncode != 0
        wait_for(lambda: b.proc.poll() is not None, 20, what="the backup killed at its crash point")
        assert status(pc, psh)["role"] == "backup" and pc.get("/health").status_code == 503
        bc.close()
        bc = restart(b)
        seen: list[tuple[int, int]] = []

        def one_primary() -> bool:
            codes = (pc.get("/health").status_code, bc.get("/health").status_code)
            seen.append(codes)
            return sorted(codes) == [200, 503]

        wait_for(one_primary, 30, every=0.1, what=lambda: f"one primary again; /health (old, killed): {seen[-5:]}")
        assert (200, 200) not in seen
        (nc, nsh), (oc, osh) = ((pc, psh), (bc, bsh)) if seen[-1][0] == 200 else ((bc, bsh), (pc, psh))
        new, other = status(nc, nsh), status(oc, osh)
        assert new["role"] == "primary" and other["role"] == "backup" and new["generation"] > gen + 1
        assert {f"kept{i}" for i in range(5)} <= users(nc, nsh)
        bah = {"Authorization": f"Bearer {admin_token(nc)}"}
        [took] = [e for e in ok(nc.get("/appliance/api/audit", headers=bah)) if e["action"] == "failover.automatic"]
        assert "both appliances were backups" in took["details"]["reason"]
        add_user(nc, nsh, "after")
        wait_for(lambda: "after" in users(oc, osh), 20, what="the other one following it")
    finally:
        dead.heal()
        probe.close()
        bc.close()
