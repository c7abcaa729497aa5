"""An HTML page and its JSON twin give the same answer because they call the
same domain function: file-store downloads (content present, content
missing: 410 on both) and recording downloads (one name and type for each
recording kind on both faces, 410 when the content is missing)."""

import html as markup
import re
from types import SimpleNamespace

import pytest

from tests.helpers import ok
from tests.site.test_site_data_pages import html_login


def _filename(r) -> str:
    return re.search(r'filename="([^"]+)"', r.headers["content-disposition"]).group(1)


def _blob(env, store: str, sha: str):
    return env.proc.data / "site" / store / sha[:2] / sha[2:4] / sha


@pytest.mark.req("SITE-02", "BK-02")
def test_file_download_is_the_same_on_both_faces_and_gone_without_its_content(rs_site):
    c, h = rs_site.c, rs_site.sh
    row = ok(c.put("/api/files/twin-notes.txt", headers=h, content=b"only the twins test has these bytes\n",
                   params={"description": "twins"}))
    page = html_login(rs_site)
    try:
        api = c.get("/api/files/twin-notes.txt", headers=h)
        html = page.get("/login/files/twin-notes.txt/download")
        assert api.status_code == html.status_code == 200
        assert api.content == html.content == b"only the twins test has these bytes\n"
        assert _filename(api) == _filename(html) == "twin-notes.txt"
        assert api.headers["content-type"] == html.headers["content-type"]
        # the index row stays but the bytes are not here (a site restored from a backup that left them out)
        _blob(rs_site, "files", row["sha256"]).unlink()
        api = c.get("/api/files/twin-notes.txt", headers=h)
        html = page.get("/login/files/twin-notes.txt/download")
        assert api.status_code == html.status_code == 410, (api.text, html.text)
        body = api.json()
        assert body["error"] == "gone" and "not on this appliance" in body["message"]
        text = markup.unescape(html.text)
        assert body["message"] in text and body["hint"] in text
        # an unknown name is 404 on both
        assert c.get("/api/files/twin-none.txt", headers=h).status_code == 404
        assert page.get("/login/files/twin-none.txt/download").status_code == 404
    finally:
        page.close()
        c.delete("/api/files/twin-notes.txt", headers=h)


@pytest.mark.req("SITE-03")
def test_recording_download_name_and_type_are_the_same_on_both_faces(ready_site):
    a, c, _ah, h = ready_site  # its own site: recordings cannot be deleted, and the shared one counts them
    env = SimpleNamespace(proc=a)
    lsid = ok(c.post("/api/command/sessions", headers=h, json={"rep": "twin-rep", "kind": "shell"}), 201)["lsid"]
    cast = b'{"version": 2, "width": 80, "height": 24}\n[0.5, "o", "twins\\r\\n"]\n'
    shell = ok(c.put(f"/api/command/sessions/{lsid}/recordings/command_shell", headers=h, content=cast), 201)
    other = ok(c.put(f"/api/command/sessions/{lsid}/recordings/session", headers=h,
                     content=b"\x00\x01 an opaque twins recording"), 201)
    page = html_login(env)
    try:
        for rec, ext, ctype in ((shell, "cast", "application/x-asciicast"),
                                (other, "bin", "application/octet-stream")):
            api = c.get(f"/api/reporting/recordings/{rec['id']}/content", headers=h)
            html = page.get(f"/login/history/recordings/{rec['id']}")
            assert api.status_code == html.status_code == 200, (api.text, html.text)
            assert api.content == html.content
            expected = f"recording-{rec['id']}-{rec['kind']}.{ext}"
            assert _filename(api) == _filename(html) == expected
            assert api.headers["content-type"] == html.headers["content-type"] == ctype
        # recordings never travel in backups: after a restore the index can name bytes that are not here
        _blob(env, "recordings", other["sha256"]).unlink()
        api = c.get(f"/api/reporting/recordings/{other['id']}/content", headers=h)
        html = page.get(f"/login/history/recordings/{other['id']}")
        assert api.status_code == html.status_code == 410, (api.text, html.text)
        assert api.json()["message"] in markup.unescape(html.text)
    finally:
        page.close()


@pytest.mark.req("SITE-03")
def test_session_page_shows_event_details_readably_not_as_python_reprs(rs_site):
    c, h = rs_site.c, rs_site.sh
    lsid = ok(c.post("/api/command/sessions", headers=h, json={"rep": "detail-rep", "kind": "shell"}), 201)["lsid"]
    ok(c.post(f"/api/command/sessions/{lsid}/events", headers=h,
              json={"type": "participant.join", "actor": "detail-rep",
                    "data": {"customer": "web-01", "screen": {"w": 80, "h": 24}, "note": "<b>x</b>"}}), 201)
    page = html_login(rs_site)
    try:
        html = page.get(f"/login/history/session/{lsid}")
        assert html.status_code == 200, html.text
        assert "{'customer'" not in markup.unescape(html.text) and "{&#39;" not in html.text
        assert "<dt>customer</dt><dd>web-01</dd>" in html.text
        assert "<dt>screen</dt><dd>{&#34;h&#34;: 24, &#34;w&#34;: 80}</dd>" in html.text
        assert "<b>x</b>" not in html.text  # escaped, never markup
    finally:
        page.close()
