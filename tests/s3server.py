"""A real S3-compatible server for tests: moto in server mode (``python -m
moto.server``, from PyPI's ``moto[server]``), started as a subprocess on
loopback, never in-process.

``MotoServer(auth=True)`` turns on moto's IAM authentication: the first
requests (``SETUP_ACTIONS``, made by ``start``) create the bucket and two IAM
users unauthenticated, then every request is authenticated and authorised
like AWS does: ``writer`` may do anything in S3, ``reader`` only read and list
(a bucket that refuses writes), and an unknown key is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, stop_process

SETUP_ACTIONS = 7  # create_bucket, then (create_user, create_access_key, put_user_policy) x 2
_WRITE_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
_READ_ONLY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket",'
              '"s3:HeadBucket","s3:ListAllMyBuckets"],"Resource":"*"}]}')


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, bucket: str = "tether-test",
                 auth: bool = False, log: Path | None = None, tls: tuple[Path, Path] | None = None,
                 ca: Path | None = None):
        """``tls``: (certificate, key) files to serve HTTPS with; ``ca``: what this side's clients trust."""
        self.host, self.port, self.bucket, self.auth, self.log, self.tls = host, port, bucket, auth, log, tls
        self.ca = ca
        self.proc: subprocess.Popen | None = None
        self._out = None
        self.keys: dict[str, tuple[str, str]] = {"writer": ("testing", "testing")}

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def client(self, who: str = "writer"):
        import boto3
        from botocore.config import Config

        key, secret = self.keys[who]
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1", aws_access_key_id=key,
                            aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"}),
                            verify=str(self.ca) if self.ca else None)

    def start(self, timeout: float = 30) -> "MotoServer":
        self.port = self.port or free_port(self.host)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_ACTIONS)
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
                raise TimeoutError("moto server did not start")
            time.sleep(0.1)
        try:
            self._setup()
        except BaseException:
            self.stop()
            raise
        return self

    def _setup(self) -> None:
        s3 = self.client()
        s3.create_bucket(Bucket=self.bucket)  # 1
        if not self.auth:
            return
        import boto3

        iam = boto3.client("iam", endpoint_url=self.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing",
                           verify=str(self.ca) if self.ca else None)
        for who, policy in (("writer", _WRITE_ALL), ("reader", _READ_ONLY)):
            iam.create_user(UserName=who)
            k = iam.create_access_key(UserName=who)["AccessKey"]
            iam.put_user_policy(UserName=who, PolicyName=f"{who}-s3", PolicyDocument=policy)
            self.keys[who] = (k["AccessKeyId"], k["SecretAccessKey"])

    def keys_of(self, who: str) -> tuple[str, str]:
        return self.keys[who]

    def objects(self, prefix: str = "") -> dict[str, int]:
        """Key -> size of every object in the bucket under ``prefix``."""
        out: dict[str, int] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
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
    """A moto S3 server for the module, with IAM authentication on (``writer`` and ``reader`` keys)."""
    with MotoServer(auth=True, log=tmp_path_factory.mktemp("moto") / "moto.log") as m:
        yield m
