"""The etcd witness of a real pair (FO-11, FO-05): a real three-member
etcd cluster (etcd.py), two real appliances with automatic failover on and a
connectivity test address both reach, and nftables cuts narrowed to the
pair's ports or to the etcd members' client ports:

- a cut of only the link between the two leaves one primary: the backup,
  though the primary is silent and the test address answers, does not take
  over (the primary holds the witness's key), a forced become-primary is
  refused naming the holder, and the primary keeps taking writes;
- the primary killed: the backup takes the key once the old lease expires
  and serves (the takeover time is printed);
- the primary cut from the witness and from its backup: it stops serving
  (health 503, writes refused naming the witness) before the backup serves.

Health is sampled every 100 ms on both; never both 200 at one moment.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
import uuid

import httpx
import pytest

from tests.helpers import NEW_SITE_PASSWORD, ok, wait_for

from .etcd import etcd_cluster  # noqa: F401 - the fixture
from .netcut import LinkCut, need_nft
from .pairs import cli, peer_addr, status

TIMEOUT = 3  # the primary timeout T
TTL = 4  # the witness's lease TTL
MARGIN = 1.5


def port_of(a) -> int:
    return int(peer_addr(a).rsplit(":", 1)[1])


def add_user(c, sh, name: str):
    return c.post("/api/users", headers=sh, json={"username": name, "password": f"{name.title()}-pass-1234"})


def stamps(c, sh, name: str) -> set[tuple[int, int | None]]:
    """The (generation, fencing token) on the change-log entries that wrote user ``name`` (FO-08, FO-11)."""
    log = ok(c.get("/api/changes", headers=sh, params={"after": 0, "limit": 10000}))["entries"]
    return {(e["gen"], e["fence"]) for e in log if e["tbl"] == "users" and (e["row"] or {}).get("username") == name}


def users(c, sh) -> set[str]:
    return {u["username"] for u in ok(c.get("/api/users", headers=sh))}


class Sampler:
    """Both appliances' /health every 100 ms, in a thread, with fresh clients of its own."""

    def __init__(self, p, b):
        self.clients = (p.client(), b.client())
        for c in self.clients:
            c.timeout = httpx.Timeout(1.0)
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, primary's code, backup's code)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _code(self, c) -> int:
        try:
            return c.get("/health").status_code
        except Exception:  # noqa: BLE001 - a dead or cut appliance answers nothing: not serving
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            self.samples.append((t, self._code(self.clients[0]), self._code(self.clients[1])))
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - t)))

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self.clients:
            c.close()

    def both(self) -> list[tuple[float, int, int]]:
        return [s for s in self.samples if s[1] == 200 and s[2] == 200]

    def first(self, which: int, code: int, after: float = 0.0) -> float | None:
        return next((s[0] for s in self.samples if s[0] >= after and s[which] == code), None)


def failover_page(a) -> str:
    """/login > Management > Failover as a browser gets it (cookie session)."""
    with a.client(follow_redirects=False) as c:
        form = c.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        r = c.post("/login", data={"csrf_token": csrf, "username": "admin", "password": NEW_SITE_PASSWORD})
        assert r.status_code == 303, r.text
        page = c.get("/login/failover")
        assert page.status_code == 200, page.text
        return page.text


def _accept_all(sock: socket.socket) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return  # closed at teardown
        conn.close()


@pytest.fixture
def witnessed(pair, etcd_cluster):
    """The pair established, both with automatic failover (T = 3 s, a test address both reach) and the
    witness on (all three members, a key of this test's own)."""
    need_nft()
    p, pc, psh, b, bc, bsh = pair
    probe = socket.socket()  # the connectivity test address: accepts (and closes) every connection, so its
    probe.bind(("127.0.0.4", 0))  # backlog never fills during a long cut
    probe.listen(64)
    threading.Thread(target=_accept_all, args=(probe,), daemon=True).start()
    try:
        cli(p, "establish", "--peer", peer_addr(b))
        wait_for(lambda: status(bc, bsh)["role"] == "backup", 15, what="the backup role")
        key = f"/tether/test-{uuid.uuid4().hex[:8]}/primary"
        for c, sh in ((pc, psh), (bc, bsh)):
            fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "automatic_failover": True,
                  "primary_timeout_seconds": TIMEOUT, "connectivity_test_ips": ["127.0.0.4"],
                  "connectivity_test_method": "tcp", "connectivity_test_port": probe.getsockname()[1],
                  "witness": {"enabled": True, "endpoints": etcd_cluster.endpoints, "lease_ttl_seconds": TTL,
                              "margin_seconds": MARGIN, "key": key}}
            fs.pop("dns_tsig_secret_set", None)
            ok(c.put("/api/config/settings/failover", headers=sh, json=fs))
        wait_for(lambda: (status(pc, psh).get("witness") or {}).get("state") == "held", 20,
                 what=lambda: f"the primary holding the witness's key: {status(pc, psh).get('witness')}")
        wait_for(lambda: pc.get("/health").status_code == 200, 10, what="the primary serving under the lease")
        yield p, pc, psh, b, bc, bsh
    finally:
        probe.close()


@pytest.mark.req("FO-11")
def test_witness_settings_are_checked(ready_site):
    a, c, ah, sh = ready_site
    fs = ok(c.get("/api/config/settings/failover", headers=sh))
    fs.pop("dns_tsig_secret_set", None)
    for witness, field in (({"enabled": True}, "witness.endpoints"),
                           ({"endpoints": ["etcd.example:2379"]}, "witness.endpoints"),
                           ({"endpoints": ["http://10.0.0.7:2379"], "lease_ttl_seconds": 1}, "witness.lease_ttl_seconds"),
                           ({"endpoints": ["http://10.0.0.7:2379"], "lease_ttl_seconds": 4, "margin_seconds": 3},
                            "witness.margin_seconds")):
        r = c.put("/api/config/settings/failover", headers=sh, json={**fs, "witness": witness})
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    good = {"enabled": True, "endpoints": ["http://10.0.0.7:2379/", "https://[fd00::7]:2379"]}
    ok(c.put("/api/config/settings/failover", headers=sh, json={**fs, "witness": good}))
    assert ok(c.get("/api/config/settings/failover", headers=sh))["witness"]["endpoints"] == [
        "http://10.0.0.7:2379", "https://[fd00::7]:2379"]


@pytest.mark.req("FO-11", "FO-05")
def test_a_cut_link_leaves_one_primary_then_a_killed_primary_is_replaced(witnessed, etcd_cluster):
    p, pc, psh, b, bc, bsh = witnessed
    s = status(pc, psh)
    token = s["witness"]["fencing_token"]
    assert s["role"] == "primary" and token and s["witness"]["valid_for_seconds"] > 0
    assert "Witness: held" in cli(p, "status").stdout
    assert re.search(r'id="witness">held, valid for [0-9.]+ s, fencing token ' + str(token), failover_page(p))
    role_file = json.loads((p.data / "failover" / "role.json").read_text())
    assert role_file["fencing_token"] == token  # the token is kept with the role
    wait_for(lambda: ((status(bc, bsh).get("witness") or {}).get("holder") or {}).get("token") == token, 10,
             what="the backup seeing who holds the key")

    # (a) only the link between the two is cut (both ports, both ways): both reach the test address and etcd
    cuts = [LinkCut("127.0.0.3", "127.0.0.2", table=f"tw_a{i}_{port}", port=port)
            for i, port in enumerate((port_of(p), port_of(b)))]
    with Sampler(p, b) as sampler:
        try:
            for c in cuts:
                c.cut()
            cut_at = time.monotonic()
            written = []
            while time.monotonic() - cut_at < TIMEOUT + TTL + 3:  # well past T and a lease's lifetime
                name = f"during-cut-{len(written)}"
                r = add_user(pc, psh, name)
                assert r.status_code == 201, r.text  # the primary keeps taking writes
                written.append(name)
                time.sleep(0.5)
            sb = status(bc, bsh)
            assert sb["role"] == "backup", sb
            assert "witness" in (sb["automatic_failover"]["note"] or ""), sb["automatic_failover"]
            forced = cli(b, "become-primary", "--force", check=False)
            assert forced.returncode != 0 and "held by" in forced.stdout + forced.stderr, forced
            assert status(bc, bsh)["role"] == "backup" and status(pc, psh)["role"] == "primary"
        finally:
            for c in cuts:
                c.heal()
        assert not sampler.both(), sampler.both()[:5]
        gaps = [(round(x[0] - cut_at, 1), x[1]) for x in sampler.samples if x[0] > cut_at and x[1] != 200]
        assert not gaps, f"the primary stopped serving during the cut: {gaps}; {status(pc, psh)}"
    wait_for(lambda: set(written) <= users(bc, bsh), 30, what="the writes made during the cut on the backup")
    # every write carries the primary's generation and fencing token, on the primary and verbatim on the backup
    stamp = {(s["generation"], token)}
    assert stamps(pc, psh, written[0]) == stamp and stamps(bc, bsh, written[-1]) == stamp

    # (b) the primary killed: the backup takes over once its lease has expired, and takes the key
    with Sampler(p, b) as sampler:
        killed = time.monotonic()
        p.stop(signal.SIGKILL)
        wait_for(lambda: status(bc, bsh)["role"] == "primary", TIMEOUT + TTL + 15, every=0.1,
                 what=lambda: f"the takeover: {status(bc, bsh).get('automatic_failover')}")
        took = time.monotonic() - killed
        wait_for(lambda: bc.get("/health").status_code == 200, 10, what="the new primary serving")
        serving = sampler.first(2, 200, after=killed) or time.monotonic()
    sb = status(bc, bsh)
    assert sb["witness"]["state"] == "held" and sb["witness"]["fencing_token"] > token, sb["witness"]
    assert sb["witness"]["holder"] is None or sb["witness"]["holder"]["appliance_id"] == sb["appliance_id"]
    print(f"\ntakeover after the primary was killed: role in {took:.1f} s, serving in {serving - killed:.1f} s "
          f"(T {TIMEOUT} s, lease TTL {TTL} s)")
    assert took < TIMEOUT + TTL + 10
    ok(add_user(bc, bsh, "after-takeover"), 201)
    assert sb["generation"] > s["generation"]
    assert stamps(bc, bsh, "after-takeover") == {(sb["generation"], sb["witness"]["fencing_token"])}


@pytest.mark.req("FO-11", "FO-05")
def test_a_primary_cut_from_the_witness_stops_serving_before_the_backup_serves(witnessed, etcd_cluster):
    p, pc, psh, b, bc, bsh = witnessed
    cuts = [LinkCut("127.0.0.3", m.host, table=f"tw_c{i}_{port_of(p)}", port=m.client_port)
            for i, m in enumerate(etcd_cluster.members)]
    cuts += [LinkCut("127.0.0.3", "127.0.0.2", table=f"tw_cp_{port_of(p)}", port=port_of(p)),
             LinkCut("127.0.0.3", "127.0.0.2", table=f"tw_cb_{port_of(b)}", port=port_of(b))]
    with Sampler(p, b) as sampler:
        try:
            for c in cuts:
                c.cut()
            cut_at = time.monotonic()
            wait_for(lambda: pc.get("/health").status_code == 503, TTL + 5, what="the cut-off primary stopping")
            stopped = time.monotonic() - cut_at
            r = add_user(pc, psh, "refused")
            assert r.status_code == 409 and r.json()["error"] == "not_primary", r.text
            assert "witness" in r.json()["message"], r.text
            s = status(pc, psh)
            assert s["serving"] is False and s["witness"]["state"] in ("unreachable", "not held"), s["witness"]
            wait_for(lambda: status(bc, bsh)["role"] == "primary", TIMEOUT + TTL + 15,
                     what=lambda: f"the takeover: {status(bc, bsh).get('automatic_failover')}")
            took = time.monotonic() - cut_at
            wait_for(lambda: bc.get("/health").status_code == 200, 10, what="the new primary serving")
            time.sleep(0.3)
        finally:
            for c in cuts:
                c.heal()
        # the old primary hears of the newer one and steps down; it never serves beside it
        wait_for(lambda: status(pc, psh)["role"] == "backup", 20, what="the old primary stepping down")
    assert not sampler.both(), sampler.both()[:5]
    last_old = max((x[0] for x in sampler.samples if x[1] == 200), default=cut_at)
    first_new = sampler.first(2, 200, after=cut_at)
    assert first_new is not None and last_old < first_new
    print(f"\ncut from the witness: the primary stopped after {stopped:.1f} s, the backup was primary after "
          f"{took:.1f} s; {first_new - last_old:.1f} s with no primary serving")
    ok(add_user(bc, bsh, "on-the-new-primary"), 201)
