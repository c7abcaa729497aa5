"""SITE-02 (issue 19, item 9): one file-name rule for every face of the file
store. A name the HTML page accepts is listed by the API, fetched and deleted
by the API, the page and ``tether files``; a name the rule refuses is refused
with a clear 4xx by each of them, and nothing is stored."""

from __future__ import annotations

import re
import sqlite3
from urllib.parse import quote

import pytest

from tests.helpers import ok, run_cli
from tests.site.test_site_data_pages import csrf, html_login

GOOD = ["résumé.pdf", ".htaccess", "a%00b.txt", "hash #1 & more?.txt", "файл (2).txt", "100%.txt"]
BAD = ["trailing-space.txt ", " leading-space.txt", "tab\tinside.txt", "ctl\x01.txt", "del\x7f.txt",
       "rtl\u202etxt.exe", "zero\u200bwidth.txt", ".", "..", "x" * 256]


def _seg(name: str) -> str:
    """``name`` as one path segment (a bare ``.`` or ``..`` would be removed from the URL as a dot segment)."""
    q = quote(name, safe="")
    return q.replace(".", "%2E") if q in (".", "..") else q


def _upload_html(page, name: str, data: bytes):
    return page.post("/login/files", data={"csrf_token": csrf(page, "/login/files"), "name": name},
                     files={"file": ("upload.bin", data)})


def _names(c, h) -> list[str]:
    return [r["name"] for r in ok(c.get("/api/files", headers=h))]


@pytest.mark.req("SITE-02")
def test_every_face_accepts_and_refuses_the_same_file_names(rs_site):
    c, h = rs_site.c, rs_site.sh
    env = {**rs_site.proc.cli_env(), "TETHER_TOKEN": h["Authorization"].split()[1]}
    page = html_login(rs_site)
    try:
        before = _names(c, h)
        for i, name in enumerate(GOOD):
            data = f"file {i}\n".encode()
            r = _upload_html(page, name, data)
            assert r.status_code == 200 and "uploaded" in r.text, (name, r.status_code)
            assert name in _names(c, h), name
            # fetched by the API and by the page's own link
            api = c.get(f"/api/files/{_seg(name)}", headers=h)
            assert api.status_code == 200 and api.content == data, (name, api.status_code, api.text)
            link = re.search(r'href="(/login/files/[^"]+/download)"[^>]*>' + re.escape(
                name.replace("&", "&amp;")) + "<", page.get("/login/files").text)
            assert link, name
            assert page.get(link.group(1).replace("&amp;", "&")).content == data, name
            # the API's own upload takes it too (the same name: replaced)
            ok(c.put(f"/api/files/{_seg(name)}", headers=h, content=data))
        # deleted: half by the CLI, half by the API
        for i, name in enumerate(GOOD):
            if i % 2:
                cp = run_cli("files", "delete", name, env=env)
                assert cp.returncode == 0, (name, cp.returncode, cp.stdout, cp.stderr)
            else:
                ok(c.delete(f"/api/files/{_seg(name)}", headers=h))
            assert name not in _names(c, h), name
        # refused everywhere, with the rule's message; nothing stored
        for name in BAD:
            r = _upload_html(page, name, b"bad")
            assert r.status_code == 422 and "no slashes or control characters" in r.text, (name, r.status_code)
            api = c.put(f"/api/files/{_seg(name)}", headers=h, content=b"bad")
            assert api.status_code == 422 and api.json()["field"] == "name", (name, api.status_code, api.text)
            assert c.get(f"/api/files/{_seg(name)}", headers=h).status_code == 422, name
            assert c.delete(f"/api/files/{_seg(name)}", headers=h).status_code == 422, name
            cp = run_cli("files", "delete", name, env=env)
            assert cp.returncode == 2 and "control characters" in cp.stderr, (name, cp.returncode, cp.stderr)
        for name in ("a/b.txt", "a\\b.txt"):
            assert _upload_html(page, name, b"bad").status_code == 422, name
        assert _names(c, h) == before
    finally:
        page.close()
        for name in GOOD:
            c.delete(f"/api/files/{_seg(name)}", headers=h)


@pytest.mark.req("SITE-02")
def test_a_name_an_older_release_let_in_is_still_fetched_and_deleted(rs_site):
    c, h = rs_site.c, rs_site.sh
    env = {**rs_site.proc.cli_env(), "TETHER_TOKEN": h["Authorization"].split()[1]}
    ok(c.put("/api/files/legacy-a.txt", headers=h, content=b"legacy a\n"))
    ok(c.put("/api/files/legacy-b.txt", headers=h, content=b"legacy b\n"))
    con = sqlite3.connect(rs_site.proc.data / "site" / "site.db")  # as an older release's API stored them
    with con:
        con.execute("UPDATE store_files SET name = 'legacy a ' WHERE name = 'legacy-a.txt'")
        con.execute("UPDATE store_files SET name = 'legacy\u202eb' WHERE name = 'legacy-b.txt'")
    con.close()
    assert {"legacy a ", "legacy\u202eb"} <= set(_names(c, h))
    assert c.get(f"/api/files/{_seg('legacy a ')}", headers=h).content == b"legacy a\n"
    page = html_login(rs_site)
    try:
        assert page.get(f"/login/files/{_seg('legacy' + chr(0x202e) + 'b')}/download").content == b"legacy b\n"
    finally:
        page.close()
    cp = run_cli("files", "delete", "legacy a ", env=env)
    assert cp.returncode == 0, cp.stderr
    ok(c.delete(f"/api/files/{_seg('legacy' + chr(0x202e) + 'b')}", headers=h))
    assert not {"legacy a ", "legacy\u202eb"} & set(_names(c, h))
    # a refused name that is not in the store is still refused by the rule, not looked up
    assert c.get(f"/api/files/{_seg('legacy a ')}", headers=h).status_code == 422
