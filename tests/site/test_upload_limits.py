"""SITE-04: the /appliance site-package upload page and its API twin read the
body through one bounded reader: 413 with the same clear message above the
limit, whether the body declares its length (refused before a byte of it is
read) or is chunked (refused when it crosses the limit); a package within
the limit goes on to the install (here: already installed, nothing to do)."""

import re
import socket
import ssl
from urllib.parse import urlsplit

import pytest

from tests.helpers import NEW_ADMIN_PASSWORD, pinned_context

LIMIT = 1 << 20  # tether.site.package.MAX_PACKAGE_BYTES
BOUNDARY = "twins-boundary"


def appliance_html_login(env):
    """A cookie session on the /appliance pages; returns (client, CSRF token)."""
    c = env.proc.client(follow_redirects=False)
    pre = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/appliance/login").text).group(1)
    r = c.post("/appliance/login", data={"csrf_token": pre, "username": "admin", "password": NEW_ADMIN_PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/appliance/status", r.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/appliance/site").text).group(1)
    return c, token


def multipart(fields: dict[str, str], file: bytes) -> bytes:
    out = b""
    for k, v in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="site.tsp"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + file + f"\r\n--{BOUNDARY}--\r\n".encode()
    return out


def chunked(body: bytes, size: int = 64 * 1024):
    for i in range(0, len(body), size):
        yield body[i:i + size]


def raw_post(env, path: str, headers: dict[str, str], timeout: float = 10) -> tuple[int, str]:
    """Send only the head of a POST over TLS (no body at all) and read the answer."""
    u = urlsplit(env.proc.url)
    ctx: ssl.SSLContext = pinned_context(env.proc.cert_path)
    head = f"POST {path} HTTP/1.1\r\nHost: {u.hostname}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname=u.hostname) as t:
            t.sendall((head + "\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = t.recv(65536)
                assert chunk, f"connection closed after {data!r}"
                data += chunk
            head_part, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head_part).group(1))
            while len(body) < length:
                chunk = t.recv(65536)
                if not chunk:
                    break
                body += chunk
    return int(head_part.split()[1]), body.decode(errors="replace")


def _faces(env):
    """(name, send(body, declared: bool) -> (status, text)) for the API and the page."""
    page, token = appliance_html_login(env)

    def api(file: bytes, declared: bool = True):
        body = multipart({}, file)
        headers = {**env.ah, "content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        r = env.c.post("/appliance/api/site-package", headers=headers, content=body if declared else chunked(body))
        return r.status_code, r.json()["message"]

    def html(file: bytes, declared: bool = True):
        body = multipart({"csrf_token": token}, file)
        headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        r = page.post("/appliance/site", headers=headers, content=body if declared else chunked(body))
        return r.status_code, r.text

    return page, {"api": api, "page": html}


@pytest.mark.req("SITE-04")
def test_site_package_upload_is_bounded_the_same_on_both_faces(rs_site, vendor):
    page, faces = _faces(rs_site)
    good = vendor["package"]("demo", "remote-support").read_bytes()
    try:
        for name, send in faces.items():
            status, text = send(good)
            assert status == 200 and "already installed" in text, (name, status, text)
            status, text = send(b"")
            assert status == 422 and "upload the site package file" in text, (name, status, text)
            for declared in (True, False):
                for size in (LIMIT + 1, 3 * LIMIT):  # just past the limit (the body fits), and well past it
                    status, text = send(b"x" * size, declared)
                    assert status == 413, (name, declared, size, status, text)
                    assert "site package: larger than the limit of 1048576 bytes" in text, (name, text)
        # a declared length above the limit is refused before any of the body is read
        cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
        for path, auth in (("/appliance/api/site-package", rs_site.ah), ("/appliance/site", {"Cookie": cookie})):
            status, text = raw_post(rs_site, path, {**auth, "Content-Length": str(10 ** 12),
                                                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            assert status == 413 and "site package: larger than the limit" in text, (path, status, text)
    finally:
        page.close()
