"""A real S3-compatible server for tests: moto in server mode (``moto_server``,
from PyPI), started as a subprocess on loopback, never in-process.

``MotoServer`` starts and stops it (also as a context manager) and gives its
``endpoint_url``, the credentials it accepts (``env``: moto takes any key
pair unless IAM authentication is switched on) and a boto3 ``client()``;
the ``s3_server`` fixture shares one per test module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, stop_process

HOST = "127.0.34.1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer:
    def __init__(self, host: str = HOST, port: int | None = None, log: Path | None = None,
                 auth_after: int | None = None):
        """``auth_after``: moto's IAM authentication and authorization start after that many requests
        (``INITIAL_NO_AUTH_ACTION_COUNT``): the setup made before then (buckets, IAM users and their
        policies, access keys) is free, what follows is checked against those policies."""
        self.host, self.port, self.log, self.auth_after = host, port or free_port(host), log, auth_after
        self.proc: subprocess.Popen | None = None
        self._out = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict:
        """Environment for a process that talks to this server through boto3."""
        return dict(CREDENTIALS)

    def start(self, timeout: float = 30) -> "MotoServer":
        exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
        cmd = [exe, "-H", self.host, "-p", str(self.port)] if exe else \
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        self._out = open(self.log, "ab") if self.log else None
        env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": str(self.auth_after)} if self.auth_after else {})}
        self.proc = subprocess.Popen(cmd, stdout=self._out or subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1)
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"moto_server did not answer on {self.endpoint_url}")
                time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        if self._out is not None:
            self._out.close()
            self._out = None

    def client(self, service: str = "s3", key_id: str = "testing", secret: str = "testing"):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret)

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    with MotoServer(log=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server
