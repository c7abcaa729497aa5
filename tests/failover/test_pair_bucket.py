"""FO-03, OPS-06: a pair across storage backends: the primary keeps its file
store and recordings in an S3-compatible bucket (moto in server mode, IAM
authentication on), the backup on its local disk. The blobs reach the
backup's disk; after a planned swap the old primary, now the backup, takes
what the new primary stores into its bucket; downloads on either side give
the same bytes and hashes whichever storage holds them."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.helpers import first_admin_login, first_site_login, ok, wait_for
from tests.s3server import moto_server  # noqa: F401  (the module's S3 server)
from tests.storage.test_object_storage import _key, doc

from .pairs import PSK, cli, in_sync, peer_addr, set_psk, status

PREFIX = "pair-p/"


def _files(c, sh) -> dict[str, str]:
    return {f["name"]: f["sha256"] for f in ok(c.get("/api/files", headers=sh))}


def _on_disk(data, sha: str):
    return data / "site" / "files" / sha[:2] / sha[2:4] / sha


@pytest.mark.req("FO-03", "OPS-06")
def test_a_primary_on_a_bucket_and_a_backup_on_disk_sync_and_swap(make_appliance, moto_server):  # noqa: F811
    p = make_appliance(site=True, listen=["127.0.0.3:0"])
    b = make_appliance(site=True, listen=["127.0.0.2:0"])
    pc, bc = p.client(), b.client()
    try:
        pah, _ = first_admin_login(pc), first_admin_login(bc)
        psh, bsh = first_site_login(pc), first_site_login(bc)
        ok(pc.put("/appliance/api/storage", headers=pah,
                  json=doc(moto_server, f"http://127.0.0.1:{moto_server.port}", prefix=PREFIX)))
        set_psk(pc, psh, PSK)
        set_psk(bc, bsh, PSK)
        big, small = os.urandom(5 << 20), b"kept in the bucket\n" * 100
        for name, body in (("big.bin", big), ("small.txt", small)):
            ok(pc.put(f"/api/files/{name}", headers=psh, content=body))
        shas = {n: hashlib.sha256(x).hexdigest() for n, x in (("big.bin", big), ("small.txt", small))}
        assert {_key(s, prefix=PREFIX) for s in shas.values()} <= set(moto_server.objects(PREFIX))

        cli(p, "establish", "--peer", peer_addr(b))
        wait_for(lambda: _files(bc, bsh) == shas and all(_on_disk(b.data, x).exists() for x in shas.values())
                 and status(bc, bsh)["sync"]["blobs_pending"] == 0, 60,
                 what=lambda: f"the bucket's blobs on the backup's disk: {status(bc, bsh)['sync']}")
        for name, body in (("big.bin", big), ("small.txt", small)):
            assert _on_disk(b.data, shas[name]).read_bytes() == body  # on the backup's own disk, verified
        # streamed afterwards, too
        later = os.urandom(300_000)
        ok(pc.put("/api/files/later.bin", headers=psh, content=later))
        shas["later.bin"] = hashlib.sha256(later).hexdigest()
        wait_for(lambda: in_sync(pc, psh, bc, bsh) and _on_disk(b.data, shas["later.bin"]).exists()
                 and status(bc, bsh)["sync"]["blobs_pending"] == 0, 30, what="a streamed blob on the backup")

        # the disk appliance takes over; the bucket appliance follows it and stores into its bucket
        s = json.loads(cli(b, "become-primary", "--data-sync-first", "--json").stdout)
        assert s["role"] == "primary"
        got = bc.get("/api/files/big.bin", headers=bsh)
        assert got.status_code == 200 and got.content == big
        assert got.headers["x-content-sha256"] == shas["big.bin"]
        after = os.urandom(2 << 20)
        ok(bc.put("/api/files/after.bin", headers=bsh, content=after))
        sha_after = hashlib.sha256(after).hexdigest()
        wait_for(lambda: _key(sha_after, prefix=PREFIX) in moto_server.objects(PREFIX)
                 and status(pc, psh)["sync"]["blobs_pending"] == 0, 60,
                 what="the new primary's blob in the old primary's bucket")
        assert moto_server.objects(PREFIX)[_key(sha_after, prefix=PREFIX)] == len(after)
        assert not _on_disk(p.data, sha_after).exists()  # the bucket appliance keeps nothing on its disk
        assert not [k for k in moto_server.objects(PREFIX) if "/.tmp/" in k or k.startswith(PREFIX + ".tmp")]
        # back again: the bucket appliance serves what it received
        s = json.loads(cli(p, "become-primary", "--data-sync-first", "--json").stdout)
        assert s["role"] == "primary"
        got = pc.get("/api/files/after.bin", headers=psh)
        assert got.status_code == 200 and got.content == after
    finally:
        pc.close()
        bc.close()
