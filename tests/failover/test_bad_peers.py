"""SEC-04, FO-01, FO-02: peers that are not the primary the backup paired
with, or that speak the protocol badly, with real appliance processes.

- A fake primary that holds the pre-shared key and presents the primary's
  own certificate (so the backup's pin and signatures hold) but sends
  malformed change-stream frames or a broken full copy: the backup's status
  names the problem, it applies nothing (its site hashes the same, its
  position and generation stay), the pair is unharmed, and it resumes with
  the real primary.
- After pairing, the primary presents another certificate key (a new
  certificate assigned through /appliance): the backup refuses it, naming
  both pins, and applies nothing until the pinned key is back.
- A peer hosting another site: establishing is refused with both sites
  named; neither appliance is paired.
(A wrong key and a replay: test_pair_e2e.py.)"""

from __future__ import annotations

import json
import socket
import ssl
import time

import httpx
import pytest

from tether.certs.generate import generate_self_signed
from tether.certs.pkcs12 import build_p12
from tether.clients.trust import pin_of_der, pin_of_pem
from tether.failover import peer_auth
from tests.helpers import (NEW_SITE_PASSWORD, ApplianceProc, admin_token, first_admin_login, first_site_login, ok,
                           run_cli, wait_for)

from .e2e import PSK, FakePrimary, Proxy, converged, live_state, make_pair, peer_addr, set_psk, status

P12_PASS = "p12-pass-1"


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _unverified(a) -> httpx.Client:
    """The test's own client to the primary, whatever certificate it presents (the backup's pin is under test)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return httpx.Client(base_url=a.url, verify=ctx, timeout=30)


def _presented_pin(address: str) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(_host_port(address), timeout=10) as s, ctx.wrap_socket(s) as t:
        return pin_of_der(t.getpeercert(binary_form=True))


def _cert_id(c: httpx.Client, ah: dict, name: str) -> int:
    return next(x["id"] for x in ok(c.get("/appliance/api/certificates", headers=ah))["certificates"]
                if x["name"] == name)


def _line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def _batch(entries, *, generation=None, head=None) -> bytes:
    last = entries[-1]["seq"] if entries and isinstance(entries[-1], dict) and "seq" in entries[-1] else 0
    return _line({"type": "batch", "generation": generation, "through": last, "head": head or last,
                  "entries": entries})


def _entry(seq: int, **kw) -> dict:
    return {"seq": seq, "at": time.time(), "tbl": "canned_messages", "op": "upsert", "gen": 99, "fence": None,
            "key": {"name": "evil"}, "row": {"name": "evil", "category": "x", "team": None, "body": "evil"}, **kw}


@pytest.mark.req("SEC-04", "FO-01", "FO-02", "FO-08")
@pytest.mark.timeout(600)
def test_malformed_frames_and_an_impostor_certificate_apply_nothing(make_appliance, tmp_path):
    pair = make_pair(make_appliance)
    p, b, bc, bsh, psh = pair.p, pair.b, pair.bc, pair.bsh, pair.psh
    pair.pc.close()
    pair.pc = pc = _unverified(p)
    ah = {"Authorization": f"Bearer {admin_token(pc)}"}
    # the primary presents a certificate whose key the test holds too, so that a fake can present it
    own = generate_self_signed("primary.tether.test", ["127.0.0.1"])
    ok(pc.post("/appliance/api/certificates/import", headers=ah, data={"password": P12_PASS, "name": "primary"},
               files={"file": ("primary.p12", build_p12(own.cert_pem, own.chain_pem, own.key_der, P12_PASS,
                                                        kdf_rounds=2048))}), 201)
    own_id = _cert_id(pc, ah, "primary")
    ok(pc.put("/appliance/api/certificate-assignments/127.0.0.1", headers=ah, json={"id": own_id}))
    (tmp_path / "primary.pem").write_text(own.cert_pem)
    proxy = Proxy(_host_port(peer_addr(p)))
    fake = None
    try:
        env = {"TETHER_URL": p.url, "TETHER_PIN_CERT": str(tmp_path / "primary.pem"), "TETHER_USER": "admin",
               "TETHER_PASSWORD": NEW_SITE_PASSWORD}
        run_cli("failover", "establish", "--peer", peer_addr(b), "--self-address", proxy.address, env=env,
                check=True)
        wait_for(lambda: status(bc, bsh)["role"] == "backup", 15, what="the backup role")
        ok(pc.post("/api/users", headers=psh, json={"username": "before", "password": "Before-pass-123"}), 201)
        wait_for(lambda: converged(pair), 60, what="the first sync")
        st = status(bc, bsh)
        pinned, gen, applied = st["peer"]["peer_pin"], st["generation"], st["sync"]["applied_seq"]
        assert gen >= 1, st  # the pair's entries carry its generation, so an older one can be crafted
        assert pinned == pin_of_pem(own.cert_pem)
        pair_file = (b.data / "failover" / "pair.json").read_text()
        before = live_state(pair.backup_site, tmp_path / "state")

        # --- a fake primary: right key, right certificate, wrong frames ---------------------------------------
        primary_id = ok(pc.get("/api/failover/status", headers=psh))["appliance_id"]
        fake = FakePrimary(peer_auth.derive_key(PSK), primary_id, own, tmp_path / "fake-run")
        proxy.upstream = fake.address
        proxy.cut()
        proxy.heal()
        secret = "hunter2-in-a-row-that-must-not-be-echoed"
        header = _line({"type": "snapshot", "head": applied + 5, "generation": 99, "site_name": "demo",
                        "product_version": "x", "schema_revision": "x"})
        cases = [
            ("a line that is not JSON", [b"this is not json\n"], [], "not JSON"),
            ("JSON that is not a message", [b"[1, 2, 3]\n"], [], "not a message"),
            ("an unknown message", [_line({"type": "surprise"})], [], "unknown stream message 'surprise'"),
            ("a heartbeat without a head", [_line({"type": "heartbeat", "head": "lots"})], [], "heartbeat"),
            ("a batch without entries", [_line({"type": "batch", "generation": 99})], [], "entries"),
            ("an entry of another shape", [_batch([{"seq": applied + 1}], generation=99)], [], "entry"),
            ("an unknown table", [_batch([_entry(applied + 1, tbl="no_such_table")], generation=99)], [],
             "unknown table"),
            ("an entry already applied", [_batch([_entry(applied)], generation=99)], [], "already applied"),
            ("an entry of an older generation than the backup's log (a fenced-off primary)",
             [_batch([_entry(applied + 1, gen=gen - 1)], generation=99)], [], "fenced-off primary"),
            ("an entry stamped above its batch's generation",
             [_batch([_entry(applied + 1, gen=100)], generation=99)], [], "generation above the batch"),
            ("an entry without its stamp", [_batch([{**_entry(applied + 1), "gen": None}], generation=99)], [],
             "no valid generation"),
            ("a row the database refuses", [_batch([_entry(applied + 1, tbl="users", key={"username": "evil"},
                                                           row={"username": "evil", "password_hash": secret})],
                                                   generation=99)], [], "users"),
            ("a full copy cut short", [_line({"type": "resync", "reason": "test"})],
             [header, _line({"type": "rows", "table": "users", "rows": []})], "ended early"),
            ("a full copy of an unknown table", [_line({"type": "resync", "reason": "test"})],
             [header, _line({"type": "rows", "table": "no_such_table", "rows": []}), _line({"type": "end"})],
             "unknown table"),
        ]
        for what, changes, snapshot, expect in cases:
            fake.changes, fake.snapshot = changes, snapshot
            seen = len(fake.seen)
            try:
                wait_for(lambda: expect in (status(bc, bsh)["sync"]["last_error"] or "")
                         and ("GET", "/peer/v1/changes", 200) in fake.seen[seen:], 20,
                         what=f"the backup's view of {what}")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: status {status(bc, bsh)['sync']}") from None
            s = status(bc, bsh)
            error = s["sync"]["last_error"]
            print(f"{what}: {error}")
            assert s["role"] == "backup" and s["generation"] == gen, (what, s)
            assert s["sync"]["applied_seq"] == applied and s["sync"]["last_sync_result"] == "failed", (what, s)
            assert secret not in error and "[SQL" not in error and "Traceback" not in error, (what, error)
        assert ("POST", "/peer/v1/ack", 200) not in fake.seen
        after = live_state(pair.backup_site, tmp_path / "state")
        assert after.full == before.full, "the backup applied something of a malformed stream"
        assert (b.data / "failover" / "pair.json").read_text() == pair_file

        # the real primary again: the pair is unharmed and resumes
        proxy.upstream = _host_port(peer_addr(p))
        proxy.cut()
        proxy.heal()
        ok(pc.post("/api/users", headers=psh, json={"username": "after-fake", "password": "After-fake-123"}), 201)
        wait_for(lambda: converged(pair), 30, what="sync with the real primary again")
        s = status(bc, bsh)
        assert s["sync"]["last_sync_result"] == "ok" and s["generation"] == gen
        assert live_state(pair.backup_site, tmp_path / "state").data == live_state(pair.primary_site,
                                                                                   tmp_path / "state").data

        # --- an impostor: after pairing, the primary's address presents another certificate key --------------
        ok(pc.post("/appliance/api/certificates/self-signed", headers=ah,
                   json={"name": "impostor", "fqdn": "impostor.tether.test", "alt_names": ["127.0.0.1"]}), 201)
        ok(pc.put("/appliance/api/certificate-assignments/127.0.0.1", headers=ah,
                  json={"id": _cert_id(pc, ah, "impostor")}))
        presented = _presented_pin(peer_addr(p))
        assert presented != pinned
        applied = status(bc, bsh)["sync"]["applied_seq"]
        proxy.cut()  # connections made before keep the certificate they were given: make the backup reconnect
        proxy.heal()
        s = wait_for(lambda: (lambda s: s if presented in (s["sync"]["last_error"] or "") else None)(
            status(bc, bsh)), 20, what="the impostor refused")
        assert pinned in s["sync"]["last_error"], s["sync"]["last_error"]
        print(f"impostor: {s['sync']['last_error']}")
        ok(pc.post("/api/users", headers=psh, json={"username": "unseen", "password": "Unseen-pass-123"}), 201)
        time.sleep(3)
        s = status(bc, bsh)
        assert s["sync"]["applied_seq"] == applied and s["sync"]["last_sync_result"] == "failed"
        assert "unseen" not in {u["username"] for u in ok(bc.get("/api/users", headers=bsh))}
        # the pinned key back: the backup resumes by itself
        ok(pc.put("/appliance/api/certificate-assignments/127.0.0.1", headers=ah, json={"id": own_id}))
        wait_for(lambda: converged(pair), 30, what="sync once the pinned key is back")
        assert "unseen" in {u["username"] for u in ok(bc.get("/api/users", headers=bsh))}
    finally:
        proxy.close()
        if fake is not None:
            fake.close()
        pair.close()


@pytest.mark.req("FO-01")
def test_a_peer_hosting_another_site_is_refused_naming_both_sites(make_appliance, vendor):
    p = make_appliance(site=True, listen=["127.0.0.1:0"])
    data = p.data.parent / "other-site"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"](name="elsewhere")), "--data", str(data), check=True)
    b = ApplianceProc(data, ["127.0.0.2:0"]).start()
    try:
        with p.client() as pc, b.client() as bc:
            first_admin_login(pc)
            psh = first_site_login(pc)
            first_admin_login(bc)
            bsh = first_site_login(bc)
            set_psk(pc, psh, PSK)
            set_psk(bc, bsh, PSK)
            env = {**p.cli_env(), "TETHER_USER": "admin", "TETHER_PASSWORD": NEW_SITE_PASSWORD}
            cp = run_cli("failover", "establish", "--peer", peer_addr(b), env=env)
            assert cp.returncode != 0
            assert "'demo'" in cp.stderr and "'elsewhere'" in cp.stderr, cp.stderr
            for c, h in ((pc, psh), (bc, bsh)):
                s = status(c, h)
                assert s["role"] == "none" and not s["paired"], s
            assert not (b.data / "failover" / "pair.json").exists()
            assert not (p.data / "failover" / "pair.json").exists()
    finally:
        b.stop()
