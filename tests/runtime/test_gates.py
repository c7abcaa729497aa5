"""The role gates of the runtime (tether.runtime.role), on real appliance
processes: a backup appliance answers /health with 503, refuses a jump
client's hello with the documented close code that tells it to retry, and
refuses /login writes with a message naming the primary; its admins can
still log in and read status. Back at role none everything serves again,
and the generation has been raised at each change and kept on disk."""

from __future__ import annotations

import json
import socket

import pytest

from tether.core.paths import DataDir
from tether.runtime.role import RoleStore
from tests.clients.conftest import clients, online  # noqa: F401 - the fixture
from tests.helpers import NEW_SITE_PASSWORD, first_admin_login, first_site_login, ok, site_token, wait_for

PRIMARY = "198.51.100.7:443"


@pytest.fixture
def fixed_port_site(make_appliance):
    """A site on a fixed port (so that clients find it again after a restart), first logins done."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = make_appliance(site=True, listen=[f"127.0.0.1:{port}"])
    c = a.client()
    ah, sh = first_admin_login(c), first_site_login(c)
    yield a, c, ah, sh
    c.close()


def restart_as(a, role: str, primary: str | None = None) -> None:
    a.stop()
    RoleStore(DataDir.at(a.data).role_file).set(role, primary=primary, reason="test")
    a.start()


@pytest.mark.req("FO-04")
def test_a_backup_appliance_serves_no_clients_and_takes_no_writes(fixed_port_site, clients):
    a, c, ah, sh = fixed_port_site
    port = int(a.url.rsplit(":", 1)[1])
    token = clients.deploy(c, sh, "jump")["token"]
    clients.install("jump", port, token, "host-1")
    c.close()

    restart_as(a, "backup", PRIMARY)
    role_file = json.loads((a.data / "failover" / "role.json").read_text())
    assert (role_file["version"], role_file["role"], role_file["generation"]) == (1, "backup", 1)
    with a.client() as c:
        r = c.get("/health")
        assert r.status_code == 503 and "backup" in r.text and PRIMARY in r.text
        r = c.get("/check_health")  # IC-04's unauthenticated form: one line, 200 or 500
        assert r.status_code == 500 and r.text.count("\n") == 1 and "backup" in r.text
        sh = {"Authorization": f"Bearer {site_token(c)}"}  # admins still get in, to see status
        info = ok(c.get("/api/site/information", headers=sh))
        assert info["appliance_role"] == "backup"
        r = c.post("/api/users", headers=sh, json={"username": "carol", "password": "Carol-pass-123"})
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["error"] == "not_primary" and PRIMARY in body["message"]
        assert all(u["username"] != "carol" for u in ok(c.get("/api/users", headers=sh)))
        jump = clients.run("jump", "host-1")
        wait_for(lambda: "not_primary" in jump.text(), 20, what="the backup's refusal in the client's log")
        assert jump.proc.poll() is None, "a refused client keeps retrying"
        assert not online(c, sh, "jump", "host-1")

    restart_as(a, "none")
    with a.client() as c:
        assert c.get("/health").status_code == 200
        r = c.get("/check_health")
        assert (r.status_code, r.text) == (200, "ok\n")
        sh = {"Authorization": f"Bearer {site_token(c)}"}
        ok(c.post("/api/users", headers=sh, json={"username": "carol", "password": "Carol-pass-123"}), 201)
        wait_for(lambda: online(c, sh, "jump", "host-1"), 30, what="the jump client back online")
    assert json.loads((a.data / "failover" / "role.json").read_text())["generation"] == 2


@pytest.mark.req("APPL-06", "CL-01")
def test_factory_reset_drops_connected_clients(ready_site, clients):
    a, c, ah, sh = ready_site
    port = int(a.url.rsplit(":", 1)[1])
    token = clients.deploy(c, sh, "jump")["token"]
    clients.install("jump", port, token, "host-2")
    jump = clients.run("jump", "host-2")
    wait_for(lambda: online(c, sh, "jump", "host-2"), 30, what="the jump client online")
    before = jump.text()
    ok(c.post("/appliance/api/factory-reset", headers=ah, json={"confirm": "factory reset"}))
    # the client is dropped at once (not left on an orphaned hub) and cannot get back in
    wait_for(lambda: "site_replaced" in jump.text()[len(before):], 15, what="the client dropped by the reset")
    wait_for(lambda: "reconnecting" in jump.text()[len(before):], 15, what="the client's next attempt")
    r = c.get("/health")
    assert r.status_code == 503 and "no site" in r.text
    assert jump.proc.poll() is None
    assert NEW_SITE_PASSWORD  # (the reset appliance has no site: nobody's identity is known there)
