"""Where the integration writes: a local folder or an S3-compatible bucket.

Every write is atomic. In a folder, a file is written under
``<root>/.tether-integration-tmp/``, fsynced and renamed into place (then the
directory is fsynced), so a reader never sees a partial file; temporaries a
killed pass left are removed at the start of the next. In a bucket, a file
goes up as a multipart upload that is completed only once the SHA-256 of
the bytes sent matches the one expected; an incomplete multipart upload is
never visible as an object, and an interrupted one is resumed (its parts
listed, the ones whose ETag matches our bytes kept) by the next pass. The
object's SHA-256 is stored in its metadata (``x-amz-meta-sha256``).

A write the destination refuses (bucket policy, missing bucket, full disk)
is a ``DestinationError`` (exit 9) and nothing is left behind."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Protocol

from tether.core.crashpoints import checkpoint
from tether.core.errors import IntegrityError, TetherError

from .config import Destination as DestConfig

TMP = ".tether-integration-tmp"
Progress = Callable[[int, int], None]


class DestinationError(TetherError):
    exit_code, code = 9, "destination"


class Destination(Protocol):
    def describe(self) -> str: ...
    def list(self, prefix: str) -> list[str]: ...
    def exists(self, key: str) -> bool: ...
    def put_file(self, key: str, src: Path, sha256: str, progress: Progress, uploads: dict) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def cleanup(self) -> None: ...


def fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows; NTFS renames are journaled
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_error(exc: OSError, where: str) -> DestinationError:
    if exc.errno == errno.ENOSPC:
        return DestinationError(f"{where}: no space left on the device", hint="free space or move the destination")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DestinationError(f"{where}: not allowed to write ({exc.strerror})",
                                hint="check the folder's owner and permissions")
    return DestinationError(f"{where}: {exc.strerror or exc}")


class Folder:
    def __init__(self, root: Path):
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def cleanup(self) -> None:
        shutil.rmtree(self.root / TMP, ignore_errors=True)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and TMP not in p.parts)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _place(self, key: str, write: Callable[[object], None]) -> None:
        final = self._path(key)
        tmpdir = self.root / TMP
        tmp = tmpdir / f"{final.name}.{secrets.token_hex(4)}"
        try:
            tmpdir.mkdir(parents=True, exist_ok=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            checkpoint("integration.folder.written")
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise disk_error(exc, f"writing {final}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_file(self, key: str, src: Path, sha256: str, progress: Progress, uploads: dict) -> None:
        total = src.stat().st_size

        def copy(f) -> None:
            h, n = hashlib.sha256(), 0
            with open(src, "rb") as s:
                while chunk := s.read(1 << 20):
                    f.write(chunk)
                    h.update(chunk)
                    n += len(chunk)
                    progress(n, total)
            if h.hexdigest() != sha256:
                raise IntegrityError(f"{src.name}: SHA-256 {h.hexdigest()} is not the expected {sha256}")

        self._place(key, copy)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._place(key, lambda f: f.write(data))

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise disk_error(exc, f"deleting {key}") from None


class Bucket:
    def __init__(self, cfg: DestConfig):
        import boto3
        from botocore.config import Config as BotoConfig

        self.cfg, self.bucket, self.prefix = cfg, cfg.bucket, cfg.prefix
        kw = {}
        if cfg.access_key_id:
            kw = {"aws_access_key_id": cfg.access_key_id, "aws_secret_access_key": cfg.secret_access_key}
        self.s3 = boto3.client("s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region or "us-east-1",
                               config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"},
                                                 connect_timeout=10, read_timeout=60), **kw)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {self.cfg.endpoint_url}" if self.cfg.endpoint_url else "")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn, **kw):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kw)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            msg = exc.response.get("Error", {}).get("Message", "")
            if code == "NoSuchBucket":
                raise DestinationError(f"{what}: bucket {self.bucket!r} does not exist",
                                       hint="create the bucket, or fix destination.bucket") from None
            if code in ("AccessDenied", "Forbidden", "403"):
                raise DestinationError(f"{what}: the bucket {self.bucket!r} refused it (AccessDenied{': ' + msg if msg else ''})",
                                       hint="the credentials need s3:PutObject, s3:GetObject, s3:ListBucket, "
                                            "s3:DeleteObject and s3:AbortMultipartUpload on it") from None
            raise DestinationError(f"{what}: {code} {msg}".strip()) from None
        except BotoCoreError as exc:
            raise DestinationError(f"{what}: {exc}", hint="check destination.endpoint_url") from None

    def cleanup(self) -> None:
        """Nothing: interrupted multipart uploads are resumed by put_file (they are never visible)."""

    def list(self, prefix: str) -> list[str]:
        keys, token = [], None
        strip = len(self.prefix) + 1 if self.prefix else 0
        while True:
            kw = {"Prefix": self._key(prefix)} | ({"ContinuationToken": token} if token else {})
            r = self._call(f"listing {prefix}", self.s3.list_objects_v2, **kw)
            keys += [o["Key"][strip:] for o in r.get("Contents", [])]
            if not r.get("IsTruncated"):
                return sorted(keys)
            token = r["NextContinuationToken"]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            return self._call(f"checking {key}", self.s3.head_object, Key=self._key(key)) is not None

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(f"writing {key}", self.s3.put_object, Key=self._key(key), Body=data,
                   Metadata={"sha256": hashlib.sha256(data).hexdigest()})

    def _existing_parts(self, key: str, upload_id: str) -> dict[int, str] | None:
        from botocore.exceptions import ClientError

        parts, marker = {}, 0
        try:
            while True:
                r = self.s3.list_parts(Bucket=self.bucket, Key=self._key(key), UploadId=upload_id,
                                       PartNumberMarker=marker)
                parts.update({p["PartNumber"]: p["ETag"].strip('"') for p in r.get("Parts", [])})
                if not r.get("IsTruncated"):
                    return parts
                marker = r["NextPartNumberMarker"]
        except ClientError:
            return None  # the upload is gone (completed, aborted or expired): start again

    def put_file(self, key: str, src: Path, sha256: str, progress: Progress, uploads: dict) -> None:
        """Multipart upload of ``src`` as ``key``, resumed from ``uploads[key]`` (an upload id a killed pass
        left, which the caller persists); completed only when the bytes sent hash to ``sha256``."""
        total, size = src.stat().st_size, self.cfg.part_size
        upload_id = uploads.get(key)
        have = self._existing_parts(key, upload_id) if upload_id else None
        if have is None:
            upload_id = self._call(f"starting the upload of {key}", self.s3.create_multipart_upload,
                                   Key=self._key(key), Metadata={"sha256": sha256})["UploadId"]
            uploads[key] = upload_id
            have = {}
            checkpoint("integration.upload.started")
        h, done, parts, n = hashlib.sha256(), 0, [], 1
        with open(src, "rb") as f:
            while True:
                chunk = f.read(size)
                if not chunk and n > 1:
                    break
                h.update(chunk)
                md5 = hashlib.md5(chunk, usedforsecurity=False).hexdigest()
                if have.get(n) == md5:
                    etag = md5
                else:
                    etag = self._call(f"uploading part {n} of {key}", self.s3.upload_part, Key=self._key(key),
                                      UploadId=upload_id, PartNumber=n, Body=chunk)["ETag"].strip('"')
                    checkpoint("integration.upload.part")
                parts.append({"PartNumber": n, "ETag": f'"{etag}"'})
                done += len(chunk)
                progress(done, total)
                n += 1
                if not chunk:
                    break
        if h.hexdigest() != sha256:
            self._call(f"aborting the upload of {key}", self.s3.abort_multipart_upload, Key=self._key(key),
                       UploadId=upload_id)
            uploads.pop(key, None)
            raise IntegrityError(f"{key}: the bytes sent hash to {h.hexdigest()}, not {sha256}; upload aborted")
        self._call(f"completing the upload of {key}", self.s3.complete_multipart_upload, Key=self._key(key),
                   UploadId=upload_id, MultipartUpload={"Parts": parts})
        uploads.pop(key, None)

    def delete(self, key: str) -> None:
        self._call(f"deleting {key}", self.s3.delete_object, Key=self._key(key))


def open_destination(cfg: DestConfig) -> Destination:
    return Folder(cfg.path) if cfg.type == "folder" else Bucket(cfg)
