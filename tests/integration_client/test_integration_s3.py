"""IC-03 into an S3-compatible bucket (moto in server mode on loopback):
killed with SIGKILL in the middle of a multipart upload, no object is
visible and the next pass resumes the upload and completes it only once the
hash matches; a bucket that does not exist, wrong credentials, a site
version the program does not support and a full local disk are refused
with a clear message and exit code, and leave nothing behind."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from tests.integration_client.conftest import files, integration
from tests.s3server import MotoServer


def _self_signed() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the appliance")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _dest(s3, bucket: str) -> str:
    return f'type = "s3"\nbucket = "{bucket}"\nprefix = "site1"\nendpoint_url = "{s3.endpoint_url}"\npart_size_mib = 5'


@pytest.mark.req("IC-03")
def test_upload_killed_mid_multipart_resumes_and_completes_after_the_hash(site_env, s3_server, tmp_path):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="archive")
    cfg = site_env.config(tmp_path / "integration.toml", dest=_dest(s3_server, "archive"), state=tmp_path / "st")
    s = site_env.session(customer_name="to the bucket")
    rec, sha = site_env.recording(s["lsid"], "session", 12 << 20)  # three parts of 5 MiB
    site_env.end(s["lsid"])
    env = {**s3_server.env, "TETHER_CRASH_AT": "1", "TETHER_CRASH_ONLY": "integration.upload.part"}
    r = integration("--config", str(cfg), "sync", "--once", "--kind", "recordings", env=env)
    assert r.returncode == -9, r.stderr  # killed right after the first part went up
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="archive").get("Contents", [])]
    assert not any("recordings/" in k for k in keys), keys  # an incomplete upload is not an object
    uploads = s3.list_multipart_uploads(Bucket="archive").get("Uploads", [])
    assert len(uploads) == 1 and uploads[0]["Key"].endswith(f"recording-{rec['id']}-session.bin")
    upload_id = uploads[0]["UploadId"]
    assert len(s3.list_parts(Bucket="archive", Key=uploads[0]["Key"], UploadId=upload_id)["Parts"]) == 1

    r = integration("--config", str(cfg), "sync", "--once", "--kind", "recordings", "--kind", "sessions",
                    env=s3_server.env)
    assert r.returncode == 0, r.stderr
    assert s3.list_multipart_uploads(Bucket="archive").get("Uploads", []) == []
    key = uploads[0]["Key"]
    obj = s3.get_object(Bucket="archive", Key=key)
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == sha and obj["Metadata"]["sha256"] == sha
    assert obj["ETag"].strip('"').endswith("-3")  # the resumed upload of three parts, completed once
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="archive")["Contents"]]
    assert sum(k.endswith(f"recording-{rec['id']}-session.bin") for k in keys) == 1
    assert f"site1/sessions/" in " ".join(keys) and any(s["lsid"] in k for k in keys)
    assert json.loads(integration("--config", str(cfg), "status", "--json").stdout)["uploads_in_progress"] == []


@pytest.mark.req("IC-03")
def test_a_backup_whose_upload_was_killed_is_finished_not_taken_again(site_env, s3_server, tmp_path):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="backups-archive")
    cfg = site_env.config(tmp_path / "integration.toml", dest=_dest(s3_server, "backups-archive"),
                          state=tmp_path / "st")
    env = {**s3_server.env, "TETHER_CRASH_AT": "1", "TETHER_CRASH_ONLY": "integration.upload.part"}
    r = integration("--config", str(cfg), "sync", "--once", "--kind", "backups", env=env)
    assert r.returncode == -9 and "site backup ..." in r.stderr, r.stderr
    [upload] = s3.list_multipart_uploads(Bucket="backups-archive")["Uploads"]
    assert s3.list_objects_v2(Bucket="backups-archive").get("KeyCount", 0) == 0
    r = integration("--config", str(cfg), "sync", "--once", "--kind", "backups", env=s3_server.env)
    assert r.returncode == 0, r.stderr
    assert "site backup ..." not in r.stderr  # no new backup was taken: the staged one was finished
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="backups-archive")["Contents"]]
    assert keys == [upload["Key"]] and keys[0].endswith(".nsb")
    obj = s3.get_object(Bucket="backups-archive", Key=keys[0])
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == obj["Metadata"]["sha256"]
    assert s3.list_multipart_uploads(Bucket="backups-archive").get("Uploads", []) == []


@pytest.mark.req("IC-03")
def test_a_bucket_that_does_not_exist_is_refused_and_recorded(site_env, s3_server, tmp_path):
    cfg = site_env.config(tmp_path / "integration.toml", dest=_dest(s3_server, "no-such-bucket"),
                          state=tmp_path / "st")
    r = integration("--config", str(cfg), "sync", "--once", "--kind", "sessions", env=s3_server.env)
    assert r.returncode == 9, r.stderr
    assert "bucket 'no-such-bucket' does not exist" in r.stderr and "Try:" in r.stderr
    st = json.loads(integration("--config", str(cfg), "status", "--json").stdout)
    assert "does not exist" in st["kinds"]["sessions"]["last_error"]["message"]


@pytest.mark.req("IC-03")
def test_a_bucket_whose_policy_refuses_writes_is_refused_and_nothing_is_left(site_env, tmp_path):
    with MotoServer(host="127.0.34.3", auth_after=4) as server:  # IAM checked from the 5th request on
        server.client().create_bucket(Bucket="read-only-archive")
        iam = server.client("iam")
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
                "s3:ListBucket", "s3:GetObject", "s3:ListBucketMultipartUploads"]}]}))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        creds = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        cfg = site_env.config(tmp_path / "integration.toml", dest=_dest(server, "read-only-archive"),
                              state=tmp_path / "st")
        s = site_env.session(customer_name="refused by the bucket")
        site_env.recording(s["lsid"], "session", 100_000)
        site_env.end(s["lsid"])
        r = integration("--config", str(cfg), "sync", "--once", "--kind", "sessions", "--kind", "recordings",
                        env=creds)
        assert r.returncode == 9, r.stderr
        assert "the bucket 'read-only-archive' refused it (AccessDenied" in r.stderr and "Try:" in r.stderr
        reader = server.client(key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
        assert reader.list_objects_v2(Bucket="read-only-archive").get("KeyCount", 0) == 0
        assert reader.list_multipart_uploads(Bucket="read-only-archive").get("Uploads", []) == []
    st = json.loads(integration("--config", str(cfg), "status", "--json").stdout)
    assert "AccessDenied" in st["kinds"]["sessions"]["last_error"]["message"]
    assert "AccessDenied" in st["kinds"]["recordings"]["last_error"]["message"]


@pytest.mark.req("IC-03")
def test_wrong_credentials_and_an_unsupported_site_version_are_refused(site_env, tmp_path):
    out = tmp_path / "archive"
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret\n")
    cfg = site_env.config(tmp_path / "bad.toml", dest=f'path = "{out}"', secret_file=wrong)
    r = integration("--config", str(cfg), "sync", "--once")
    assert r.returncode == 3, r.stderr
    assert f"the site refused API client {site_env.client_id!r}" in r.stderr and "Try:" in r.stderr
    assert files(out) == [] if out.exists() else True
    cfg = site_env.config(tmp_path / "good.toml", dest=f'path = "{out}"')
    # a pinned certificate that is not the appliance's: refused before any credential is sent
    other = tmp_path / "other.pem"
    other.write_bytes(_self_signed())
    r = integration("--config", str(cfg), "--pinned-cert", str(other), "sync", "--once")
    assert r.returncode == 8 and "the site's certificate is not trusted" in r.stderr, r.stderr
    # the secret from an environment variable (a flag over the file's client_secret_file)
    r = integration("--config", str(cfg), "--client-secret-env", "WRONG_SECRET", "sync", "--once",
                    env={"WRONG_SECRET": "also-not-it"})
    assert r.returncode == 3, r.stderr
    # this program built for reporting API 2 only (its compatibility table, through the test seam),
    # against the real site, which speaks API 1
    r = integration("--config", str(cfg), "sync", "--once", env={"TETHER_INTEGRATION_REPORTING_API": "2"})
    assert r.returncode == 5, r.stderr
    from tether import __version__

    assert f"the site runs Tether {__version__} (reporting API 1); tether-integration {__version__} " \
           f"(reporting API 2) does not support it" in r.stderr
    assert not out.exists() or files(out) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs mounted for the test (root only), unmounted after."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.req("IC-03")
def test_a_full_local_disk_is_refused_and_leaves_no_partial_file(site_env, small_disk, tmp_path):
    cfg = site_env.config(tmp_path / "integration.toml", dest=f'path = "{small_disk}"', state=tmp_path / "st")
    s = site_env.session(customer_name="too big for the disk")
    rec, _ = site_env.recording(s["lsid"], "session", 2 << 20)
    site_env.end(s["lsid"])
    r = integration("--config", str(cfg), "sync", "--once", "--kind", "recordings")
    assert r.returncode == 9, r.stderr
    assert "no space left on the device" in r.stderr
    assert not any(f.endswith(f"recording-{rec['id']}-session.bin") for f in files(small_disk))
    assert not any(".tether-integration-tmp" in f for f in files(small_disk))
    st = json.loads(integration("--config", str(cfg), "status", "--json").stdout)
    assert "no space left" in st["kinds"]["recordings"]["last_error"]["message"]


@pytest.mark.req("IC-03")
def test_trusting_a_ca_checks_the_name_the_site_presents(site_env, tmp_path):
    """Last in the module: the appliance's address presents a CA-issued certificate from here on."""
    import datetime as dt

    from tests.certs.conftest import Pki
    from tests.certs.e2e import by_name, p12, upload
    from tests.integration_client.conftest import HOST

    pki = Pki(start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    root = pki.root("Integration Root CA")
    c, ah = site_env.c, site_env.ah
    assert upload(c, ah, p12(pki.leaf(root, ips=(HOST,)), [root]), "ca-issued").status_code == 201
    r = c.put(f"/appliance/api/certificate-assignments/{HOST}", headers=ah, json={"id": by_name(c, ah, "ca-issued")["id"]})
    assert r.status_code == 200, r.text
    ca = tmp_path / "root.pem"
    ca.write_text(root.pem)
    out = tmp_path / "archive"
    cfg = site_env.config(tmp_path / "integration.toml", dest=f'path = "{out}"', state=tmp_path / "st")
    r = integration("--config", str(cfg), "--ca-file", str(ca), "sync", "--once", "--kind", "sessions")
    assert r.returncode == 0, r.stderr  # the CA-issued certificate names this address
    other = pki.root("Some Other CA")
    (tmp_path / "other.pem").write_text(other.pem)
    r = integration("--config", str(cfg), "--ca-file", str(tmp_path / "other.pem"), "sync", "--once",
                    "--kind", "sessions")
    assert r.returncode == 8 and "not trusted" in r.stderr, r.stderr
    r = integration("--config", str(cfg), "sync", "--once", "--kind", "sessions")  # the old pin no longer matches
    assert r.returncode == 8, r.stderr
