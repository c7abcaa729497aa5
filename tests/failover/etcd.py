"""A real three-member etcd cluster on loopback for the witness tests (FO-11):
Debian's ``etcd`` (scripts/install-system-deps installs etcd-server), one
member each on 127.0.6.1, .2 and .3, on free ports (other test runs may have
their own cluster on the same addresses), data directories on tmpfs when
there is one (fsync there is cheap on a loaded machine), removed with the
processes at teardown even when the test fails.

``etcd_cluster`` (module scope) yields an ``EtcdCluster``: ``endpoints``
(client URLs, member order), ``hosts``, ``client_port`` per member (to narrow
an nftables cut to one member's client traffic) and ``healthy()``. Outside
pytest (bench/failover_partitions.py --witness): ``open_cluster(logs)`` /
``close_cluster(cluster)`` make and remove a cluster with its own data
directory, and ``start_member`` / ``pause_member`` / ``cont_member`` /
``kill_member`` fault one member (a restart reuses its data and ports).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

HOSTS = ("127.0.6.1", "127.0.6.2", "127.0.6.3")


@dataclass
class Member:
    name: str
    host: str
    client_port: int
    peer_port: int
    data: Path
    log: Path
    proc: subprocess.Popen | None = None
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.client_port}"


@dataclass
class EtcdCluster:
    members: list[Member] = field(default_factory=list)
    root: Path | None = None  # the data directories' parent, when open_cluster made it

    @property
    def endpoints(self) -> list[str]:
        return [m.url for m in self.members]

    def healthy(self) -> bool:
        for m in self.members:
            try:
                if httpx.get(m.url + "/health", timeout=2).json().get("health") != "true":
                    return False
            except (httpx.HTTPError, ValueError):
                return False
        return True

    def logs(self) -> str:
        return "\n".join(f"--- {m.name}\n{m.log.read_text(errors='replace')[-3000:]}" for m in self.members
                         if m.log.exists())


def etcd_binary() -> str | None:
    return shutil.which("etcd") or ("/usr/bin/etcd" if os.path.exists("/usr/bin/etcd") else None)


def need_etcd() -> str:
    path = etcd_binary()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is missing in CI; scripts/install-system-deps should have installed etcd-server")
        pytest.skip("needs etcd (scripts/install-system-deps installs etcd-server)")
    return path


def start_cluster(root: Path, logs: Path, timeout: float = 40, binary: str | None = None) -> EtcdCluster:
    binary = binary or need_etcd()
    cluster = EtcdCluster()
    for i, host in enumerate(HOSTS, 1):
        cluster.members.append(Member(f"m{i}", host, free_port(host), free_port(host), root / f"m{i}",
                                      logs / f"etcd-m{i}.log"))
    initial = ",".join(f"{m.name}=http://{m.host}:{m.peer_port}" for m in cluster.members)
    token = f"tether-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        for m in cluster.members:
            m.args = [binary, "--name", m.name, "--data-dir", str(m.data),
                      "--listen-peer-urls", f"http://{m.host}:{m.peer_port}",
                      "--initial-advertise-peer-urls", f"http://{m.host}:{m.peer_port}",
                      "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
                      "--initial-cluster", initial, "--initial-cluster-state", "new",
                      "--initial-cluster-token", token, "--logger", "zap", "--log-level", "warn"]
            start_member(m)
        deadline = time.monotonic() + timeout
        while not cluster.healthy():
            dead = [m.name for m in cluster.members if m.proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"the etcd cluster did not start ({dead or 'timeout'}):\n{cluster.logs()}")
            time.sleep(0.2)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def start_member(m: Member) -> None:
    """(Re)start one member on its data directory and ports (etcd ignores ``--initial-cluster-state new`` when
    the data directory already holds a member)."""
    with open(m.log, "ab") as out:
        m.proc = subprocess.Popen(m.args, stdout=out, stderr=subprocess.STDOUT)


def pause_member(m: Member) -> None:
    if m.proc is not None and m.proc.poll() is None:
        m.proc.send_signal(signal.SIGSTOP)


def cont_member(m: Member) -> None:
    if m.proc is not None and m.proc.poll() is None:
        m.proc.send_signal(signal.SIGCONT)


def kill_member(m: Member) -> None:
    """SIGKILL, and reap it."""
    if m.proc is not None:
        if m.proc.poll() is None:
            m.proc.kill()
        m.proc.wait(10)


def stop_cluster(cluster: EtcdCluster) -> None:
    for m in cluster.members:  # SIGKILL: its data goes with it, and a member left without quorum can
        if m.proc is not None and m.proc.poll() is None:  # take seconds to honour SIGTERM
            m.proc.kill()  # (a stopped member dies of SIGKILL too)
    for m in cluster.members:
        if m.proc is not None:
            m.proc.wait(10)
        shutil.rmtree(m.data, ignore_errors=True)


def _tmpfs() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def open_cluster(logs: Path, timeout: float = 40) -> EtcdCluster:
    """A cluster with data in a directory of its own (on tmpfs when there is one), outside pytest: raises
    RuntimeError without etcd. ``close_cluster`` stops it and removes the directory."""
    binary = etcd_binary()
    if binary is None:
        raise RuntimeError("needs etcd (scripts/install-system-deps installs etcd-server)")
    root = Path(tempfile.mkdtemp(prefix="tether-etcd-", dir=_tmpfs()))
    try:
        cluster = start_cluster(root, logs, timeout, binary=binary)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    cluster.root = root
    return cluster


def close_cluster(cluster: EtcdCluster) -> None:
    try:
        stop_cluster(cluster)
    finally:
        if cluster.root is not None:
            shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="module")
def etcd_cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("etcd-logs")
    root = Path(tempfile.mkdtemp(prefix="tether-etcd-", dir=_tmpfs()))
    try:
        cluster = start_cluster(root, logs)
        try:
            yield cluster
        finally:
            stop_cluster(cluster)
    finally:
        shutil.rmtree(root, ignore_errors=True)
