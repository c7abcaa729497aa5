"""FO-09: restoring a backup onto an appliance of an active pair is warned
against and needs an explicit confirmation (API and CLI); the supported path
(break failover, restore, a new pre-shared key on both, establish again,
sync) works end to end and the backup ends up with the restored site."""

from __future__ import annotations

import pytest

from tests.helpers import NEW_SITE_PASSWORD, ok, run_cli, site_token, wait_for

from .pairs import cli, peer_addr, set_psk, status

BACKUP_PW = "Backup-pass-1-long"
NEW_PSK = "a brand new pre-shared key after the restore, long"


def users(c, sh) -> set[str]:
    return {u["username"] for u in ok(c.get("/api/users", headers=sh))}


@pytest.mark.req("FO-09", "BK-08")
def test_restore_in_a_pair_needs_confirmation_and_the_runbook_works(pair, tmp_path):
    p, pc, psh, b, bc, bsh = pair
    ok(pc.post("/api/users", headers=psh, json={"username": "kept", "password": "Kept-pass-1234"}), 201)
    r = pc.post("/api/backup", headers=psh, json={"password": BACKUP_PW})
    assert r.status_code == 200, r.text
    nsb = tmp_path / "site.nsb"
    nsb.write_bytes(r.content)
    ok(pc.post("/api/users", headers=psh, json={"username": "after-backup", "password": "After-pass-1234"}), 201)
    cli(p, "establish", "--peer", peer_addr(b))
    wait_for(lambda: "after-backup" in users(bc, bsh), 20, what="the backup in sync")

    # refused without confirmation, through the API and the CLI, and nothing changes
    r = pc.post("/api/restore", headers=psh, files={"file": ("site.nsb", nsb.read_bytes())},
                data={"password": BACKUP_PW})
    assert r.status_code == 409 and "failover pair" in r.json()["message"] and peer_addr(b) in r.json()["message"]
    env = {**p.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_SITE_PASSWORD,
           "TETHER_BACKUP_PASSWORD": BACKUP_PW}
    cp = run_cli("restore", str(nsb), env=env)
    assert cp.returncode == 5 and "--confirm-failover" in cp.stderr
    assert "after-backup" in users(pc, psh)

    # the supported path (docs/operations.md)
    cli(p, "break")
    wait_for(lambda: status(bc, bsh)["role"] == "none", 10, what="the pair broken")
    cp = run_cli("restore", str(nsb), "--json", env=env)
    assert cp.returncode == 0, cp.stderr
    psh = {"Authorization": f"Bearer {site_token(pc)}"}
    assert "after-backup" not in users(pc, psh) and "kept" in users(pc, psh)
    set_psk(pc, psh, NEW_PSK)
    set_psk(bc, bsh, NEW_PSK)
    cli(p, "establish", "--peer", peer_addr(b))
    # the backup's history differs from the restored site's: it takes a full copy by itself
    wait_for(lambda: "after-backup" not in users(bc, bsh) and "kept" in users(bc, bsh), 30,
             what="the restored site on the backup")
    assert status(bc, bsh)["sync"]["full_syncs"] >= 1
