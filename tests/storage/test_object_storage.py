"""OPS-06: the site's file store and recordings in an S3-compatible bucket
(moto in server mode, IAM authentication on), through real appliance
processes: configuring it (the check on save: wrong credentials, a bucket
that refuses writes), uploads and downloads through the API and the page,
a recording, the endpoint going down in the middle of an upload, backups
across backends, and ``tether storage migrate`` disk -> bucket -> disk."""

from __future__ import annotations

import hashlib
import json
import os
from types import SimpleNamespace

import pytest

from tests.helpers import (NEW_ADMIN_PASSWORD, ApplianceProc, admin_token, first_admin_login, first_site_login, ok,
                           run_cli, site_token)
from tests.authn.pki import make_ca, make_server_cert
from tests.s3server import MotoServer, moto_server  # noqa: F401  (the module's S3 server)
from tests.site.test_site_data_pages import csrf, html_login
from tests.tcpproxy import Proxy

pytestmark = pytest.mark.req("OPS-06")
BACKUP_PW = "Backup-secret-1"


def _key(sha: str, kind: str = "files", prefix: str = "") -> str:
    return f"{prefix}{kind}/{sha[:2]}/{sha[2:4]}/{sha}"


def _start(tmp_path_factory, vendor, name: str) -> SimpleNamespace:
    data = tmp_path_factory.mktemp(name) / "data"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    proc = ApplianceProc(data, ["127.0.0.1:0"]).start()
    c = proc.client()
    return SimpleNamespace(proc=proc, c=c, ah=first_admin_login(c), sh=first_site_login(c), data=data)


def _restart(env) -> None:
    """Start the stopped appliance again (a new port: a new client)."""
    env.proc.start()
    env.c.close()
    env.c = env.proc.client()


def _stop(env) -> None:
    env.c.close()
    env.proc.stop()


@pytest.fixture(scope="module")
def relay(moto_server):
    """The appliance reaches the S3 server through this proxy, so a test can cut the endpoint mid-upload."""
    r = Proxy(("127.0.0.1", moto_server.port))
    r.http = r.url("http")
    yield r
    r.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory, vendor, moto_server, relay):
    e = _start(tmp_path_factory, vendor, "s3site")
    e.moto, e.relay = moto_server, relay
    yield e
    _stop(e)


def appliance_page(env):
    """An httpx client logged in to the /appliance pages."""
    c = env.proc.client(follow_redirects=False)
    pre = csrf(c, "/appliance/login")
    r = c.post("/appliance/login", data={"username": "admin", "password": NEW_ADMIN_PASSWORD, "csrf_token": pre})
    assert r.status_code == 303, r.text
    return c


def form_of(d: dict) -> dict:
    s3 = d["s3"]
    return {"backend": d["backend"], "endpoint_url": s3["endpoint_url"], "bucket": s3["bucket"], "region": s3["region"],
            "prefix": s3["prefix"], "access_key": s3["access_key"], "secret_key": s3["secret_key"], "verify_tls": "on"}


def doc(moto, endpoint: str, who: str = "writer", backend: str = "s3", prefix: str = "") -> dict:
    key, secret = moto.keys[who]
    return {"backend": backend, "s3": {"endpoint_url": endpoint, "bucket": moto.bucket, "region": "us-east-1",
                                       "prefix": prefix, "access_key": key, "secret_key": secret,
                                       "verify_tls": True, "ca_pem": None}}


def test_a_bucket_that_fails_its_check_is_refused_and_nothing_is_saved(env, tmp_path):
    before = ok(env.c.get("/appliance/api/storage", headers=env.ah))
    assert before["backend"] == "local" and before["s3"]["endpoint_url"] is None
    bad = doc(env.moto, env.relay.http)
    bad["s3"].update(access_key="AKIAWRONGWRONGWRONG", secret_key="not-the-secret")
    r = env.c.put("/appliance/api/storage", headers=env.ah, json=bad)
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "unavailable" and "refused" in r.json()["message"], r.json()
    assert "access key" in r.json()["hint"]
    # a key that may read but not write: the probe write is refused
    r = env.c.put("/appliance/api/storage", headers=env.ah, json=doc(env.moto, env.relay.http, "reader"))
    assert r.status_code == 503 and "writing a test object" in r.json()["message"], r.text
    # an endpoint nobody answers on
    r = env.c.put("/appliance/api/storage", headers=env.ah, json=doc(env.moto, "http://127.0.0.1:9"))
    assert r.status_code == 503 and "cannot be reached" in r.json()["message"], r.text
    assert ok(env.c.get("/appliance/api/storage", headers=env.ah)) == before
    # the CLI twin: the same refusal, exit 8
    f = tmp_path / "storage.json"
    f.write_text(json.dumps(bad))
    res = run_cli("settings", "set-storage", str(f), env={**env.proc.cli_env(), "TETHER_PASSWORD": NEW_ADMIN_PASSWORD})
    assert res.returncode == 8 and "refused" in res.stderr, (res.returncode, res.stderr)
    assert ok(env.c.get("/appliance/api/storage", headers=env.ah)) == before
    # the page: the same refusal, shown on the form
    page = appliance_page(env)
    try:
        r = page.post("/appliance/storage", data={"csrf_token": csrf(page, "/appliance/storage"), **form_of(bad)})
        assert r.status_code == 503 and "refused the request" in r.text and "not-the-secret" not in r.text
    finally:
        page.close()
    assert ok(env.c.get("/appliance/api/storage", headers=env.ah)) == before
    assert "not-the-secret" not in env.proc.log_path.read_text()


def test_the_endpoint_certificate_is_verified_against_the_ca_given(env, tmp_path):
    ca, ca_key, ca_cert = make_ca(tmp_path, "Object store CA")
    cert, key = make_server_cert(tmp_path, ca_key, ca_cert, "127.0.0.1", "s3.tether.test")
    with MotoServer(tls=(cert, key), ca=ca, bucket="tls-bucket") as tls:
        d = doc(tls, tls.endpoint_url, backend="local")
        r = env.c.put("/appliance/api/storage", headers=env.ah, json=d)  # the system CAs do not know it
        assert r.status_code == 503 and "could not be verified" in r.json()["message"], r.text
        assert not (env.data / "storage-ca.pem").exists()
        d["s3"]["ca_pem"] = ca.read_text()
        saved = ok(env.c.put("/appliance/api/storage", headers=env.ah, json=d))
        assert saved["s3"]["ca_pem"] == ca.read_text() and saved["backend"] == "local"
        assert (env.data / "storage-ca.pem").read_text() == ca.read_text()


def test_files_and_recordings_live_in_the_bucket(env):
    c, sh, moto = env.c, env.sh, env.moto
    good = doc(moto, env.relay.http)
    page = appliance_page(env)  # saved through the page (its API twin refused above)
    try:
        r = page.post("/appliance/storage", data={"csrf_token": csrf(page, "/appliance/storage"), **form_of(good)})
        assert r.status_code == 200 and "Saved." in r.text, r.text
        assert good["s3"]["secret_key"] not in r.text and "(set; leave empty to keep)" in r.text
    finally:
        page.close()
    saved = ok(c.get("/appliance/api/storage", headers=env.ah))
    assert saved["backend"] == "s3" and saved["s3"]["secret_key"] == "********"
    assert not (env.data / "storage-ca.pem").exists()  # this endpoint has none
    assert moto.keys["writer"][1] not in json.dumps(ok(c.get("/appliance/api/storage", headers=env.ah)))
    # a large upload goes up as a multipart upload, a small one in one PUT; both under their hash
    big = os.urandom(3 << 20) * 7  # 21 MiB: three parts
    small = b"runbook\n" * 1000
    for name, body in (("big.bin", big), ("small.txt", small)):
        row = ok(c.put(f"/api/files/{name}", headers=sh, content=body))
        assert row["sha256"] == hashlib.sha256(body).hexdigest() and row["size"] == len(body)
    objects = moto.objects()
    assert objects[_key(hashlib.sha256(big).hexdigest())] == len(big)
    assert objects[_key(hashlib.sha256(small).hexdigest())] == len(small)
    assert not [k for k in objects if k.startswith(".tmp/")]  # the multipart staging object is gone
    assert not [p for p in (env.data / "site" / "files").rglob("*") if p.is_file()]  # nothing on the local disk
    got = c.get("/api/files/big.bin", headers=sh)
    assert got.status_code == 200 and got.content == big and got.headers["content-length"] == str(len(big))
    assert got.headers["x-content-sha256"] == hashlib.sha256(big).hexdigest()
    # a broken download resumes from the bucket too: a ranged GET behind a 206, 416 past the end
    part = c.get("/api/files/big.bin", headers={**sh, "Range": f"bytes={len(big) - 5000}-"})
    assert part.status_code == 206 and part.content == big[-5000:], part.status_code
    assert part.headers["content-range"] == f"bytes {len(big) - 5000}-{len(big) - 1}/{len(big)}"
    assert c.get("/api/files/big.bin", headers={**sh, "Range": f"bytes={len(big)}-"}).status_code == 416
    # the page: upload through the form, download through its link
    page = html_login(env)
    try:
        r = page.post("/login/files", data={"csrf_token": csrf(page, "/login/files"), "name": "page.txt"},
                      files={"file": ("page.txt", b"from the page\n" * 100)})
        assert r.status_code == 200 and "page.txt uploaded (1400 bytes)" in r.text, r.text
        assert page.get("/login/files/page.txt/download").content == b"from the page\n" * 100
    finally:
        page.close()
    assert _key(hashlib.sha256(b"from the page\n" * 100).hexdigest()) in moto.objects()
    # a recording, stored and downloaded
    lsid = ok(c.post("/api/command/sessions", headers=sh, json={"rep": "s3-rep", "kind": "shell"}), 201)["lsid"]
    cast = b'{"version": 2, "width": 80, "height": 24}\n[0.5, "o", "hello"]\n'
    rec = ok(c.put(f"/api/command/sessions/{lsid}/recordings/command_shell", headers=sh, content=cast), 201)
    assert _key(hashlib.sha256(cast).hexdigest(), "recordings") in moto.objects()
    assert c.get(f"/api/reporting/recordings/{rec['id']}/content", headers=sh).content == cast


def test_the_endpoint_going_down_mid_upload_fails_the_upload_cleanly(env):
    c, sh, moto = env.c, env.sh, env.moto
    body = os.urandom(1 << 20) * 30  # 30 MiB
    sha = hashlib.sha256(body).hexdigest()
    env.relay.cut_after(12 << 20, "up")  # after the first part, in the second
    try:
        r = c.put("/api/files/cut.bin", headers=sh, content=body)
    finally:
        env.relay.heal()
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert r.json()["error"] == "unavailable" and "cannot be reached" in r.json()["message"], r.json()
    assert "cut.bin" not in [f["name"] for f in ok(c.get("/api/files", headers=sh))]
    assert _key(sha) not in moto.objects() and not [k for k in moto.objects() if k.startswith(".tmp/")]
    # the endpoint is back: the same upload goes through
    assert ok(c.put("/api/files/cut.bin", headers=sh, content=body))["sha256"] == sha
    assert c.get("/api/files/cut.bin", headers=sh).content == body


def test_a_backup_of_a_bucket_site_restores_onto_a_local_site_and_back(env, tmp_path_factory, vendor):
    c, sh = env.c, env.sh
    small = b"runbook\n" * 1000
    nsb = c.post("/api/backup", headers=sh, json={"password": BACKUP_PW})
    assert nsb.status_code == 200, nsb.text
    local = _start(tmp_path_factory, vendor, "localsite")
    try:
        r = local.c.post("/api/restore", headers=local.sh, files={"file": ("site.nsb", nsb.content)},
                         data={"password": BACKUP_PW})
        assert r.status_code == 200, r.text
        h = {"Authorization": f"Bearer {site_token(local.c)}"}
        assert local.c.get("/api/files/small.txt", headers=h).content == small
        files_dir = local.data / "site" / "files"
        sha = hashlib.sha256(small).hexdigest()
        assert (files_dir / sha[:2] / sha[2:4] / sha).read_bytes() == small  # on this appliance's disk
        # a file the local site adds, in its backup, restored onto the bucket site
        extra = b"made on the local site\n"
        ok(local.c.put("/api/files/local.txt", headers=h, content=extra))
        nsb2 = local.c.post("/api/backup", headers=h, json={"password": BACKUP_PW})
        assert nsb2.status_code == 200
    finally:
        _stop(local)
    r = c.post("/api/restore", headers=sh, files={"file": ("site.nsb", nsb2.content)}, data={"password": BACKUP_PW})
    assert r.status_code == 200, r.text
    env.sh = sh = {"Authorization": f"Bearer {site_token(c)}"}
    assert c.get("/api/files/local.txt", headers=sh).content == extra
    assert _key(hashlib.sha256(extra).hexdigest()) in env.moto.objects()
    assert not [p for p in (env.data / "site" / "files").rglob("*") if p.is_file()]


def test_migrate_from_disk_to_the_bucket_and_back(tmp_path_factory, vendor, moto_server, relay):
    e = _start(tmp_path_factory, vendor, "migsite")
    prefix = "mig/"
    bodies = {f"f{i}.bin": os.urandom(1000 + i) for i in range(4)}
    try:
        for name, body in bodies.items():
            ok(e.c.put(f"/api/files/{name}", headers=e.sh, content=body))
        lsid = ok(e.c.post("/api/command/sessions", headers=e.sh, json={"rep": "m", "kind": "shell"}), 201)["lsid"]
        cast = b'{"version": 2}\n[0.1, "o", "x"]\n'
        rec = ok(e.c.put(f"/api/command/sessions/{lsid}/recordings/command_shell", headers=e.sh, content=cast), 201)
        # switching the backend by saving would leave the objects behind: refused, with the command to use
        r = e.c.put("/appliance/api/storage", headers=e.ah, json=doc(moto_server, relay.http, prefix=prefix))
        assert r.status_code == 409 and "tether storage migrate --to s3" in r.json()["hint"], r.text
        ok(e.c.put("/appliance/api/storage", headers=e.ah,
                   json=doc(moto_server, relay.http, backend="local", prefix=prefix)))  # the bucket, not in use yet
        # migrating while the appliance runs is refused
        res = run_cli("storage", "migrate", "--to", "s3", "--data", str(e.data))
        assert res.returncode != 0 and res.stderr.startswith("Error:"), res.stderr
    finally:
        e.proc.stop()
    # resumability: one object is already in the bucket (an earlier run), another is there but corrupt
    shas = sorted(hashlib.sha256(b).hexdigest() for b in bodies.values())
    s3 = moto_server.client()
    s3.put_object(Bucket=moto_server.bucket, Key=_key(shas[0], prefix=prefix),
                  Body=next(b for b in bodies.values() if hashlib.sha256(b).hexdigest() == shas[0]))
    s3.put_object(Bucket=moto_server.bucket, Key=_key(shas[1], prefix=prefix), Body=b"corrupt")
    res = run_cli("storage", "migrate", "--to", "s3", "--dry-run", "--json", "--data", str(e.data))
    assert res.returncode == 0, res.stderr
    dry = json.loads(res.stdout)
    assert dry["dry_run"] and dry["to_copy"] == 4 and dry["present"] == 1 and not dry["switched"]
    assert len(moto_server.objects(prefix)) == 2
    res = run_cli("storage", "migrate", "--to", "s3", "--json", "--data", str(e.data))
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)
    assert done["switched"] and done["copied"] == 4 and done["present"] == 1  # the corrupt one copied again
    objects = moto_server.objects(prefix)
    for body in bodies.values():
        assert objects[_key(hashlib.sha256(body).hexdigest(), prefix=prefix)] == len(body)
    assert _key(hashlib.sha256(cast).hexdigest(), "recordings", prefix) in objects
    _restart(e)
    try:
        h = {"Authorization": f"Bearer {site_token(e.c)}"}
        assert ok(e.c.get("/appliance/api/storage", headers=_admin(e)))["backend"] == "s3"
        for name, body in bodies.items():
            assert e.c.get(f"/api/files/{name}", headers=h).content == body
        after = b"uploaded once in the bucket\n"
        ok(e.c.put("/api/files/after.txt", headers=h, content=after))
        assert _key(hashlib.sha256(after).hexdigest(), prefix=prefix) in moto_server.objects(prefix)
    finally:
        e.proc.stop()
    res = run_cli("storage", "migrate", "--to", "local", "--data", str(e.data))
    assert res.returncode == 0 and "the site now uses local" in res.stdout, res.stderr
    _restart(e)
    try:
        h = {"Authorization": f"Bearer {site_token(e.c)}"}
        assert ok(e.c.get("/appliance/api/storage", headers=_admin(e)))["backend"] == "local"
        for name, body in {**bodies, "after.txt": after}.items():
            assert e.c.get(f"/api/files/{name}", headers=h).content == body
        assert e.c.get(f"/api/reporting/recordings/{rec['id']}/content", headers=h).content == cast
        sha = hashlib.sha256(after).hexdigest()
        assert (e.data / "site" / "files" / sha[:2] / sha[2:4] / sha).read_bytes() == after
    finally:
        _stop(e)


def _admin(e) -> dict:
    return {"Authorization": f"Bearer {admin_token(e.c)}"}
