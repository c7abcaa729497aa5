"""The S3-compatible backend of the site's object stores (OPS-06), through
boto3's low-level client.

Object names (docs/formats/object-storage.md): ``<prefix><kind>/<sha[:2]>/
<sha[2:4]>/<sha256>`` with kind ``files`` or ``recordings``, the local
layout's. An upload is streamed and hashed as it goes, never held whole: up
to one part (8 MiB) is buffered; an object that fits is written with one
PUT under its final name once its hash is known; a larger one goes up as a
multipart upload to ``<prefix>.tmp/<random>``, completed only when the last
part is in, copied server-side to its final name and the temporary object
deleted. An interrupted upload leaves no object under ``files/`` or
``recordings/`` (an incomplete multipart upload is aborted, and is never
listed as an object anyway). A download is a streamed GET, a range a ranged
GET. Every failure of the endpoint is ``Unavailable`` (HTTP 503, exit 8)
naming what failed; nothing in it carries the secret key."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from typing import AsyncIterable, Iterable, Iterator

from tether.core.errors import Invalid, NotFound, TooLarge, Unavailable
from tether.site.blobs import write_all

CHUNK = 1 << 20
PART = 8 << 20  # S3's minimum part is 5 MiB (but the last)
COPY_MAX = 5 << 30  # CopyObject's limit; beyond it, UploadPartCopy in ranges
_SHA = re.compile(r"^[0-9a-f]{64}$")
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
            "InvalidToken", "ExpiredToken", "AccountProblem"}


def connect(cfg, secret_key: str | None, ca_file=None):
    """A boto3 S3 client for ``cfg`` (``appliance.settings.S3Bucket``): path-style addressing (works with
    every S3-compatible server), short connect timeout, two attempts."""
    import boto3
    from botocore.config import Config

    if not cfg.endpoint_url or not cfg.bucket or not cfg.access_key or not secret_key:
        raise Invalid("storage: endpoint_url, bucket, access_key and secret_key are required for S3", field="s3")
    verify = str(ca_file) if ca_file else bool(cfg.verify_tls)
    return boto3.client(
        "s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region or "us-east-1",
        aws_access_key_id=cfg.access_key, aws_secret_access_key=secret_key, verify=verify,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, connect_timeout=5,
                      read_timeout=60, retries={"max_attempts": 2, "mode": "standard"}))


def failure(exc: Exception, what: str, cfg) -> Unavailable:
    """``exc`` from botocore as the error a user reads: what failed, where, and why (never the secret)."""
    from botocore import exceptions as bx

    where = f"bucket {cfg.bucket!r} at {cfg.endpoint_url}"
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code, msg = str(err.get("Code", "")), str(err.get("Message", "") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (code == "404" and what.startswith("check")):
            return Unavailable(f"{what}: {where} does not exist", hint="create the bucket or correct its name")
        if code in _REFUSED or status == 403:
            return Unavailable(f"{what}: {where} refused the request ({code or status}{': ' + msg if msg else ''})",
                               hint="check the access key, the secret key and the bucket policy (it must allow "
                                    "GetObject, PutObject, DeleteObject and ListBucket)")
        return Unavailable(f"{what}: {where} answered {code or status}{': ' + msg if msg else ''}")
    if isinstance(exc, bx.SSLError):
        return Unavailable(f"{what}: the TLS certificate of {cfg.endpoint_url} could not be verified",
                           hint="give the endpoint's CA certificate (ca_pem) or fix the endpoint's certificate")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ReadTimeoutError,
                        bx.ConnectTimeoutError, bx.HTTPClientError)):
        return Unavailable(f"{what}: {cfg.endpoint_url} cannot be reached ({type(exc).__name__})",
                           hint="check that the object store is up and reachable from this appliance")
    return Unavailable(f"{what}: {where} failed ({type(exc).__name__})")


def _is_missing(exc) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and (
        exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")
        or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404)


def check_bucket(client, cfg) -> None:
    """Reachable and writable: HEAD the bucket, then write, read back and delete a probe object under
    ``<prefix>.tether-check/``. Raises ``Unavailable`` naming what failed."""
    from botocore.exceptions import BotoCoreError, ClientError

    probe = f"{cfg.prefix}.tether-check/{secrets.token_hex(8)}"
    body = secrets.token_bytes(32)
    step = "check: reaching the bucket"
    try:
        client.head_bucket(Bucket=cfg.bucket)
        step = "check: writing a test object"
        client.put_object(Bucket=cfg.bucket, Key=probe, Body=body)
        step = "check: reading the test object back"
        got = client.get_object(Bucket=cfg.bucket, Key=probe)["Body"].read()
        step = "check: deleting the test object"
        client.delete_object(Bucket=cfg.bucket, Key=probe)
    except (BotoCoreError, ClientError) as exc:
        raise failure(exc, step, cfg) from None
    if got != body:
        raise Unavailable(f"check: bucket {cfg.bucket!r} at {cfg.endpoint_url} gave back other bytes than written")


class _Writer:
    def __init__(self, store: "S3Store", max_bytes: int | None, field: str):
        self.store, self.max_bytes, self.field = store, max_bytes, field
        self.h = hashlib.sha256()
        self.size = 0
        self.buf = bytearray()
        self.tmp_key = f"{store.cfg.prefix}.tmp/{secrets.token_hex(12)}"
        self.upload_id: str | None = None
        self.parts: list[dict] = []
        self.completed = False

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise TooLarge(f"{self.field}: larger than the limit of {self.max_bytes} bytes", field=self.field,
                           hint="raise file-store max_upload_bytes or upload a smaller file")
        self.h.update(chunk)
        self.buf += chunk
        while len(self.buf) >= PART:
            self._part(bytes(self.buf[:PART]))
            del self.buf[:PART]

    def _part(self, data: bytes) -> None:
        s = self.store
        with s.errors("upload"):
            if self.upload_id is None:
                self.upload_id = s.client.create_multipart_upload(Bucket=s.bucket, Key=self.tmp_key)["UploadId"]
            n = len(self.parts) + 1
            r = s.client.upload_part(Bucket=s.bucket, Key=self.tmp_key, UploadId=self.upload_id, PartNumber=n,
                                     Body=data)
            self.parts.append({"ETag": r["ETag"], "PartNumber": n})

    def finish(self) -> tuple[str, int]:
        s = self.store
        sha = self.h.hexdigest()
        key = s.key(sha)
        if self.upload_id is None:  # it fits in one part: one PUT under its final name
            if not s.exists(sha):
                with s.errors("upload"):
                    s.client.put_object(Bucket=s.bucket, Key=key, Body=bytes(self.buf))
            self.buf = bytearray()
            return sha, self.size
        if self.buf:
            self._part(bytes(self.buf))
            self.buf = bytearray()
        with s.errors("upload"):
            s.client.complete_multipart_upload(Bucket=s.bucket, Key=self.tmp_key, UploadId=self.upload_id,
                                               MultipartUpload={"Parts": self.parts})
            self.completed = True
            if not s.exists(sha):
                s.copy(self.tmp_key, key, self.size)
            s.client.delete_object(Bucket=s.bucket, Key=self.tmp_key)
        return sha, self.size

    def abort(self) -> None:
        s = self.store
        try:
            if self.completed:
                s.client.delete_object(Bucket=s.bucket, Key=self.tmp_key)
            elif self.upload_id is not None:
                s.client.abort_multipart_upload(Bucket=s.bucket, Key=self.tmp_key, UploadId=self.upload_id)
        except Exception:  # noqa: BLE001 - the endpoint may be what failed; an orphan part expires by lifecycle
            pass
        self.buf = bytearray()


class _Errors:
    def __init__(self, store: "S3Store", what: str):
        self.store, self.what = store, what

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        from botocore.exceptions import BotoCoreError, ClientError

        if exc is not None and isinstance(exc, (BotoCoreError, ClientError)):
            raise failure(exc, f"{self.what} ({self.store.kind})", self.store.cfg) from None
        return False


class S3Store:
    """One kind's objects in the bucket; the same interface as ``site.blobs.BlobStore``."""

    blocking = True

    def __init__(self, client, cfg, kind: str, spool=None):
        self.client, self.cfg, self.kind = client, cfg, kind
        self.root = spool  # local room for failover sync's resumable parts (failover/blobs.py)
        self.bucket = cfg.bucket
        self.base = f"{cfg.prefix}{kind}/"

    def errors(self, what: str) -> _Errors:
        return _Errors(self, what)

    def key(self, sha: str) -> str:
        if not _SHA.match(sha):
            raise Invalid(f"{sha!r} is not a SHA-256 hex digest", field="sha256")
        return f"{self.base}{sha[:2]}/{sha[2:4]}/{sha}"

    def describe(self) -> str:
        return f"s3 bucket {self.bucket!r} at {self.cfg.endpoint_url} ({self.base})"

    def local_path(self, sha: str):
        return None

    def _head(self, sha: str) -> dict | None:
        key = self.key(sha)
        with self.errors("lookup"):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if _is_missing(exc):
                    return None
                raise

    def exists(self, sha: str) -> bool:
        return self._head(sha) is not None

    def size(self, sha: str) -> int | None:
        h = self._head(sha)
        return None if h is None else int(h["ContentLength"])

    def writer(self, max_bytes: int | None = None, field: str = "file") -> _Writer:
        return _Writer(self, max_bytes, field)

    def put_stream(self, chunks: Iterable[bytes], max_bytes: int | None = None, field: str = "file") -> tuple[str, int]:
        return write_all(self.writer(max_bytes, field), chunks)

    async def put_async(self, chunks: AsyncIterable[bytes], max_bytes: int | None = None,
                        field: str = "file") -> tuple[str, int]:
        """Chunks from the event loop; each part goes up on a worker thread, so the loop never waits on S3."""
        w = _Writer(self, max_bytes, field)
        try:
            async for chunk in chunks:
                if len(w.buf) + len(chunk) >= PART:
                    await asyncio.to_thread(w.write, chunk)
                else:
                    w.write(chunk)
            return await asyncio.to_thread(w.finish)
        except BaseException:
            await asyncio.to_thread(w.abort)
            raise

    def _get(self, sha: str, rng: str | None = None):
        kw = {"Range": rng} if rng else {}
        with self.errors("download"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self.key(sha), **kw)["Body"]
            except Exception as exc:
                if _is_missing(exc):
                    raise NotFound(f"object {sha} is missing from {self.describe()}") from None
                raise

    def _stream(self, body) -> Iterator[bytes]:
        try:
            with self.errors("download"):
                for chunk in body.iter_chunks(CHUNK):
                    yield chunk
        finally:
            body.close()

    def read(self, sha: str) -> Iterator[bytes]:
        return self._stream(self._get(sha))

    def read_range(self, sha: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (a ranged GET)."""
        return self._stream(self._get(sha, f"bytes={start}-{end}"))

    def open(self, sha: str):
        """A file-like reader (``.read(n)``, ``.close()``) of the object, for the backup writer."""
        return self._get(sha)

    def copy(self, src_key: str, dest_key: str, size: int) -> None:
        if size <= COPY_MAX:
            self.client.copy_object(Bucket=self.bucket, Key=dest_key, CopySource={"Bucket": self.bucket, "Key": src_key})
            return
        uid = self.client.create_multipart_upload(Bucket=self.bucket, Key=dest_key)["UploadId"]
        parts, step = [], 1 << 30
        try:
            for n, start in enumerate(range(0, size, step), 1):
                r = self.client.upload_part_copy(Bucket=self.bucket, Key=dest_key, UploadId=uid, PartNumber=n,
                                                 CopySource={"Bucket": self.bucket, "Key": src_key},
                                                 CopySourceRange=f"bytes={start}-{min(start + step, size) - 1}")
                parts.append({"ETag": r["CopyPartResult"]["ETag"], "PartNumber": n})
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=dest_key, UploadId=uid,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=dest_key, UploadId=uid)
            raise

    def remove(self, sha: str) -> None:
        with self.errors("delete"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(sha))

    def shas(self) -> Iterator[str]:
        with self.errors("listing"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.base):
                for obj in page.get("Contents", []):
                    name = obj["Key"].rsplit("/", 1)[-1]
                    if _SHA.match(name):
                        yield name
