"""A real S3-compatible server for tests: moto in server mode (``python -m
moto.server``, from PyPI's ``moto[server]``), started as a subprocess on
loopback, never in-process.

``MotoServer`` starts and stops it (also as a context manager) and gives its
``endpoint_url``, the credentials it accepts (``env``), a boto3 ``client()``
and the objects in its bucket (``objects()``). ``bucket`` is created at the
start. IAM authentication, two ways:

- ``auth=True``: the first requests (made by ``start``) create the bucket and
  two IAM users unauthenticated, then every request is authenticated and
  authorised as AWS does: ``writer`` (``keys["writer"]``) may do anything in
  S3, ``reader`` only read and list (a bucket that refuses writes), and an
  unknown key is refused;
- ``auth_after=N``: checking starts after N requests, the caller's own set-up.

Fixtures: ``moto_server`` (per module, ``auth=True``, bucket ``tether-test``)
and ``s3_server`` (per module, no authentication, no bucket)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, stop_process

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
USERS_SETUP = 6  # (create_user, create_access_key, put_user_policy) x 2
_WRITE_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
_READ_ONLY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket",'
              '"s3:HeadBucket","s3:ListAllMyBuckets"],"Resource":"*"}]}')


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, bucket: str | None = None,
                 auth: bool = False, auth_after: int | None = None, log: Path | None = None,
                 tls: tuple[Path, Path] | None = None, ca: Path | None = None):
        """``tls``: (certificate, key) files to serve HTTPS with; ``ca``: what this side's clients trust."""
        self.host, self.port, self.bucket, self.auth, self.auth_after = host, port, bucket, auth, auth_after
        self.log, self.tls, self.ca = log, tls, ca
        self.proc: subprocess.Popen | None = None
        self._out = None
        self.keys: dict[str, tuple[str, str]] = {"writer": ("testing", "testing")}

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def env(self) -> dict:
        """Environment for a process that talks to this server through boto3."""
        return dict(CREDENTIALS)

    def client(self, service: str = "s3", *, who: str | None = None, key_id: str | None = None,
               secret: str | None = None):
        """A boto3 client of ``service`` with ``who``'s keys (auth=True: ``writer`` unless told), or
        ``key_id``/``secret``, or the set-up credentials."""
        import boto3
        from botocore.config import Config

        if who is None and key_id is None and self.auth:
            who = "writer"
        if who is not None:
            key_id, secret = self.keys[who]
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=key_id or "testing", aws_secret_access_key=secret or "testing",
                            config=Config(s3={"addressing_style": "path"}),
                            verify=str(self.ca) if self.ca else None)

    def start(self, timeout: float = 30) -> "MotoServer":
        self.port = self.port or free_port(self.host)
        env = {**os.environ, **CREDENTIALS}
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(USERS_SETUP + (1 if self.bucket else 0))
        elif self.auth_after:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.auth_after)
        self._out = open(self.log, "ab") if self.log else None
        tls = ["-c", str(self.tls[0]), "-k", str(self.tls[1])] if self.tls else []
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port), *tls],
                                     stdout=self._out or subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1, verify=False).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"moto server did not answer on {self.endpoint_url}")
            time.sleep(0.1)
        try:
            self._setup()
        except BaseException:
            self.stop()
            raise
        return self

    def _setup(self) -> None:
        if self.bucket:
            self.client().create_bucket(Bucket=self.bucket)
        if not self.auth:
            return
        iam = self.client("iam")
        for who, policy in (("writer", _WRITE_ALL), ("reader", _READ_ONLY)):
            iam.create_user(UserName=who)
            k = iam.create_access_key(UserName=who)["AccessKey"]
            iam.put_user_policy(UserName=who, PolicyName=f"{who}-s3", PolicyDocument=policy)
            self.keys[who] = (k["AccessKeyId"], k["SecretAccessKey"])

    def objects(self, prefix: str = "") -> dict[str, int]:
        """Key -> size of every object in the bucket under ``prefix``."""
        out: dict[str, int] = {}
        for page in self.client(who="writer").get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                                      Prefix=prefix):
            out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
        return out

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """A moto S3 server for the module, with IAM authentication on (``writer`` and ``reader`` keys) and the
    bucket ``tether-test``."""
    with MotoServer(bucket="tether-test", auth=True, log=tmp_path_factory.mktemp("moto") / "moto.log") as m:
        yield m


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """A moto S3 server for the module, any key pair accepted, no bucket (each test makes its own)."""
    with MotoServer(host="127.0.34.1", log=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server
