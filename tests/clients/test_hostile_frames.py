"""ROB-02 (issue 19, items 5 and 11): deeply nested JSON on /client/register
and on the client channel, a hello whose version is not an integer, and a
binary frame for a channel never opened are each refused clearly: a 400, or
an error frame then a close code (docs/formats/client-protocol.md), never a
500 or a dropped connection."""

from __future__ import annotations


import pytest

from .conftest import Clients, ok
from .test_protocol_robustness import Raw, hello


def _deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.req("ROB-02")
def test_deep_json_bad_versions_and_unopened_channels_are_refused(ready_site, clients: Clients, ws_loop):
    a, c, _ah, h = ready_site
    # /client/register, without any credential: a clear 400, nothing registered
    for body in (_deep(100_000), '{"token": ' + _deep(5_000) + "}", '{"token": "x", "os": {"a": ' * 40 + "1" +
                 "}" * 40 + "}", "not json", "[1, 2]"):
        r = c.post("/client/register", content=body.encode(), headers={"content-type": "application/json"})
        assert r.status_code == 400, (body[:40], r.status_code, r.text)
        assert r.json()["error"] == "malformed", r.text
    assert "nested deeper" in c.post("/client/register", content=_deep(100_000).encode()).json()["message"]
    assert ok(c.get("/api/clients", headers=h))["identities"] == []

    dep = clients.deploy(c, h, "jump")
    ident = ok(c.post("/client/register", json={"token": dep["token"], "kind": "jump", "hostname": "raw",
                                                "os": "linux"}), 201)
    good = hello(role="jump", client_id=ident["client_id"], secret=ident["secret"])
    raw = Raw(a, ws_loop)

    def refused(frames, close, code, text):
        got, closed = raw.exchange(*frames)
        errors = [g for g in got if isinstance(g, dict) and g.get("type") == "error"]
        assert closed == close, (str(frames[-1])[:60], got, closed)
        assert errors and errors[-1]["code"] == code and text in errors[-1]["message"], (got, code)
        return got

    # deep nesting as the first frame, inside a hello, and after a good hello
    refused([_deep(5_000)], 4400, "bad_frame", "nested deeper")
    refused(['{"type": "hello", "v": 1, "role": "jump", "x": ' + _deep(5_000) + "}"], 4400, "bad_frame",
            "nested deeper")
    got = refused([good, '{"type": "ping", "x": ' + _deep(5_000) + "}"], 4400, "bad_frame", "nested deeper")
    assert got[0]["type"] == "welcome"
    # the protocol version is an integer: not a boolean, not a float, not a string
    for v in (True, 1.0, "1"):
        refused([hello(v=v, role="jump", client_id=ident["client_id"], secret=ident["secret"])], 4400,
                "bad_frame", "'v'")
    got = refused([hello(v=2, role="jump")], 4426, "unsupported_version", "version 2")
    assert got[-1]["versions"] == [1]
    # a binary frame for a channel never opened (0 is never a channel; 1 was never opened here)
    for cid in (0, 1):
        got = refused([good, cid.to_bytes(4, "big") + b"data"], 4400, "bad_frame", "never opened")
        assert got[0]["type"] == "welcome"
    # the appliance is unaffected
    assert c.get("/health").status_code == 200
    got, closed = raw.exchange(good)
    assert closed is None and got[0]["type"] == "welcome" and got[-1] == {"type": "pong"}
