"""ROB-04 (sync), FO-02, FO-03: the backup's data directory on a small disk
(a size-limited tmpfs; its file store a bind mount of the same disk, so it
can be made read-only on its own while the databases stay open) that fills
up or turns read-only during sync. Each time: a clear error in
``tether failover status --json``, nothing half-applied (the blob is not
visible, the applied position and the site's content hash unchanged), the
rest of sync unharmed where possible, and sync resumes by itself once the
disk has room or is writable again.

Linux refuses to remount a file system read-only while a process holds a
file open for writing on it (EBUSY), so the running backup's databases
cannot be made read-only this way; the file store, which nothing holds open
between transfers, can."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.helpers import (ApplianceProc, first_admin_login, first_site_login, ok, run_cli, site_token,
                           wait_for)

from .e2e import (PSK, Pair, converged, establish, fill, free_bytes, live_state, mount, mount_tmpfs, set_psk, status,
                  umount, visible_blobs)

MB = 1 << 20


def _users(c, h) -> set[str]:
    return {u["username"] for u in ok(c.get("/api/users", headers=h))}


def _stored(site_dir, sha: str) -> bytes:
    return next((site_dir / "files").rglob(sha)).read_bytes()


@pytest.mark.req("ROB-04", "FO-02", "FO-03")
@pytest.mark.timeout(600)
def test_backup_disk_full_or_read_only_during_sync(make_appliance, vendor, tmp_path):
    disk = tmp_path / "backup-disk"
    mount_tmpfs(disk, "48m")
    b = files = pair = None
    try:
        run_cli("init", "--data", str(disk), "--trust-vendor-key", str(vendor["pub"]), check=True)
        run_cli("site-package", "install", str(vendor["package"]()), "--data", str(disk), check=True)
        site_dir = (disk / "site").resolve()
        files = site_dir / "files"
        files.mkdir(exist_ok=True)
        mount("--bind", str(files), str(files))
        b = ApplianceProc(disk, ["127.0.0.2:0"]).start()
        p = make_appliance(site=True)
        pc, bc = p.client(), b.client()
        first_admin_login(pc)
        first_admin_login(bc)
        psh, bsh = first_site_login(pc), first_site_login(bc)
        set_psk(pc, psh, PSK)
        set_psk(bc, bsh, PSK)
        pair = Pair(p, pc, psh, b, bc, bsh)
        establish(pair)
        wait_for(lambda: converged(pair), 60, what="the first sync")
        # the CLI with a token taken now: on a full disk no new session can be stored
        env = {**b.cli_env(), "TETHER_TOKEN": site_token(bc)}

        def cli_sync() -> dict:
            return json.loads(run_cli("failover", "status", "--json", env=env, check=True).stdout)["sync"]

        def sync() -> dict:
            return status(bc, bsh)["sync"]

        # --- 1. a file bigger than the backup's free space -----------------------------------------------------
        too_big = os.urandom(free_bytes(disk) + 4 * MB)
        sha1 = hashlib.sha256(too_big).hexdigest()
        ok(pc.put("/api/files/too-big.bin", headers=psh, content=too_big))
        wait_for(lambda: "free space" in (sync()["blob_error"] or ""), 30, what="the blob refused for want of space")
        s = cli_sync()
        print(f"too big: {s['blob_error']}")
        assert sha1 in s["blob_error"] and str(len(too_big)) in s["blob_error"], s["blob_error"]
        assert sha1 not in visible_blobs(site_dir) and s["blobs_pending"] == 1
        part1 = files / ".tmp" / f"sync-{sha1}.part"
        assert not part1.exists() or part1.stat().st_size == 0, "the transfer filled the disk"
        # the rest of sync goes on
        ok(pc.post("/api/users", headers=psh, json={"username": "later", "password": "Later-pass-1234"}), 201)
        wait_for(lambda: "later" in _users(bc, bsh), 20, what="a change after the big file on the backup")
        # room again (the disk grows): the blob arrives by itself
        mount("-o", "remount,size=200m", str(disk))
        wait_for(lambda: converged(pair), 60, what="the big blob once there is room")
        assert hashlib.sha256(_stored(site_dir, sha1)).hexdigest() == sha1 and sync()["blob_error"] is None

        # --- 2. the disk fills up during a transfer, and while a batch is applied ------------------------------
        settings = ok(bc.get("/api/config/settings/failover", headers=bsh))
        ok(bc.put("/api/config/settings/failover", headers=bsh, json={**settings, "sync_bandwidth_limit_kbps": 40_000}))
        mid = os.urandom(30 * MB)
        sha2 = hashlib.sha256(mid).hexdigest()
        part2 = files / ".tmp" / f"sync-{sha2}.part"
        ok(pc.put("/api/files/mid.bin", headers=psh, content=mid))
        wait_for(lambda: part2.exists() and part2.stat().st_size > 5 * MB, 30, every=0.02, what="the transfer")
        filler = disk / "filler"
        fill(filler)
        wait_for(lambda: "disk is full" in (sync()["blob_error"] or ""), 20, every=0.05, what="the transfer stopped")
        s = sync()
        print(f"full mid-blob: {s['blob_error']}")
        had = part2.stat().st_size
        assert sha2 not in visible_blobs(site_dir) and had < 30 * MB
        applied = s["applied_seq"]
        before = live_state(site_dir, tmp_path / "state")
        ok(pc.post("/api/users", headers=psh, json={"username": "while-full", "password": "While-full-1234"}), 201)
        wait_for(lambda: "disk is full" in (sync()["last_error"] or ""), 20, what="the batch refused on a full disk")
        s = cli_sync()
        print(f"full batch: {s['last_error']}")
        assert s["last_sync_result"] == "failed" and s["applied_seq"] == applied and s["lag_entries"] > 0, s
        assert "nothing of it was applied" in s["last_error"] and "[SQL" not in s["last_error"]
        assert live_state(site_dir, tmp_path / "state").full == before.full, "half-applied on a full disk"
        assert "while-full" not in _users(bc, bsh) and sha2 not in visible_blobs(site_dir)
        resumed = s["blob_bytes_resumed"]
        filler.unlink()  # room again: both resume by themselves, the blob from its part
        wait_for(lambda: converged(pair), 60, what="sync once the disk has room")
        s = cli_sync()
        assert s["last_sync_result"] == "ok" and s["last_error"] is None and s["blob_error"] is None, s
        assert s["blob_bytes_resumed"] - resumed >= had, (s["blob_bytes_resumed"], resumed, had)
        assert hashlib.sha256(_stored(site_dir, sha2)).hexdigest() == sha2 and "while-full" in _users(bc, bsh)
        ok(bc.put("/api/config/settings/failover", headers=bsh, json=settings))

        # --- 3. the file store read-only ---------------------------------------------------------------------
        mount("-o", "remount,bind,ro", str(files))
        ro = os.urandom(2 * MB)
        sha3 = hashlib.sha256(ro).hexdigest()
        ok(pc.put("/api/files/ro.bin", headers=psh, content=ro))
        wait_for(lambda: "read-only" in (sync()["blob_error"] or ""), 20, what="the blob refused on a read-only store")
        s = cli_sync()
        print(f"read-only: {s['blob_error']}")
        assert sha3 not in visible_blobs(site_dir) and s["blobs_pending"] == 1
        mount("-o", "remount,bind,rw", str(files))
        wait_for(lambda: converged(pair), 30, what="the blob once the store is writable")
        assert hashlib.sha256(_stored(site_dir, sha3)).hexdigest() == sha3 and sync()["blob_error"] is None
        backup, primary = live_state(site_dir, tmp_path / "b"), live_state(pair.primary_site, tmp_path / "p")
        assert backup.data == primary.data
    finally:
        if pair is not None:
            pair.close()
        if b is not None:
            b.stop()
        if files is not None:
            umount(files)
        umount(disk)
