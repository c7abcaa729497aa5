"""SITE-02 through the JSON API: a Remote Support site stores canned
messages, branding (logo blob and texts), exit surveys, the public portal,
the file store (streamed, content-addressed, size-limited) and scheduled
presentations; a Privileged Remote Access site has none of them."""

import hashlib
import os
import time

import pytest

from tests.helpers import ok

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300)


def _chunks(total: int, seed: bytes):
    block = hashlib.sha256(seed).digest() * 32768  # 1 MiB, deterministic
    sent = 0
    while sent < total:
        n = min(len(block), total - sent)
        yield block[:n]
        sent += n


@pytest.mark.pg
@pytest.mark.req("SITE-02")
def test_remote_support_configuration(rs_site):
    c, h = rs_site.c, rs_site.sh
    ok(c.post("/api/config/teams", headers=h, json={"name": "Front desk"}), 201)
    ok(c.post("/api/config/canned-messages", headers=h, json={
        "name": "greeting", "category": "Openers", "body": "Hello, I am {rep}.", "team": "Front desk"}), 201)
    r = c.post("/api/config/canned-messages", headers=h, json={"name": "x", "body": "b", "team": "ghost"})
    assert r.status_code == 422 and r.json()["field"] == "team"
    survey = ok(c.post("/api/config/exit-surveys", headers=h, json={
        "name": "customer-exit", "title": "How did we do?", "questions": [
            {"kind": "rating", "text": "Overall satisfaction", "required": True},
            {"kind": "choice", "text": "Was your issue solved?", "choices": ["yes", "no", "partly"]},
            {"kind": "text", "text": "Comments"}]}), 201)
    assert [q["kind"] for q in survey["questions"]] == ["rating", "choice", "text"]
    r = c.post("/api/config/exit-surveys", headers=h, json={"name": "s2", "title": "t", "questions": [
        {"kind": "choice", "text": "pick", "choices": ["only"]}]})
    assert r.status_code == 422 and r.json()["field"].startswith("questions.0")
    portal = ok(c.put("/api/config/settings/public-portal", headers=h, json={
        "title": "Acme Support", "issue_categories": ["Printing", "E-mail"], "require_issue": True}))
    assert portal["issue_categories"] == ["Printing", "E-mail"]
    ok(c.put("/api/config/settings/branding", headers=h, json={"company_name": "Acme", "greeting": "Hi there"}))
    assert c.put("/api/config/settings/branding", headers=h, json={"accent_color": "red"}).json()["field"] \
        == "accent_color"
    ok(c.put("/api/config/branding/logo", headers=h, content=PNG))
    r = c.get("/api/config/branding/logo", headers=h)
    assert r.content == PNG and r.headers["content-type"] == "image/png"
    r = c.put("/api/config/branding/logo", headers=h, content=b"<svg/>")
    assert r.status_code == 422 and r.json()["field"] == "logo"
    # presentations are created and scheduled, with a file from the store
    ok(c.put("/api/files/deck.pdf", headers=h, content=b"%PDF-1.7 deck"))
    when = time.time() + 86400
    p = ok(c.post("/api/config/presentations", headers=h, json={
        "name": "onboarding", "title": "Onboarding", "presenter": "admin", "scheduled_at": when,
        "status": "scheduled", "attendees": ["new@example.com"], "file": "deck.pdf"}), 201)
    assert p["scheduled_at"] == when and p["status"] == "scheduled"
    r = c.post("/api/config/presentations", headers=h, json={"name": "p2", "title": "t", "presenter": "admin",
                                                            "status": "scheduled"})
    assert r.status_code == 422 and r.json()["field"] == "scheduled_at"
    assert c.delete("/api/files/deck.pdf", headers=h).status_code == 409  # used by the presentation


@pytest.mark.pg
@pytest.mark.req("SITE-02")
def test_file_store_streams_any_size_to_disk_content_addressed(rs_site):
    c, h = rs_site.c, rs_site.sh
    size = 48 * 1024 * 1024 + 123
    expected = hashlib.sha256()
    for chunk in _chunks(size, b"big"):
        expected.update(chunk)
    sha = expected.hexdigest()
    row = ok(c.put("/api/files/big.bin?description=install%20media", headers=h, content=_chunks(size, b"big")))
    assert row["size"] == size and row["sha256"] == sha and row["uploaded_by"] == "admin"
    blob = rs_site.proc.data / "site" / "files" / sha[:2] / sha[2:4] / sha
    assert blob.stat().st_size == size
    got = hashlib.sha256()
    with c.stream("GET", "/api/files/big.bin", headers=h) as r:
        assert r.status_code == 200
        for part in r.iter_bytes():
            got.update(part)
    assert got.hexdigest() == sha
    # the same content under a second name shares the blob; deleting one keeps it
    ok(c.put("/api/files/copy.bin", headers=h, content=_chunks(size, b"big")))
    ok(c.delete("/api/files/big.bin", headers=h))
    assert blob.exists()
    ok(c.delete("/api/files/copy.bin", headers=h))
    assert not blob.exists()
    # a configurable limit: 413 before or while streaming, nothing stored
    ok(c.put("/api/config/settings/file-store", headers=h, json={"max_upload_bytes": 1_000_000}))
    r = c.put("/api/files/too-big.bin", headers=h, content=b"x" * 1_000_001)
    assert r.status_code == 413 and r.json()["field"] == "file"
    r = c.put("/api/files/too-big.bin", headers=h, content=_chunks(3_000_000, b"chunked"))  # no Content-Length
    assert r.status_code == 413
    assert c.get("/api/files/too-big.bin", headers=h).status_code == 404
    assert not list((rs_site.proc.data / "site" / "files" / ".tmp").iterdir())
    ok(c.put("/api/config/settings/file-store", headers=h, json={}))
    assert c.put("/api/files/bad%01", headers=h, content=b"x").status_code == 422  # the name rule


@pytest.mark.req("SITE-02")
def test_privileged_remote_access_site_has_none_of_them(pra_site):
    c, h = pra_site.c, pra_site.sh
    for method, path, body in [("GET", "/api/config/canned-messages", None),
                               ("POST", "/api/config/exit-surveys", {"name": "s"}),
                               ("GET", "/api/config/presentations", None),
                               ("GET", "/api/config/settings/public-portal", None),
                               ("PUT", "/api/config/settings/branding", {}),
                               ("GET", "/api/config/branding/logo", None),
                               ("GET", "/api/files", None),
                               ("PUT", "/api/files/a.txt", b"data"),
                               ("GET", "/api/reporting/presentation-logs", None),
                               ("GET", "/api/reporting/exit-survey-answers", None)]:
        kw = {"content": body} if isinstance(body, bytes) else {"json": body}
        r = c.request(method, path, headers=h, **kw)
        assert r.status_code == 404 and r.json()["error"] == "wrong_edition", (path, r.text)
        assert "remote-support" in r.json()["message"] and "privileged-remote-access" in r.json()["message"]
    # SITE-01 data is there on both editions
    assert c.post("/api/config/jumpoints", headers=h, json={"name": "jp", "hostname": "jp.example"}).status_code == 201
