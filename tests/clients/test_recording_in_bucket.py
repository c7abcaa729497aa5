"""OPS-06 with SITE-03: a command shell a representative runs through a jump
client is recorded (asciicast v2) into the S3-compatible bucket the site's
objects live in (moto in server mode): spooled while the session runs, put
in the bucket when it ends, downloaded through the reporting API."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from tests.s3server import MotoServer

from .conftest import Clients, ok, online, overview, wait_for
from .test_clients_e2e import REP_PASSWORD, make_rep


@pytest.mark.req("OPS-06", "SITE-03")
def test_a_shell_session_is_recorded_into_the_bucket(ready_site, clients: Clients, tmp_path):
    a, c, ah, h = ready_site
    with MotoServer(bucket="recordings-test") as moto:
        ok(c.put("/appliance/api/storage", headers=ah, json={"backend": "s3", "s3": {
            "endpoint_url": moto.endpoint_url, "bucket": moto.bucket, "access_key": "testing",
            "secret_key": "testing"}}))
        port = httpx.URL(a.url).port
        ok(c.post("/api/config/jump-client-groups", headers=h, json={"name": "servers"}), 201)
        clients.install("jump", port, clients.deploy(c, h, "jump", "servers")["token"], "web-01")
        jump = clients.run("jump", "web-01")
        wait_for(lambda: online(c, h, "jump", "web-01"), what="jump client online")
        make_rep(c, h, "alice", ["jump.use", "command.shell"])
        pin = overview(c, h)["pin"]
        shell = clients.rep(port, pin, "alice", REP_PASSWORD, "shell", "web-01", input="echo in-the-$((2*2))-bucket\nexit\n")
        assert shell.returncode == 0 and "in-the-4-bucket" in shell.stdout, shell.stderr
        (s,) = ok(c.get("/api/reporting/sessions", headers=h, params={"user": "alice"}))["items"]
        detail = wait_for(lambda: (d := ok(c.get(f"/api/reporting/sessions/{s['lsid']}", headers=h)))["recordings"]
                          and d, what="the recording indexed")
        (rec,) = detail["recordings"]
        cast = c.get(f"/api/reporting/recordings/{rec['id']}/content", headers=h)
        assert cast.status_code == 200 and json.loads(cast.text.splitlines()[0])["version"] == 2
        assert "in-the-4-bucket" in cast.text
        sha = hashlib.sha256(cast.content).hexdigest()
        assert sha == rec["sha256"]
        assert moto.objects() == {f"recordings/{sha[:2]}/{sha[2:4]}/{sha}": len(cast.content)}
        assert not [p for p in (a.data / "site" / "recordings").rglob("*") if p.is_file()]
        jump.stop()
