"""SEC-06, SITE-03: a session starts in one place whoever starts it: a
representative's command shell through the client hub and an integration's
``POST /api/command/sessions`` both leave a history record and the same
audit entry (who, the session, from where)."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Clients, ok, online, overview, wait_for
from .test_clients_e2e import REP_PASSWORD, make_rep


def _start_entries(c, h) -> dict[str, dict]:
    audit = ok(c.get("/api/reporting/audit", headers=h, params={"limit": 1000}))
    return {e["target"]: e for e in audit if e["action"] == "history.session.start"}


@pytest.mark.req("SEC-06", "SITE-03")
def test_a_session_started_through_the_hub_is_audited_like_one_started_through_the_api(ready_site,
                                                                                      clients: Clients):
    a, c, _ah, h = ready_site
    port = httpx.URL(a.url).port
    clients.install("jump", port, clients.deploy(c, h, "jump")["token"], "audit-01")
    clients.run("jump", "audit-01")
    wait_for(lambda: online(c, h, "jump", "audit-01"), what="the jump client online")
    make_rep(c, h, "carol", ["jump.use", "command.shell"])

    shell = clients.rep(port, overview(c, h)["pin"], "carol", REP_PASSWORD, "shell", "audit-01", input="exit\n")
    assert shell.returncode == 0, shell.stderr
    (session,) = ok(c.get("/api/reporting/sessions", headers=h, params={"user": "carol"}))["items"]
    by_hub = _start_entries(c, h).get(session["lsid"])
    assert by_hub is not None, "the hub's session start left no audit entry"
    assert by_hub["actor"] == "carol" and by_hub["source_ip"] == "127.0.0.1"
    assert by_hub["details"] == {"rep": "carol", "kind": "shell"}
    audit = ok(c.get("/api/reporting/audit", headers=h))
    ends = [e for e in audit if e["action"] == "history.session.end" and e["target"] == session["lsid"]]
    assert len(ends) == 1, "the hub's session end left no audit entry"

    by_api_session = ok(c.post("/api/command/sessions", headers=h, json={"rep": "carol", "kind": "support"}), 201)
    by_api = _start_entries(c, h)[by_api_session["lsid"]]
    assert by_api["actor"] == "admin" and by_api["details"] == {"rep": "carol", "kind": "support"}
    assert set(by_api) == set(by_hub)
