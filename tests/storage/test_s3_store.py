"""OPS-06: the S3 backend of the object stores against moto in server mode,
without an appliance: the same answers as the local backend (ranges, sizes,
listing), a size limit crossed in the middle of a multipart upload leaves
nothing, and a range is a ranged GET (the reporting API's and failover
sync's downloads)."""

from __future__ import annotations

import hashlib
import os

import pytest

from tether.appliance.settings import S3Bucket
from tether.core.errors import NotFound, TooLarge
from tether.site.blobs import BlobStore, Download
from tether.site.storage.s3 import S3Store, connect
from tests.s3server import MotoServer

pytestmark = pytest.mark.req("OPS-06")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    with MotoServer(bucket="store-test") as m:
        cfg = S3Bucket(endpoint_url=m.endpoint_url, bucket=m.bucket, prefix="p/", access_key="testing")
        yield m, S3Store(connect(cfg, "testing"), cfg, "files"), BlobStore(tmp_path_factory.mktemp("local"), "files")


def test_both_backends_answer_the_same(stores):
    m, s3, local = stores
    body = os.urandom(9 << 20) + b"tail"  # two parts in the bucket
    sha = hashlib.sha256(body).hexdigest()
    for store in (s3, local):
        assert store.put_stream(iter([body[i:i + 65536] for i in range(0, len(body), 65536)])) == (sha, len(body))
        assert store.size(sha) == len(body) and store.exists(sha)
        assert b"".join(store.read(sha)) == body
        assert b"".join(store.read_range(sha, 5, 9)) == body[5:10]
        assert b"".join(store.read_range(sha, len(body) - 4, len(body) - 1)) == b"tail"
        d = Download(store.local_path(sha), "x.bin", "application/octet-stream", store, sha, len(body))
        assert b"".join(d.chunks(1 << 20)) == body[1 << 20:]
        assert sha in list(store.shas())
        assert store.size("0" * 64) is None
        with pytest.raises(NotFound):
            list(store.read("0" * 64))
    assert m.objects() == {f"p/files/{sha[:2]}/{sha[2:4]}/{sha}": len(body)}


def test_a_limit_crossed_mid_upload_leaves_nothing(stores):
    m, s3, _ = stores
    before = m.objects()
    with pytest.raises(TooLarge):
        s3.put_stream(iter([os.urandom(1 << 20)] * 20), max_bytes=18 << 20)  # two parts up, then over
    assert m.objects() == before
    assert not m.client().list_multipart_uploads(Bucket=m.bucket).get("Uploads")  # aborted
