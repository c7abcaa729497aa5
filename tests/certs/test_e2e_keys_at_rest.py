"""SEC-03 for certificate keys: after the built-in certificate is made, a
.p12 is imported, a self-signed certificate generated, a CSR's key created,
a certificate assigned to a listener (key handed to OpenSSL) and exported,
no private key appears in clear anywhere under the data directory: not as
PKCS#8 DER, not as the bare private scalar, not as PEM base64, in any file
(SQLite database, WAL and shared memory included), neither while the
appliance runs nor after it stops. The SMTP password is checked too."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tether.certs.pending import certificate_requests
from tether.certs.store import KEY_PURPOSE, CertStore
from tether.core.db import make_engine, sqlite_url
from tether.core.secretbox import SecretBox

from tests.helpers import first_admin_login

from .e2e import TWO, by_name, live_pki, p12, upload

SMTP_SECRET = "smtp-Secret-at-rest-42"


def patterns(key_der: bytes) -> dict[str, bytes]:
    key = serialization.load_der_private_key(key_der, None)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    b64 = base64.b64encode(key_der)
    return {"pkcs8 der": key_der, "private scalar": scalar, "pem base64": b64[:64], "pem base64 tail": b64[-48:]}


def files_under(root: Path) -> list[Path]:
    out = []
    for d, _dirs, names in os.walk(root):
        out += [Path(d) / n for n in names]
    return out


def scan(root: Path, secrets: dict[str, bytes], extra: list[Path] = ()) -> list[Path]:
    files = files_under(root) + list(extra)
    for f in files:
        try:
            data = f.read_bytes()
        except FileNotFoundError:  # a file SQLite removed meanwhile
            continue
        for label, needle in secrets.items():
            assert needle not in data, f"{label} found in {f}"
    return files


def sealed_keys(data: Path) -> dict[str, bytes]:
    """The clear keys, unsealed the way the appliance does (the test holds secret.key)."""
    box = SecretBox.load(data / "secret.key")
    engine = make_engine(sqlite_url(data / "appliance.db"))
    try:
        store = CertStore(engine, box)
        keys = {f"certificate {r['name']}": store.private_key_der(r) for r in store.list() if r["key_sealed"]}
        with engine.connect() as c:
            for r in c.execute(certificate_requests.select()):
                keys[f"request {r.name}"] = box.unseal(r.key_sealed, KEY_PURPOSE)
    finally:
        engine.dispose()
    return keys


@pytest.mark.req("SEC-03")
def test_no_private_key_in_clear_under_the_data_directory(make_appliance, tmp_path):
    live = live_pki()
    a = make_appliance(listen=TWO)
    with a.client() as c:
        h = first_admin_login(c)
        assert upload(c, h, p12(live.leaf, [live.inter, live.root]), "imported").status_code == 201
        assert c.post("/appliance/api/certificates/self-signed", headers=h,
                      json={"name": "generated", "fqdn": "gen.example.com"}).status_code == 201
        assert c.post("/appliance/api/certificate-requests", headers=h,
                      json={"name": "pending", "fqdn": "pending.example.com"}).status_code == 201
        imported = by_name(c, h, "imported")
        assert c.put("/appliance/api/certificate-assignments/127.0.0.2", headers=h,
                     json={"id": imported["id"]}).status_code == 200
        assert c.post(f"/appliance/api/certificates/{imported['id']}/export", headers=h,
                      json={"passphrase": "Export-pass-1"}).status_code == 200
        sec = c.get("/appliance/api/security", headers=h).json()
        sec["smtp"].update(host="127.0.0.1", username="tether", password=SMTP_SECRET, admin_email="a@example.com")
        assert c.put("/appliance/api/security", headers=h, json=sec).status_code == 200

        keys = sealed_keys(a.data)
        assert set(keys) == {"certificate Built-in certificate", "certificate imported", "certificate generated",
                             "request pending"}
        assert keys["certificate imported"] == live.leaf.key_der  # the unsealing above is the real one
        secrets = {f"{name}: {label}": needle for name, der in keys.items() for label, needle in
                   patterns(der).items()}
        secrets["smtp password"] = SMTP_SECRET.encode()
        files = scan(a.data, secrets, [a.log_path])  # while running
        names = {f.name for f in files}
        assert {"appliance.db", "appliance.db-wal", "secret.key"} <= names, names
        assert any(f.stat().st_size > 0 for f in files if f.name == "appliance.db-wal")
        assert not list((a.data / "run").glob("*.pem"))  # the hand-over files to OpenSSL are gone
    a.stop()
    scan(a.data, secrets, [a.log_path])  # and after a clean stop (WAL checkpointed)


def test_the_scan_finds_a_planted_key(tmp_path):
    """The scanner itself works: a key written in clear (here as PEM) is found."""
    live = live_pki()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "leak.pem").write_bytes(live.leaf.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(AssertionError, match="pem base64 found in .*leak.pem"):
        scan(tmp_path, patterns(live.leaf.key_der))
