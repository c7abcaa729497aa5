"""What the security-provider tests share: logging in through /login (cookie + CSRF), the API and
the representative console (``tether-rep``, a real process reaching the site by a test hostname)."""

from __future__ import annotations

import os
import re
import subprocess

import httpx

from tests.helpers import BIN, ok

REP = str(BIN / "tether-rep")
SITE_HOST = "support.tether.test"


def group_policy(c: httpx.Client, h: dict, provider: str, permissions: list[str], group: str = "support") -> None:
    """The group policy "Support reps" granting ``permissions`` to the members of ``provider``'s ``group``."""
    ok(c.post("/api/config/group-policies", headers=h, json={
        "name": "Support reps", "permissions": permissions,
        "members": [{"kind": "provider_group", "provider": provider, "group_name": group}]}), 201)


def api_login(c: httpx.Client, username: str, password: str) -> httpx.Response:
    return c.post("/api/session", json={"username": username, "password": password})


def html_login(a, username: str, password: str) -> tuple[httpx.Response, httpx.Client]:
    """POST the /login form as a browser does (pre-login CSRF cookie); the response and the client."""
    c = a.client(follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    return c.post("/login", data={"csrf_token": token, "username": username, "password": password}), c


def csrf(c: httpx.Client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text).group(1)


def rep(a, c: httpx.Client, h: dict, tmp, username: str, password: str, *args: str) -> subprocess.CompletedProcess:
    """``tether-rep --site support.tether.test:PORT --user USERNAME --pin PIN ARGS`` with TETHER_PASSWORD."""
    hosts = tmp / "hosts"
    hosts.write_text(f"127.0.0.1 {SITE_HOST}\n")
    pin = ok(c.get("/api/clients", headers=h))["pin"]
    port = httpx.URL(a.url).port
    return subprocess.run([REP, "--site", f"{SITE_HOST}:{port}", "--user", username, "--pin", pin, *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TETHER_HOSTS_FILE": str(hosts), "TETHER_PASSWORD": password})


def audit(c: httpx.Client, h: dict, action: str) -> list[dict]:
    rows = ok(c.get("/api/reporting/audit?limit=200", headers=h))
    rows = rows["entries"] if isinstance(rows, dict) else rows
    return [r for r in rows if r["action"] == action]
