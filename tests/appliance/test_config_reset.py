"""APPL-04 (configuration export/import onto a replacement appliance) and
APPL-06 (factory reset wipes everything sensitive; shut down stops cleanly)."""

import io
import re
import tarfile

import pytest
import yaml

from tests.helpers import NEW_ADMIN_PASSWORD, first_admin_login, first_site_login, ok
from tests.appliance.test_settings import NETWORKING


@pytest.mark.req("APPL-04")
def test_export_then_import_onto_a_replacement(make_appliance):
    old = make_appliance()
    with old.client() as c:
        h = first_admin_login(c)
        assert c.put("/appliance/api/networking", headers=h, json=NETWORKING).status_code == 200
        sec = c.get("/appliance/api/security", headers=h).json()
        sec["syslog"] = {"enabled": True, "host": "192.0.2.77", "port": 6514, "transport": "tcp", "format": "rfc5424"}
        sec["smtp"] = {**sec["smtp"], "host": "mail.example.com", "password": "Relay-secret-1"}
        sec["login_agreement"] = {"enabled": True, "title": "Notice", "text": "Authorised staff only."}
        assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200
        basics = c.get("/appliance/api/status", headers=h).json()
        r = c.get("/appliance/api/config/export", headers=h)
        assert r.status_code == 200
        name = re.search(r'filename="([^"]+)"', r.headers["content-disposition"]).group(1)
        doc_text = r.text
    assert re.fullmatch(rf"tether-appliance-{re.escape(basics['appliance_version'])}-{basics['serial_number']}-"
                        rf"{re.escape(basics['base_software_version'])}-\d{{8}}T\d{{6}}Z\.yaml", name)
    doc = yaml.safe_load(doc_text)  # human-readable YAML
    assert doc["sections"]["networking"]["dns_servers"] == NETWORKING["dns_servers"]
    assert "Relay-secret-1" not in doc_text and "security.smtp.password" in doc["secrets_not_exported"]
    new = make_appliance()
    with new.client() as c:
        h = first_admin_login(c)
        # a damaged document is refused and changes nothing
        before = c.get("/appliance/api/networking", headers=h).json()
        r = c.post("/appliance/api/config/import", headers=h, files={"file": (name, b"{not: [yaml")})
        assert r.status_code == 400 and "not YAML" in r.json()["message"]
        bad = yaml.safe_load(doc_text)
        bad["sections"]["networking"]["dns_servers"] = ["300.1.1.1"]
        r = c.post("/appliance/api/config/import", headers=h, files={"file": (name, yaml.safe_dump(bad).encode())})
        assert r.status_code == 200
        assert r.json()["applied"] == ["monitoring", "security", "storage", "support"] and r.json()["refused"][0]["field"] == "dns_servers.0"
        assert c.get("/appliance/api/networking", headers=h).json() == before
        r = c.post("/appliance/api/config/import", headers=h, files={"file": (name, doc_text.encode())})
        assert r.status_code == 200 and r.json()["applied"] == ["networking", "security", "support", "storage", "monitoring"], r.text
        assert c.get("/appliance/api/networking", headers=h).json()["dns_servers"] == NETWORKING["dns_servers"]
        got = c.get("/appliance/api/security", headers=h).json()
        assert got["syslog"]["host"] == "192.0.2.77" and got["login_agreement"]["text"] == "Authorised staff only."
        assert c.get("/appliance/api/status", headers=h).json()["serial_number"] != basics["serial_number"]


def _files(root) -> set[str]:
    """The files under a data directory (SQLite's -wal/-shm come and go with connections)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


@pytest.mark.req("APPL-06", "SEC-03")
def test_factory_reset_wipes_everything_sensitive(make_appliance, tmp_path):
    a = make_appliance(site=True)
    with a.client() as c:
        ah = first_admin_login(c)
        sh = first_site_login(c)
        ok(c.post("/api/users", headers=sh, json={"username": "henry", "password": "Henry-secret-77"}), 201)
        sec = ok(c.get("/appliance/api/security", headers=ah))
        sec["smtp"] = {**sec["smtp"], "host": "mail.example.com", "password": "Smtp-secret-99"}
        ok(c.put("/appliance/api/security", headers=ah, json=sec))
        backup = c.post("/api/backup", headers=sh, json={"password": "Backup-secret-1"})
        assert backup.status_code == 200 and backup.content.startswith(b"nsb.json"), backup.text
        with tarfile.open(fileobj=io.BytesIO(backup.content)) as t:
            payload = t.extractfile("payload.tar.zst.age").read()  # the encrypted site: random-looking bytes
        kept = a.data / "backups" / "kept.nsb"  # a backup left on the appliance
        kept.write_bytes(backup.content)
        serial = ok(c.get("/appliance/api/status", headers=ah))["serial_number"]
        key = (a.data / "secret.key").read_bytes()
        import sqlite3
        con = sqlite3.connect(a.data / "site" / "site.db")
        hashes = [r[0] for r in con.execute("SELECT password_hash FROM users")]
        con.close()
        assert len(hashes) == 2  # admin and henry
        old_cert = (a.data / "builtin-cert.pem").read_text()
        (tmp_path / "old-cert.pem").write_text(old_cert)
        r = c.post("/appliance/api/factory-reset", headers=ah, json={"confirm": "yes"})
        assert r.status_code == 422 and r.json()["field"] == "confirm"
        r = c.post("/appliance/api/factory-reset", headers=ah, json={"confirm": "factory reset"})
        assert ok(r)["serial_number"] == serial
    # the old sessions and passwords are gone: a fresh appliance with admin / password, no site
    from tests.helpers import pinned_context
    import httpx, ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the built-in certificate is new: we look at it, we do not trust it
    with httpx.Client(base_url=a.url, verify=ctx) as c:
        assert c.get("/appliance/api/status", headers=ah).status_code == 401
        assert c.post("/appliance/api/session", json={"username": "admin", "password": NEW_ADMIN_PASSWORD}).status_code == 401
        tok = c.post("/appliance/api/session", json={"username": "admin", "password": "password"}).json()
        assert tok["must_change_password"] is True
        assert c.get("/health").status_code == 503
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        with httpx.Client(base_url=a.url, verify=pinned_context(tmp_path / "old-cert.pem")) as c:
            c.get("/health")  # the old built-in certificate is no longer presented
    secrets_ = [key, b"Smtp-secret-99", b"Henry-secret-77", old_cert.split("\n")[1].encode(), payload[-64:]]
    secrets_ += [h.encode() for h in hashes]
    for p in a.data.rglob("*"):
        if p.is_file():
            blob = p.read_bytes()
            for s in secrets_:
                assert s not in blob, (p, s[:20])
    # nothing but what a fresh appliance holds: no site, no backup (kept or being downloaded)
    assert not kept.exists() and not list(a.data.rglob("*.nsb"))
    assert _files(a.data) == _files(make_appliance().data)
    assert (a.data / "secret.key").read_bytes() != key
    with a.client() as c:  # the new built-in certificate is published for pinning clients
        assert c.get("/appliance/api/status", headers={"Authorization": "Bearer " + tok["token"]}).status_code == 403
        h = first_admin_login(c)  # admin / password, then a new one
        assert ok(c.get("/appliance/api/status", headers=h))["serial_number"] == serial  # the hardware's


@pytest.mark.req("APPL-06")
def test_shutdown_stops_the_process_cleanly(appliance):
    with appliance.client() as c:
        h = first_admin_login(c)
        r = c.post("/appliance/api/shutdown", headers=h)
        assert r.status_code == 200
    assert appliance.proc.wait(15) == 0
