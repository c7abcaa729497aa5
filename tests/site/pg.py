"""A throw-away PostgreSQL server for the tests (OPS-03), from Debian's
``postgresql`` package: ``initdb`` into a temporary directory owned by the
``postgres`` user (the tests run as root, and PostgreSQL refuses root),
``pg_ctl start`` on a free loopback port with trust authentication, one
fresh database per appliance, and ``pg_ctl stop`` at the end."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port


def _bindir() -> Path | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass
class PgServer:
    root: Path
    port: int
    bindir: Path
    _n = itertools.count()

    @classmethod
    def start(cls) -> "PgServer":
        bindir = _bindir()
        if bindir is None:
            if os.environ.get("CI"):
                raise RuntimeError("TETHER_TEST_DB=postgresql but PostgreSQL is not installed "
                                   "(scripts/install-system-deps installs it)")
            pytest.skip("PostgreSQL is not installed")
        root = Path(tempfile.mkdtemp(prefix="tether-pg-"))
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_pg:
            shutil.chown(root, "postgres", "postgres")
        port = free_port()
        subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-o", opts, "-l",
                        str(root / "log"), "-w", "start"], check=True, capture_output=True)
        return cls(root, port, bindir)

    def _as_pg(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        import psycopg

        name = f"site_{os.getpid()}_{next(self._n)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([*self._as_pg(), str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
