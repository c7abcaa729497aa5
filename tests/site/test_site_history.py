"""SITE-03 through the JSON API: session records with events, recordings
kept as content-addressed files beside the database (never inside), and
listings filtered by date range, user and type with cursor pagination."""

import hashlib
import os

import pytest

from tests.helpers import ok


@pytest.mark.pg
@pytest.mark.req("SITE-03")
def test_sessions_events_recordings_and_filtered_pages(rs_site):
    c, h = rs_site.c, rs_site.sh
    base = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    lsids = []
    for i in range(30):
        rep = ("ann", "bob", "cid")[i % 3]
        kind = "jump" if i % 5 == 0 else "support"
        s = ok(c.post("/api/command/sessions", headers=h, json={
            "rep": rep, "kind": kind, "customer_name": f"Customer {i}", "customer_host": f"pc{i}.example",
            "started_at": base + i * 3600}), 201)
        lsids.append(s["lsid"])
    s = ok(c.post(f"/api/command/sessions/{lsids[0]}/events", headers=h, json={
        "type": "file.transfer", "actor": "ann", "data": {"file": "log.txt", "bytes": 1234}}), 201)
    recording = os.urandom(256 * 1024)
    rec = ok(c.put(f"/api/command/sessions/{lsids[0]}/recordings/command_shell?duration_seconds=61.5",
                    headers=h, content=recording), 201)
    sha = hashlib.sha256(recording).hexdigest()
    assert rec["sha256"] == sha and rec["size"] == len(recording)
    path = rs_site.proc.data / "site" / "recordings" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == recording
    site_db = rs_site.proc.data / "site" / "site.db"
    if site_db.exists():  # SQLite: the bytes are beside the database, not inside it
        assert recording[:64] not in site_db.read_bytes()
    assert c.get(f"/api/reporting/recordings/{rec['id']}/content", headers=h).content == recording
    ok(c.post(f"/api/command/sessions/{lsids[0]}/end", headers=h, json={"reason": "rep_closed"}))
    detail = ok(c.get(f"/api/reporting/sessions/{lsids[0]}", headers=h))
    assert [e["type"] for e in detail["events"]] == ["session.start", "file.transfer", "session.end"]
    assert detail["end_reason"] == "rep_closed" and detail["recordings"][0]["kind"] == "command_shell"
    assert c.post(f"/api/command/sessions/{lsids[0]}/end", headers=h).status_code == 422
    # filters: date range [since, until), user, type; newest first; cursor pages cover everything once
    q = {"since": "2026-01-01T05:00:00", "until": "2026-01-02", "user": "bob", "limit": 2}
    seen = []
    cursor = None
    while True:
        page = ok(c.get("/api/reporting/sessions", headers=h, params={**q, **({"cursor": cursor} if cursor else {})}))
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    expect = [i for i in range(30) if i % 3 == 1 and 5 <= i < 24]
    assert [int(s["customer_name"].split()[1]) for s in seen] == sorted(expect, reverse=True)
    jumps = ok(c.get("/api/reporting/sessions", headers=h, params={"type": "jump", "limit": 100}))["items"]
    assert sorted(int(s["customer_name"].split()[1]) for s in jumps) == [0, 5, 10, 15, 20, 25]
    for params, field in [({"since": "yesterday"}, "since"), ({"limit": 0}, "limit"), ({"cursor": "zzz"}, "cursor")]:
        r = c.get("/api/reporting/sessions", headers=h, params=params)
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    recs = ok(c.get("/api/reporting/recordings", headers=h, params={"type": "command_shell"}))["items"]
    assert [r["id"] for r in recs] == [rec["id"]]
