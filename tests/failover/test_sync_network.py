"""FO-02, FO-03: the network between the backup and the primary cut in the
middle of a blob transfer and in the middle of the change stream. The pair
is established through a TCP proxy (the primary's ``--self-address`` is the
proxy's), which the test resets, black-holes and heals. After each heal the
backup catches up by itself: its change log holds exactly the primary's
sequence numbers (no gap, no duplicate), its data hashes like the
primary's, and the 50 MB blob is whole, its transfer resumed from the part
it had (status ``blob_bytes_resumed``, and the bytes that crossed the proxy
after the heal)."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from tests.helpers import ok, wait_for

from .e2e import Proxy, converged, establish, live_state, make_pair, peer_addr, status, visible_blobs

MB = 1 << 20


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


@pytest.mark.req("FO-02", "FO-03")
@pytest.mark.timeout(600)
def test_network_cut_mid_blob_and_mid_stream_resumes_without_gap_or_duplicate(make_appliance, tmp_path):
    pair = make_pair(make_appliance)
    proxy = Proxy(_host_port(peer_addr(pair.p)))
    pc, psh, bc, bsh = pair.pc, pair.psh, pair.bc, pair.bsh
    try:
        establish(pair, self_address=proxy.address)
        assert status(bc, bsh)["peer"]["peer_url"] == f"https://{proxy.address}"
        wait_for(lambda: converged(pair), 60, what="the first sync through the proxy")

        # --- a cut in the middle of a 50 MB blob ---------------------------------------------------------
        proxy.rate = 12 * MB  # bytes/s, so that the cut lands mid-transfer
        big = os.urandom(50 * MB)
        sha = hashlib.sha256(big).hexdigest()
        ok(pc.put("/api/files/big.bin", headers=psh, content=big))
        blob_conn = wait_for(lambda: next((c for c in proxy.connections if c.received > 15 * MB), None), 60,
                             every=0.02, what="15 MB of the blob through the proxy")
        proxy.cut()
        part = pair.backup_site / "files" / ".tmp" / f"sync-{sha}.part"
        wait_for(lambda: status(bc, bsh)["sync"]["blob_error"], 20, what="the broken transfer in the backup's status")
        had = part.stat().st_size
        assert 10 * MB < had < 50 * MB and sha not in visible_blobs(pair.backup_site)
        # retried every second, refused by the cut network: nothing more arrives, the status says what is left
        s = wait_for(lambda: (lambda s: s if s["blob_bytes_pending"] == 50 * MB - had else None)(
            status(bc, bsh)["sync"]), 10, what="the bytes still pending after the cut")
        assert s["blobs_pending"] == 1 and "peer" in s["blob_error"] and not s["connected"], s
        assert part.stat().st_size == had and sha not in visible_blobs(pair.backup_site)
        resumed_before = s.get("blob_bytes_resumed", 0)
        healed_at = len(proxy.connections)
        proxy.rate = None
        proxy.heal()
        wait_for(lambda: converged(pair), 90, what="the blob after the heal")
        stored = next(p for p in (pair.backup_site / "files").rglob(sha))
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha and not part.exists()
        s = status(bc, bsh)["sync"]
        assert s["blob_error"] is None and s["blob_bytes_resumed"] - resumed_before == had, s
        after_heal = sum(c.received for c in proxy.connections[healed_at:])
        assert after_heal < 50 * MB - had + 2 * MB, (after_heal, had)  # the rest only, not the whole blob again
        assert blob_conn.closed

        # --- a black hole in the middle of a burst of writes ------------------------------------------------
        written = []

        def burst():
            for i in range(120):
                ok(pc.post("/api/config/canned-messages", headers=psh, json={"name": f"burst-{i}", "body": "b" * 300}),
                   201)
                written.append(i)

        writer = threading.Thread(target=burst)
        writer.start()
        try:
            wait_for(lambda: len(written) >= 30, 60, every=0.02, what="the burst under way")
            proxy.stall()  # packets dropped: the stream goes silent, the backup must notice (10 s without a line)
            stalled_at = status(bc, bsh)["sync"]["applied_seq"]
            wait_for(lambda: not status(bc, bsh)["sync"]["connected"], 30, what="the silent stream given up")
            s = status(bc, bsh)["sync"]
            assert s["last_sync_result"] == "failed" and "peer" in s["last_error"], s
            assert s["applied_seq"] >= stalled_at
            proxy.heal()
        finally:
            writer.join(120)
        wait_for(lambda: converged(pair), 60, what="the burst on the backup after the heal")
        backup = live_state(pair.backup_site, tmp_path / "b")
        primary = live_state(pair.primary_site, tmp_path / "p")
        assert backup.seqs == tuple(s for s in primary.seqs if s >= backup.seqs[0]), "a gap or a duplicate"
        assert backup.data == primary.data
        assert status(bc, bsh)["sync"]["last_sync_result"] == "ok"
    finally:
        proxy.close()
        pair.close()
