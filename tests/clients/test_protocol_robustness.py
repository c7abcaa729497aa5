"""ROB-02, the client protocol: malformed, oversized and unknown frames,
wrong versions, unknown, replayed and revoked identities, and a
representative lacking permission are each refused with a clear error (and
the connection closed where the protocol says so); a seeded random fuzz of
frames never takes the appliance down, and a well-behaved client connected
beside them stays connected throughout."""

from __future__ import annotations

import contextlib
import json
import os
import random

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.helpers import pinned_context, site_token
from tests.wsclient import Loop, SyncWebSocket

from .conftest import Clients, ok, online, wait_for
from .test_clients_e2e import REP_PASSWORD, make_rep


PING = json.dumps({"type": "ping"})


class Raw:
    def __init__(self, a, loop: Loop):
        self.url = a.url.replace("https://", "wss://").rstrip("/") + "/client"
        self.ctx = pinned_context(a.cert_path)
        self.loop = loop

    def open(self) -> SyncWebSocket:
        return self.loop.open(self.url, self.ctx, open_timeout=8, close_timeout=5, max_size=4 * 1024 * 1024)

    def exchange(self, *frames) -> tuple[list[dict], int | None]:
        """Send frames then a ping; collect what comes back until the pong (the connection stayed
        open: None) or until the appliance closes (its close code)."""
        got = []
        with self.open() as ws:
            try:
                for f in (*frames, PING):
                    ws.send(f)
            except ConnectionClosed:
                pass  # closed by the appliance mid-way: read what it said before closing
            try:
                while True:
                    msg = ws.recv(timeout=10)
                    got.append(json.loads(msg) if isinstance(msg, str) else msg)
                    if got[-1] == {"type": "pong"}:
                        return got, None
            except ConnectionClosed as e:
                return got, e.rcvd.code if e.rcvd else None


def hello(**kw) -> str:
    return json.dumps({"type": "hello", "v": 1, **kw})


@pytest.mark.req("ROB-02")
def test_bad_frames_and_identities_are_refused_clearly(ready_site, clients: Clients, ws_loop):
    a, c, _ah, h = ready_site
    raw = Raw(a, ws_loop)
    ok(c.put("/api/config/settings/jump-clients", headers=h,
             json={**ok(c.get("/api/config/settings/jump-clients", headers=h)), "connection_rate_per_second": 300}))
    # a real jump client stays connected beside all of this
    port = httpx.URL(a.url).port
    clients.hosts.point("127.0.0.1")
    clients.install("jump", port, clients.deploy(c, h, "jump")["token"], "steady")
    steady = clients.run("jump", "steady")
    wait_for(lambda: online(c, h, "jump", "steady"))
    # an identity for raw tests, registered over the real endpoint
    dep = clients.deploy(c, h, "jump")
    reg = c.post("/client/register", json={"token": dep["token"], "kind": "jump", "hostname": "raw", "os": "linux"})
    ident = ok(reg, 201)
    replay = c.post("/client/register", json={"token": dep["token"], "kind": "jump", "hostname": "raw2", "os": "x"})
    assert replay.status_code == 401 and "already been used" in replay.json()["message"]
    for body, status in ((b"not json", 400), (json.dumps([1, 2]).encode(), 400),
                         (json.dumps({"token": 5}).encode(), 422)):  # 400: malformed, as the protocol document says
        r = c.post("/client/register", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
    good_hello = hello(role="jump", client_id=ident["client_id"], secret=ident["secret"])

    def refused(frames, close, code, text=""):
        got, closed = raw.exchange(*frames)
        errors = [g for g in got if isinstance(g, dict) and g.get("type") == "error"]
        assert closed == close, (frames[:1], got, closed)
        if code:
            assert errors and errors[-1]["code"] == code and text in errors[-1]["message"], (got, code)
        return got

    refused([b"\x00\x00\x00\x01binary"], 4400, "bad_frame", "first frame")
    refused(["{not json"], 4400, "bad_frame", "malformed JSON")
    refused(["[1,2,3]"], 4400, "bad_frame", "JSON object")
    got = refused([hello(v=99, role="jump")], 4426, "unsupported_version")
    assert got[-1]["versions"] == [1]
    refused([hello(role="admin")], 4400, "bad_frame", "role")
    refused([hello(role="jump", client_id="0" * 32, secret="x")], 4401, "unauthorized")
    refused([hello(role="jump", client_id=ident["client_id"], secret="wrong")], 4401, "unauthorized")
    refused([hello(role="jump", client_id=ident["client_id"], secret=7)], 4400, "bad_frame")
    refused([hello(role="jumpoint", client_id=ident["client_id"], secret=ident["secret"])], 4401, "unauthorized",
            "belongs to a jump")
    refused(["x" * (70 * 1024)], 4400, "too_large")
    # a frame announcing 2 MiB, above the WebSocket layer's limit: refused from its header (1009)
    with raw.open() as ws:
        ws.send_raw(bytes([0x81, 0xFF]) + (2 * 1024 * 1024).to_bytes(8, "big") + os.urandom(4) + b"x" * 64)
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=10)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1009
    # after a good hello
    got = refused([good_hello, json.dumps({"type": "teleport"})], 4400, "unknown_type")
    assert got[0]["type"] == "welcome" and got[0]["name"] == "raw"
    refused([good_hello, b"\x00\x00\x27\x10data"], 4400, "bad_frame", "never opened")
    refused([good_hello, b"\x00\x01"], 4400, "bad_frame", "shorter")
    refused([good_hello, json.dumps({"type": "shell.open", "id": 1, "target": "steady"})], 4400, "unknown_type")
    refused([good_hello, json.dumps({"type": "close", "channel": "seven"})], 4400, "bad_frame")
    # the newest connection of one identity wins; the older one is told why
    with raw.open() as first:
        first.send(good_hello)
        assert json.loads(first.recv(timeout=5))["type"] == "welcome"
        with raw.open() as second:
            second.send(good_hello)
            assert json.loads(second.recv(timeout=5))["type"] == "welcome"
            msg = json.loads(first.recv(timeout=5))
            assert msg["code"] == "superseded"
            with pytest.raises(ConnectionClosed) as e:
                first.recv(timeout=5)
            assert e.value.rcvd.code == 4409

    # a representative: wrong password, lacking permission (connection stays open), bad request
    make_rep(c, h, "carol", [])
    refused([hello(role="rep", username="carol", password="wrong")], 4401, "unauthorized", "wrong user name")
    with raw.open() as ws:
        ws.send(hello(role="rep", username="carol", password=REP_PASSWORD))
        assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
        ws.send(json.dumps({"type": "list", "id": 1}))
        err = json.loads(ws.recv(timeout=5))
        assert (err["type"], err["id"], err["code"]) == ("error", 1, "forbidden") and "jump.use" in err["message"]
        ws.send(json.dumps({"type": "shell.open", "id": 2, "target": "steady"}))
        assert json.loads(ws.recv(timeout=5))["code"] == "forbidden"
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"  # still connected
    make_rep(c, h, "dave", ["jump.use", "command.shell"])
    dave = hello(role="rep", username="dave", password=REP_PASSWORD)
    got = refused([dave, json.dumps({"type": "shell.open", "id": 1, "target": "nobody"})], None, "not_found")
    got = refused([dave, json.dumps({"type": "shell.open", "id": 1, "target": "raw"})], None, "offline")
    refused([dave, json.dumps({"type": "shell.open", "id": "one", "target": "steady"})], 4400, "bad_frame")
    refused([dave, json.dumps({"type": "tunnel.open", "id": 1, "jumpoint": "x", "host": "h", "port": 70000})],
            4400, "bad_frame")

    # seeded random frames on as few connections as they allow: each answered or ignored (the
    # connection then still answers a ping), or refused with 4400; never a crash or a hang
    rng = random.Random(20261126)
    types = ["ping", "close", "list", "shell.open", "tunnel.open", "resize", "channel.opened", "channel.failed",
             "hello", "welcome", "", None, 5]
    values = [None, 0, -1, 2**40, "x", "", [], {}, True, 1.5, "a" * 300]
    ws, closes, answered, stack = None, 0, 0, contextlib.ExitStack()
    for i in range(200):
        if ws is None:
            ws = stack.enter_context(raw.open())
            ws.send(good_hello)
            assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        frame = {"type": rng.choice(types)}
        for key in rng.sample(["id", "channel", "target", "cols", "rows", "host", "port", "jumpoint", "reason"],
                              rng.randint(0, 4)):
            frame[key] = rng.choice(values)
        blob = json.dumps(frame) if rng.random() < 0.8 else bytes(rng.randrange(256) for _ in range(rng.randint(0, 9)))
        try:
            ws.send(blob)
            ws.send(PING)
            while (msg := json.loads(ws.recv(timeout=10))) != {"type": "pong"}:
                assert msg["type"] in ("error", "close"), (frame, msg)
            answered += 1
        except ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == 4400, (frame, e)
            closes += 1
            stack.close()
            ws = None
    stack.close()
    assert closes > 20 and answered > 5, (closes, answered)  # both paths were exercised

    # revoked: refused with its own code
    ok(c.post("/api/clients/jump/raw/revoke", headers=h))
    refused([good_hello], 4403, "revoked")
    # the appliance is unaffected
    assert c.get("/health").status_code == 200
    assert online(c, h, "jump", "steady") and steady.proc.poll() is None
    sh = {"Authorization": "Bearer " + site_token(c)}
    assert ok(c.get("/api/site/information", headers=sh))["connected_clients"]["jump_clients"] == 1
