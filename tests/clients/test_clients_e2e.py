"""CL-01, SITE-03, SITE-05 end to end with real processes: a jump client and
a jumpoint installed from /login deployments stay connected; the
representative console logs in, lists them, runs a command shell on the jump
client's pty and a TCP tunnel through the jumpoint; every session is logged
with its events and its asciicast recording; revoking a client disconnects
it for good."""

from __future__ import annotations

import json
import socket
import socketserver
import threading

import httpx
import pytest

from tests.helpers import site_token

from .conftest import Clients, ok, online, overview, wait_for

REP_PASSWORD = "Rep-pass-1-long"


def make_rep(c: httpx.Client, h: dict, username: str, permissions: list[str] | None) -> None:
    ok(c.post("/api/users", headers=h, json={"username": username, "password": "Initial-pass-1"}), 201)
    tok = site_token(c, username, "Initial-pass-1")
    ok(c.post("/api/session/password", headers={"Authorization": f"Bearer {tok}"},
              json={"current_password": "Initial-pass-1", "new_password": REP_PASSWORD}))
    if permissions is not None:
        ok(c.post("/api/config/group-policies", headers=h, json={
            "name": f"{username}-policy", "permissions": permissions,
            "members": [{"kind": "user", "username": username}]}), 201)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(b"echo:" + data)


@pytest.fixture
def echo_server():
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.mark.req("CL-01", "SITE-03", "SITE-05")
def test_deploy_connect_shell_tunnel_record_revoke(ready_site, clients: Clients, echo_server):
    a, c, _ah, h = ready_site
    port = httpx.URL(a.url).port
    ok(c.post("/api/config/jump-client-groups", headers=h, json={"name": "servers"}), 201)
    ok(c.post("/api/config/jumpoints", headers=h, json={"name": "lab", "hostname": "jp.lab.test",
                                                          "allowed_networks": ["127.0.0.0/8"]}), 201)

    # deployments: one-time tokens that carry the pin of the certificate this listener presents
    dep = clients.deploy(c, h, "jump", "servers")
    pin = overview(c, h)["pin"]
    assert dep["token"].endswith(pin.split("/", 1)[1]) and dep["command"].startswith("tether-jump install --site ")
    clients.install("jump", port, dep["token"], "web-01")
    again = clients.install("jump", port, dep["token"], "web-02", check=False)
    assert again.returncode == 3 and "already been used" in again.stderr  # a replayed token is refused
    clients.install("jumpoint", port, clients.deploy(c, h, "jumpoint", "lab")["token"], "lab")
    state = json.loads((clients.tmp / "web-01" / "identity.json").read_text())
    assert state["kind"] == "jump" and state["trust"] == {"pin": pin}
    assert oct((clients.tmp / "web-01" / "identity.json").stat().st_mode & 0o777) == "0o600"

    jump = clients.run("jump", "web-01")
    jp = clients.run("jumpoint", "lab")
    wait_for(lambda: online(c, h, "jump", "web-01") and online(c, h, "jumpoint", "lab"), what="clients online")
    row = next(j for j in overview(c, h)["jump_clients"] if j["name"] == "web-01")
    assert row["group_name"] == "servers" and row["os"] == "linux" and row["last_seen_at"] > 0

    # the representative console
    make_rep(c, h, "alice", ["jump.use", "command.shell"])
    listed = clients.rep(port, pin, "alice", REP_PASSWORD, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert [(j["name"], j["online"], j["group"]) for j in items["jump_clients"]] == [("web-01", True, "servers")]
    assert [(j["name"], j["online"]) for j in items["jumpoints"]] == [("lab", True)]
    info = ok(c.get("/api/site/information", headers=h))["connected_clients"]
    assert (info["jump_clients"], info["jumpoints"]) == (1, 1)  # SITE-05: the real counts

    shell = clients.rep(port, pin, "alice", REP_PASSWORD, "shell", "web-01",
                        input="echo marker-$((6*7)) $TERM\ntty\nexit\n")
    assert shell.returncode == 0, shell.stderr
    assert "marker-42 xterm-256color" in shell.stdout and "/dev/pts/" in shell.stdout
    assert "session ended (exited 0)" in shell.stderr

    # a tunnel through the jumpoint to a TCP service on its network
    tunnel = clients.rep_proc(port, pin, "alice", REP_PASSWORD, "tunnel", "lab", "--to", f"127.0.0.1:{echo_server}",
                              name="tunnel")
    line = wait_for(lambda: next((x for x in tunnel.text().splitlines() if x.startswith("listening on ")), None),
                    what="the tunnel's local listener")
    lhost, lport = line.split()[2].rsplit(":", 1)
    with socket.create_connection((lhost, int(lport)), timeout=10) as s:
        s.sendall(b"ping through the jumpoint")
        got = b""
        while len(got) < len(b"echo:ping through the jumpoint"):
            got += s.recv(1024)
    assert got == b"echo:ping through the jumpoint"
    with socket.create_connection((lhost, int(lport)), timeout=10) as s:
        s.sendall(b"x" * 200_000)  # several frames
        got = b""
        while len(got) < 200_005:
            got += s.recv(65536)
    assert got.count(b"x") == 200_000
    tunnel.stop()

    # SITE-03: the sessions are in the logged history, with events and the recording
    sessions = ok(c.get("/api/reporting/sessions", headers=h, params={"user": "alice"}))["items"]
    kinds = sorted(s["kind"] for s in sessions)
    assert kinds == ["shell", "tunnel", "tunnel"]
    sh = next(s for s in sessions if s["kind"] == "shell")
    detail = ok(c.get(f"/api/reporting/sessions/{sh['lsid']}", headers=h))
    assert detail["jump_client"] == "web-01" and detail["ended_at"] >= detail["started_at"]
    types = [e["type"] for e in detail["events"]]
    assert types == ["session.start", "participant.join", "participant.join", "session.end"]
    end = detail["events"][-1]["data"]
    typed = len("echo marker-$((6*7)) $TERM\ntty\nexit\n")
    assert end["reason"] == "exited 0" and end["bytes_to_rep"] > 20
    assert end["bytes_to_client"] in (typed, typed + 1)  # + the ^D sent at the end of piped input
    (rec,) = detail["recordings"]
    assert rec["kind"] == "command_shell"
    cast = c.get(f"/api/reporting/recordings/{rec['id']}/content", headers=h)
    assert cast.status_code == 200
    lines = cast.text.splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] > 0 and header["height"] > 0
    events = [json.loads(x) for x in lines[1:]]
    assert all(isinstance(t, float) and kind in ("o", "i", "r") for t, kind, _ in events)
    assert "marker-42" in "".join(d for _t, kind, d in events if kind == "o")
    page = c.get(f"/login/history/session/{sh['lsid']}", headers=h)  # /login: the session with a download link
    assert page.status_code == 200 and f'href="/login/history/recordings/{rec["id"]}"' in page.text
    from_login = c.get(f"/login/history/recordings/{rec['id']}", headers=h)
    assert from_login.status_code == 200 and from_login.content == cast.content
    assert 'filename="recording-' in from_login.headers["content-disposition"]
    tun = next(s for s in sessions if s["kind"] == "tunnel")
    tdetail = ok(c.get(f"/api/reporting/sessions/{tun['lsid']}", headers=h))
    assert tdetail["customer_host"] == "127.0.0.1" and tdetail["events"][-1]["type"] == "session.end"

    # a representative lacking permission is refused; the console says why
    make_rep(c, h, "bob", ["session.start"])
    refused = clients.rep(port, pin, "bob", REP_PASSWORD, "shell", "web-01", input="id\n")
    assert refused.returncode == 3 and "lacks the jump.use, command.shell permission" in refused.stderr
    wrong = clients.rep(port, pin, "alice", "not-the-password", "list")
    assert wrong.returncode == 3 and "wrong user name or password" in wrong.stderr
    outside = clients.rep_proc(port, pin, "alice", REP_PASSWORD, "tunnel", "lab", "--to", "10.1.2.3:22", name="out")
    line = wait_for(lambda: next((x for x in outside.text().splitlines() if x.startswith("listening on ")), None))
    lhost, lport = line.split()[2].rsplit(":", 1)
    with socket.create_connection((lhost, int(lport)), timeout=10) as s:
        assert s.recv(10) == b""  # closed: the target is outside the jumpoint's allowed networks
    wait_for(lambda: "outside the jumpoint's allowed networks" in outside.text())
    outside.stop()

    # revoking in /login disconnects the jump client, and its identity stops working
    ok(c.post("/api/clients/jump/web-01/revoke", headers=h))
    assert jump.proc.wait(20) == 3
    assert "revoked" in jump.text()
    assert not online(c, h, "jump", "web-01")
    rerun = clients.run("jump", "web-01")
    assert rerun.proc.wait(20) == 3 and "revoked" in rerun.text()
    assert jp.proc.poll() is None and online(c, h, "jumpoint", "lab")  # the others are unaffected
