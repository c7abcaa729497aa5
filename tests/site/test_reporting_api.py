"""IC-02 through the site's JSON API: session reports filtered by time range,
kind, representative and client with a cursor a puller resumes from (records
written between pages are neither missed nor repeated), recordings downloaded
with Range requests and their SHA-256 in a header, and the reporting
permission giving all of it and nothing else."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid

import pytest

from tests.helpers import api_token, ok
from tests.site.conftest import _start as start_site

KINDS = ("sessions", "presentation-logs", "license-usage", "team-activity", "exit-survey-answers", "recordings")


def _start(c, h, **kw) -> dict:
    return ok(c.post("/api/command/sessions", headers=h, json=kw), 201)


def _pull(c, h, cursor=None, **params) -> tuple[list[dict], str | None]:
    """Every page in the order written, from ``cursor`` to the (empty) end; the cursor to resume from."""
    seen = []
    while True:
        page = ok(c.get("/api/reporting/sessions", headers=h,
                        params={**params, "order": "oldest", **({"cursor": cursor} if cursor else {})}))
        if not page["items"]:
            return seen, page["next_cursor"]
        seen += page["items"]
        cursor = page["next_cursor"]


@pytest.fixture(scope="module")
def rs_site(tmp_path_factory, vendor, site_db):
    """This module's own Remote Support site: its recordings and jump sessions would change what the
    shared one's listings show other modules."""
    env = start_site(tmp_path_factory, vendor, site_db, "remote-support")
    yield env
    env.close()


@pytest.fixture(scope="module")
def reporting_only(rs_site):
    """Bearer headers of an API account holding only ``reporting``."""
    acct = ok(rs_site.c.post("/api/api-accounts", headers=rs_site.sh, json={
        "name": f"reports-{uuid.uuid4().hex[:8]}", "permissions": ["reporting"]}), 201)
    return {"Authorization": f"Bearer {api_token(rs_site.c, acct['client_id'], acct['client_secret'])}"}


@pytest.mark.pg
@pytest.mark.req("IC-02")
def test_filters_and_a_cursor_that_never_misses_or_repeats(rs_site, reporting_only):
    c, h = rs_site.c, rs_site.sh
    client = f"pc-{uuid.uuid4().hex[:8]}.example"
    base = 1_770_000_000.0
    made = [_start(c, h, rep=("ann", "bob")[i % 2], kind=("support", "jump")[i % 3 == 0], customer_name=f"C{i}",
                   customer_host=client, started_at=base + i * 60)["lsid"] for i in range(7)]
    # page 1, then writes land, then the rest: every record once, in the order written
    first = ok(c.get("/api/reporting/sessions", headers=reporting_only,
                     params={"client": client, "order": "oldest", "limit": 3}))
    assert [s["lsid"] for s in first["items"]] == made[:3]
    made += [_start(c, h, rep="ann", customer_host=client, started_at=base - 3600)["lsid"] for _ in range(2)]
    rest, cursor = _pull(c, reporting_only, first["next_cursor"], client=client, limit=3)
    assert [s["lsid"] for s in first["items"] + rest] == made  # a back-dated record is still not missed
    # a writer racing the puller: resume from the last cursor, each new record exactly once
    racing: list[str] = []

    def writer():
        with rs_site.proc.client() as wc:
            for i in range(40):
                racing.append(_start(wc, h, rep="cid", customer_host=client, started_at=base + i)["lsid"])

    t = threading.Thread(target=writer)
    t.start()
    got = []
    while t.is_alive():
        page, cursor = _pull(c, reporting_only, cursor, client=client, limit=4)
        got += page
    t.join()
    page, cursor = _pull(c, reporting_only, cursor, client=client, limit=4)
    got += page
    assert [s["lsid"] for s in got] == racing
    # the filters: client, kind (type), representative (user), time range [since, until)
    q = {"client": client, "user": "bob", "type": "support", "since": base + 60, "until": base + 6 * 60,
         "limit": 500}
    items = ok(c.get("/api/reporting/sessions", headers=reporting_only, params=q))["items"]
    assert sorted(s["customer_name"] for s in items) == ["C1", "C5"]
    assert all(s["customer_host"] == client for s in items)
    r = c.get("/api/reporting/license-usage", headers=reporting_only, params={"client": client})
    assert r.status_code == 422 and r.json()["field"] == "client"
    r = c.get("/api/reporting/sessions", headers=reporting_only, params={"order": "oldest", "cursor": "zzz"})
    assert r.status_code == 422 and r.json()["field"] == "cursor"


@pytest.mark.req("IC-02")
def test_recordings_resume_by_range_with_their_sha256(rs_site, reporting_only):
    c, h = rs_site.c, rs_site.sh
    s = _start(c, h, rep="ann", kind="tunnel", customer_host="tunnel.example")
    got = {}
    for kind in ("session", "command_shell", "tunnel"):
        body = os.urandom(300_000)
        rec = ok(c.put(f"/api/command/sessions/{s['lsid']}/recordings/{kind}", headers=h, content=body), 201)
        got[kind] = (rec, body)
    for kind, (rec, body) in got.items():
        url = f"/api/reporting/recordings/{rec['id']}/content"
        sha = hashlib.sha256(body).hexdigest()
        # a download broken after 100,000 bytes resumes from there
        with c.stream("GET", url, headers=reporting_only) as r:
            assert r.status_code == 200 and r.headers["accept-ranges"] == "bytes"
            assert r.headers["x-content-sha256"] == sha
            part = b""
            for chunk in r.iter_bytes():
                part += chunk
                if len(part) >= 100_000:
                    break
        part = part[:100_000]
        r = c.get(url, headers={**reporting_only, "Range": f"bytes={len(part)}-"})
        assert r.status_code == 206, r.text
        assert r.headers["content-range"] == f"bytes {len(part)}-{len(body) - 1}/{len(body)}"
        assert r.headers["x-content-sha256"] == sha
        assert hashlib.sha256(part + r.content).hexdigest() == sha, kind
        r = c.get(url, headers={**reporting_only, "Range": f"bytes={len(body) + 10}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(body)}"
    detail = ok(c.get(f"/api/reporting/sessions/{s['lsid']}", headers=reporting_only))
    assert sorted(r["kind"] for r in detail["recordings"]) == ["command_shell", "session", "tunnel"]


@pytest.mark.req("IC-02")
def test_the_reporting_permission_gives_all_of_it_and_nothing_else(rs_site, reporting_only):
    c, h = rs_site.c, rs_site.sh
    s = _start(c, h, rep="ann", customer_host="perm.example")
    rec = ok(c.put(f"/api/command/sessions/{s['lsid']}/recordings/session", headers=h, content=b"x" * 1000), 201)
    info = ok(c.get("/api/reporting/info", headers=reporting_only))
    assert info["reporting_api"] == 1 and info["site"]["edition"] == "remote-support"
    assert set(info["kinds"]) == set(KINDS)
    reads = [f"/api/reporting/{k}" for k in KINDS] + [
        "/api/reporting/info", "/api/reporting/audit", "/api/reporting/event-deliveries",
        f"/api/reporting/sessions/{s['lsid']}", f"/api/reporting/recordings/{rec['id']}/content"]
    for url in reads:
        assert c.get(url, headers=reporting_only).status_code == 200, url
        r = c.get(url)
        assert r.status_code == 401, (url, r.status_code)
    denied = [("POST", "/api/command/sessions", {"rep": "x"}), ("POST", "/api/backup", {"no_password": True}),
              ("GET", "/api/changes", None), ("GET", "/api/api-accounts", None), ("GET", "/api/config/site", None),
              ("POST", f"/api/command/sessions/{s['lsid']}/end", {}), ("POST", "/api/command/check_health", None),
              ("GET", "/api/users/admin", None)]
    for method, url, body in denied:
        r = c.request(method, url, headers=reporting_only, json=body)
        assert r.status_code == 403, (method, url, r.status_code, r.text)
    # and an account without it gets none of the reporting routes
    acct = ok(c.post("/api/api-accounts", headers=h, json={
        "name": f"backup-{uuid.uuid4().hex[:8]}", "permissions": ["backup", "command"]}), 201)
    other = {"Authorization": f"Bearer {api_token(c, acct['client_id'], acct['client_secret'])}"}
    for url in reads:
        assert c.get(url, headers=other).status_code == 403, url


@pytest.mark.req("IC-02")
def test_openapi_documents_the_reporting_api_with_examples(rs_site):
    doc = ok(rs_site.c.get("/api/openapi.json"))
    sessions = doc["paths"]["/reporting/sessions"]["get"]
    names = {p["name"] for p in sessions["parameters"]}
    assert {"since", "until", "user", "type", "client", "order", "cursor", "limit"} <= names
    assert sessions["responses"]["200"]["content"]["application/json"]["example"]["items"][0]["rep"] == "ann"
    content = doc["paths"]["/reporting/recordings/{rec_id}/content"]["get"]["responses"]
    assert {"206", "416"} <= set(content) and "X-Content-SHA256" in content["206"]["headers"]
    assert "example" in doc["paths"]["/reporting/info"]["get"]["responses"]["200"]["content"]["application/json"]
