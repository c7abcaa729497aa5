"""An automatic failover on a real pair, with the support desk link set on
both appliances (DESK-09, FO-05): the killed primary's backup takes the role
by itself, writes ``failover.automatic`` to its /appliance audit and opens
exactly one incident on a real desk; the old primary, started again, steps
down and writes ``failover.yield``. With the desk down at the takeover, the
incident waits in the new primary's outbox and arrives once when the desk is
back."""

from __future__ import annotations

import signal
import socket

import pytest

from tests.helpers import admin_token, ok, wait_for

from .e2e import restart
from .pairs import cli, peer_addr, status

SUMMARY = "Automatic failover: this appliance became primary"
TIMEOUT = 3


def _admin(c) -> dict:
    return {"Authorization": f"Bearer {admin_token(c)}"}


def _link_desk(c, ah: dict, desk, token: str) -> None:
    """As an administrator does (docs/desk.md): the desk's URL and this appliance's token under /appliance."""
    ok(c.put("/appliance/api/support", headers=ah,
             json={"desk": {"enabled": True, "url": desk.url, "token": token, "on_backup_failure": False}}))


def _automatic(c, sh, probe_port: int) -> None:
    fs = {**ok(c.get("/api/config/settings/failover", headers=sh)), "automatic_failover": True,
          "primary_timeout_seconds": TIMEOUT, "connectivity_test_ips": ["127.0.0.4"],
          "connectivity_test_method": "tcp", "connectivity_test_port": probe_port}
    fs.pop("dns_tsig_secret_set", None)
    ok(c.put("/api/config/settings/failover", headers=sh, json=fs))


def _audit(c, ah: dict, action: str) -> list[dict]:
    return [e for e in ok(c.get("/appliance/api/audit", headers=ah, params={"limit": 1000})) if e["action"] == action]


def _failover_incidents(desk, cid: int) -> list[dict]:
    """What a desk user sees: the customer's incidents opened by an appliance about an automatic failover."""
    return [i for i in ok(desk.api.get("/api/incidents")) if i["customer_id"] == cid and i["source"] == "appliance"
            and i["summary"] == SUMMARY]


@pytest.fixture
def probe():
    """A connectivity test address that answers (a listening socket on 127.0.0.4)."""
    s = socket.socket()
    s.bind(("127.0.0.4", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def linked(pair, desk_factory, probe):
    """A paired primary (127.0.0.3) and backup (127.0.0.2), automatic failover on, each linked to a desk
    with a token of its own."""
    p, pc, psh, b, bc, bsh = pair
    desk = desk_factory()
    desk.cid = desk.customer("Pair Owner", ["it@pair.test"])["id"]
    pah, bah = _admin(pc), _admin(bc)
    _link_desk(pc, pah, desk, desk.token("pair-primary", desk.cid, "it@pair.test"))
    _link_desk(bc, bah, desk, desk.token("pair-backup", desk.cid, "it@pair.test"))
    cli(p, "establish", "--peer", peer_addr(b))
    wait_for(lambda: status(bc, bsh)["role"] == "backup", 15, what="the backup role")
    _automatic(pc, psh, probe)
    _automatic(bc, bsh, probe)
    wait_for(lambda: status(bc, bsh).get("peer_contact_age_seconds") is not None, 15, what="the first heartbeat")
    return desk, pah, bah


def _kill_primary_and_wait(pair) -> tuple[int, dict]:
    p, pc, psh, b, bc, bsh = pair
    gen = status(pc, psh)["generation"]
    p.stop(signal.SIGKILL)
    wait_for(lambda: status(bc, bsh)["role"] == "primary", 20, every=0.1, what="the automatic failover")
    wait_for(lambda: bc.get("/health").status_code == 200, 10, what="the new primary serving")
    return gen, status(bc, bsh)


def _old_primary_returns(pair, old_gen: int, new_gen: int) -> None:
    """Start the killed primary again on its data: it re-enters as the backup and audits its step-down."""
    p, pc, psh, b, bc, bsh = pair
    pc.close()
    pc = restart(p, p.env)
    wait_for(lambda: status(pc, psh)["role"] == "backup", 20, what="the old primary stepping down")
    assert status(pc, psh)["generation"] == new_gen and pc.get("/health").status_code == 503
    [yielded] = _audit(pc, _admin(pc), "failover.yield")
    assert yielded["details"]["from_generation"] == old_gen and yielded["details"]["to_generation"] == new_gen
    assert yielded["target"] == peer_addr(b)
    assert not _audit(pc, _admin(pc), "failover.automatic")
    pc.close()


@pytest.mark.req("DESK-09", "FO-05")
def test_automatic_failover_audits_both_sides_and_opens_one_incident(pair, linked):
    p, pc, psh, b, bc, bsh = pair
    desk, pah, bah = linked
    before = _failover_incidents(desk, desk.cid)
    old_gen, s = _kill_primary_and_wait(pair)
    new_gen = s["generation"]
    assert new_gen > old_gen

    [auto] = _audit(bc, bah, "failover.automatic")
    assert auto["details"]["from_generation"] == old_gen and auto["details"]["generation"] == new_gen
    assert "unreachable" in auto["details"]["reason"]
    [inc] = wait_for(lambda: _failover_incidents(desk, desk.cid), 30, every=0.2,
                     what=lambda: f"the failover incident; pending on the appliance: "
                                  f"{bc.get('/appliance/api/support/pending', headers=bah).text}")
    assert before == []
    full = desk.incident(inc["number"])
    assert full["inquirer_name"] == "appliance pair-backup" and full["severity"] == 2
    assert f"Generation {old_gen} -> {new_gen}" in full["description"]
    assert full["appliance_status"]["appliance_id"] == s["appliance_id"]
    files = {a["filename"]: a for a in full["attachments"]}
    log = ok_bytes(desk.api.get(f"/api/incidents/{inc['number']}/attachments/{files['appliance-audit.log']['id']}"))
    assert b'"failover.automatic"' in log
    # the appliance audits the delivery once the desk's answer is in (a moment after the desk has the incident)
    [sent] = wait_for(lambda: _audit(bc, bah, "support.incident"), 15, what="the delivery in the appliance's audit")
    assert sent["target"] == str(inc["number"]) and sent["details"]["key"].endswith(f":{new_gen}")
    assert ok(bc.get("/appliance/api/support/pending", headers=bah)) == []

    _old_primary_returns(pair, old_gen, new_gen)
    # the returning side opens nothing: still one incident about this failover
    assert [i["number"] for i in _failover_incidents(desk, desk.cid)] == [inc["number"]]


@pytest.mark.req("DESK-09", "FO-05")
def test_the_incident_waits_for_a_desk_that_is_down_and_arrives_once(pair, linked):
    p, pc, psh, b, bc, bsh = pair
    desk, pah, bah = linked
    desk.down()
    old_gen, s = _kill_primary_and_wait(pair)
    new_gen = s["generation"]
    waiting = wait_for(lambda: [x for x in ok(bc.get("/appliance/api/support/pending", headers=bah))
                                if x["attempts"] >= 1], 20, what="a failed first attempt in the outbox")
    [w] = waiting
    assert w["summary"] == SUMMARY and "could not be reached" in w["last_error"] and w["key"].endswith(f":{new_gen}")
    assert not _audit(bc, bah, "support.incident")

    desk.up()
    [inc] = wait_for(lambda: _failover_incidents(desk, desk.cid), 45, every=0.25,
                     what=lambda: f"the failover incident after the desk came back; pending: "
                                  f"{bc.get('/appliance/api/support/pending', headers=bah).text}")
    [sent] = wait_for(lambda: _audit(bc, bah, "support.incident"), 15, what="the delivery in the appliance's audit")
    assert ok(bc.get("/appliance/api/support/pending", headers=bah)) == []
    assert sent["target"] == str(inc["number"]) and sent["details"]["attempts"] >= 2
    assert f"Generation {old_gen} -> {new_gen}" in desk.incident(inc["number"])["description"]

    _old_primary_returns(pair, old_gen, new_gen)
    assert [i["number"] for i in _failover_incidents(desk, desk.cid)] == [inc["number"]]


def ok_bytes(r) -> bytes:
    assert r.status_code == 200, r.text
    return r.content
