"""ROB-01 (restore), ROB-02 (.nsb reader), ROB-04, BK-09: a restore killed at
any point leaves the old or the new site, never a mixture; mutated backups
are refused cleanly; a full or read-only disk gives a clear error and loses
nothing. The tests marked ``pg`` run on the run's site database backend
(TETHER_TEST_DB, tests/backup/conftest.py): on PostgreSQL the old and the new
site are schemas on a real server (OPS-03)."""

import functools
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.backup import restore as restore_mod
from tether.backup.filestore import FileEntry
from tether.backup.reader import read_backup
from tether.backup.writer import write_backup
from tether.core import crashpoints
from tether.core.db import make_engine, sqlite_url
from tether.core.errors import IntegrityError, Invalid, TetherError
from tether.core.paths import DataDir
from tether.site.install import read_info
from tests.backup.util import FakeSite, logical_dump, site_database, site_engine, site_url
from tests.helpers import run_cli


def _make_site(tmp_path: Path, vendor, db_url: str | None = None) -> Path:
    data = tmp_path / "appliance"
    extra = ("--site-db-url", db_url) if db_url else ()
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), *extra, check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    return data


def _users(data: Path, add: str | None = None, remove: str | None = None) -> None:
    import sqlalchemy as sa

    from tether.site.tables import users

    engine = site_engine(data)
    try:
        with engine.begin() as c:
            if add:
                c.execute(users.insert().values(username=add, display_name=add, password_hash="x",
                                                must_change_password=False, is_admin=False, permissions=[],
                                                enabled=True, created_at=0))
            if remove:
                c.execute(sa.delete(users).where(users.c.username == remove))
    finally:
        engine.dispose()


def _backup_of(site_dir: Path, work: Path, *, files: list[FileEntry] = (), password=None) -> Path:
    engine = site_engine(site_dir.parent) if (site_dir / "database.json").exists() else \
        make_engine(sqlite_url(site_dir / "site.db"))
    try:
        res = write_backup(FakeSite(engine, read_info(engine)), work / "out", password=password,
                           include_history=True, work_dir=work / "tmp", files=list(files))
    finally:
        engine.dispose()
    return res.path


def _blobs(d: Path, n: int, size: int, tag: str) -> list[FileEntry]:
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        data = f"{tag}-{i}-".encode() * (size // 8)
        sha = hashlib.sha256(data).hexdigest()
        (d / sha).write_bytes(data)
        out.append(FileEntry(f"{tag}{i}.txt", sha, len(data), functools.partial(open, d / sha, "rb")))
    return out


@pytest.fixture
def two_sites(tmp_path, vendor, site_db):
    """An appliance whose site is OLD, and a backup of a NEW site state (more users, 50 files), on the
    run's site database backend. Returns (data dir, backup, PostgreSQL server or None)."""
    data = _make_site(tmp_path, vendor, site_db.new_database() if site_db else None)
    site = data / "site"
    _users(data, add="nina")
    files = _blobs(tmp_path / "blobs", 50, 4096, "file")
    backup = _backup_of(site, tmp_path / "w", files=files)
    _users(data, add="oscar", remove="nina")  # oscar only in the old site, nina only in the backup
    _blobs(site / "recordings", 150, 1024, "rec")  # recordings are never in backups: carried over
    return data, backup, site_db


class _Copies:
    """A fresh copy of the OLD appliance for each trial: its data directory, and on PostgreSQL a
    database whose old schema is untouched. A crashed restore never changes the old schema before
    the swap (and recover() drops the new one), so a trial reuses the database of the one before
    unless that one's old schema is gone; then a new database is made from the old one
    (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self, data: Path, server, tmp: Path):
        self.data, self.server, self.tmp = data, server, tmp
        self.url = site_url(data)
        self.base = self.url.rsplit("/", 1)[1] if self.url else None
        self.old_schema = json.loads((data / "site" / "database.json").read_text()).get("schema")
        self.current: str | None = None
        self.n = 0

    def _sql(self, stmt: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(stmt)

    def make(self, name: str) -> tuple[Path, str | None]:
        d = self.tmp / name
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(self.data, d, symlinks=True)
        if self.server is None:
            return d, None
        if self.current is None or self.old_schema not in _schemas(self.server.url(self.current)):
            if self.current is not None:
                self._sql(f'DROP DATABASE "{self.current}" WITH (FORCE)')
            self.n += 1
            self.current = f"{self.base}_t{self.n}"
            self._sql(f'CREATE DATABASE "{self.current}" TEMPLATE "{self.base}" STRATEGY FILE_COPY')
        return d, self.server.url(self.current)


def _schemas(url: str | None) -> list[str]:
    from tether.site import location

    return location.our_schemas(url) if url else []


@pytest.mark.pg
@pytest.mark.req("ROB-01", "BK-09", "OPS-03")
@pytest.mark.timeout(900)
def test_restore_killed_at_every_point_leaves_old_or_new(two_sites, tmp_path):
    data, backup, server = two_sites
    copies = _Copies(data, server, tmp_path)
    old_hash = logical_dump(data / "site")
    # one full restore on a copy: the new state, and how many crash points it passes
    ref, ref_url = copies.make("ref")
    crashpoints.arm(None)
    before = crashpoints.count()
    restore_mod.restore(DataDir.at(ref), backup, None, db_url=ref_url)
    points = crashpoints.count() - before
    new_hash = logical_dump(ref / "site", url=ref_url)
    assert new_hash != old_hash
    assert points >= 200, points
    assert len(_schemas(ref_url)) == (1 if server else 0)  # the old schema was dropped after the swap
    outcomes = {"old": 0, "new": 0}
    for n in range(1, points + 1):
        trial, url = copies.make("trial")
        pid = os.fork()
        if pid == 0:  # the restoring process, killed by SIGKILL at crash point n
            try:
                crashpoints.arm(n)
                restore_mod.restore(DataDir.at(trial), backup, None, db_url=url)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (n, status)
        restore_mod.recover(DataDir.at(trial), url)  # what the next start does
        h = logical_dump(trial / "site", url=url)
        assert h in (old_hash, new_hash), f"mixture after a crash at point {n}"
        outcomes["old" if h == old_hash else "new"] += 1
        leftovers = [p.name for p in trial.iterdir()  # site directories (not <data>/site-package.tsp)
                     if p.name.startswith("site-") and p.is_dir() and not p.is_symlink()]
        assert len(leftovers) == 1 and leftovers[0].startswith("site-"), (n, leftovers)
        if server:  # exactly one copy of the site on the server: the one the site directory names
            assert _schemas(url) == [json.loads((trial / "site" / "database.json").read_text())["schema"]], n
    assert outcomes["old"] > 0 and outcomes["new"] > 0, outcomes
    print(f"\ncrash points: {points}; left old: {outcomes['old']}, left new: {outcomes['new']}; "
          f"databases copied: {copies.n}")


@pytest.fixture(scope="module")
def small_backups(tmp_path_factory, vendor):
    tmp = tmp_path_factory.mktemp("fuzz")
    data = _make_site(tmp, vendor)
    files = _blobs(tmp / "blobs", 3, 512, "f")
    plain = _backup_of(data / "site", tmp / "w1", files=files)
    protected = _backup_of(data / "site", tmp / "w2", files=files, password="Fuzz-password-1")
    manifests = (read_backup(plain, None).manifest, read_backup(protected, "Fuzz-password-1").manifest)
    return _Corpus(plain.read_bytes(), protected.read_bytes(), tmp, manifests)


class _Corpus(tuple):
    """The fuzzing corpus, with a short repr for hypothesis' failure reports."""

    def __new__(cls, *items):
        return super().__new__(cls, items)

    def __repr__(self) -> str:
        return f"<corpus: {len(self[0])} + {len(self[1])} bytes>"


def _payload_span(data: bytes) -> tuple[int, int]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        m = t.getmembers()[-1]
    return m.offset_data, m.offset_data + m.size


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for kind, pos, val in ops:
        if not b:
            break
        p = pos % len(b)
        if kind == 0:
            b[p] ^= (val % 255) + 1
        elif kind == 1:
            del b[p:]
        elif kind == 2:
            b[p:p] = bytes([val % 256]) * (1 + val % 7)
        else:
            del b[p:p + 1 + val % 600]
    return bytes(b)


OPS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 30), st.integers(0, 1 << 16)), min_size=1,
               max_size=4)


@pytest.mark.req("ROB-02", "BK-09")
@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(ops=OPS)
def test_fuzz_unprotected_reader(small_backups, ops):
    plain, _, tmp, (manifest, _) = small_backups
    mutated = _mutate(plain, ops)
    path = tmp / "m.nsb"
    path.write_bytes(mutated)
    try:
        res = read_backup(path, None)
    except (IntegrityError, Invalid):
        return
    # accepted only when the mutation changed nothing the reader checks: the layout, the padding and the
    # header are exact, so only bits a Zstandard decoder ignores (the same content comes out) may differ
    start, end = _payload_span(plain)
    assert len(mutated) == len(plain) and mutated[:start] == plain[:start] and mutated[end:] == plain[end:]
    assert res.manifest == manifest


@pytest.mark.req("ROB-02", "BK-09", "SEC-02")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(ops=OPS)
def test_fuzz_protected_reader(small_backups, ops):
    _, protected, tmp, (_, manifest) = small_backups
    mutated = _mutate(protected, ops)
    path = tmp / "p.nsb"
    path.write_bytes(mutated)
    try:
        res = read_backup(path, "Fuzz-password-1")
    except (IntegrityError, Invalid):
        return
    assert mutated == protected and res.manifest == manifest


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI: {r.stderr.decode()}")
        pytest.skip("mounting a size-limited tmpfs needs root")


def _umount(path: Path) -> None:
    for _ in range(20):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)


@pytest.mark.pg
@pytest.mark.req("ROB-04", "BK-09", "OPS-03")
def test_disk_full_and_read_only_during_restore_and_backup(tmp_path, vendor, site_db):
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "24m")
    try:
        url = site_db.new_database() if site_db else None
        data = _make_site(mnt, vendor, url)
        # a backup bigger than the free space (made on SQLite: backups move between databases)
        src = _make_site(tmp_path / "src", vendor)
        big = tmp_path / "big-state"
        shutil.copytree((src / "site").resolve(), big)
        files = _blobs(tmp_path / "blobs", 50, 200 * 1024, "big")  # 10 MB of file store
        con = sqlite3.connect(big / "site.db")
        con.execute("CREATE TABLE padding (x BLOB)")  # a site bigger than the free space
        con.executemany("INSERT INTO padding VALUES (randomblob(1048576))", [()] * 20)
        con.commit()
        con.close()
        (big / "database.json").unlink()
        backup = _backup_of(big, tmp_path / "w", files=files)
        state = logical_dump(data / "site")
        schemas = _schemas(url)
        db = site_database(data)  # read before the disk fills up
        with pytest.raises(TetherError, match="disk is full"):
            restore_mod.restore(DataDir.at(data), backup, None, db_url=url)
        assert logical_dump(data / "site") == state
        assert not (data / "site.restore").exists()
        assert _schemas(url) == schemas  # nothing left on the server either
        # a backup onto a full disk: a clear error, no partial file left behind
        filler = mnt / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        engine = db.engine()
        try:
            with pytest.raises(TetherError, match="could not be written"):
                write_backup(FakeSite(engine, read_info(engine)), mnt / "backups", password=None,
                             include_history=True, work_dir=tmp_path / "work", files=files)
        finally:
            engine.dispose()
        assert not list((mnt / "backups").glob("*.partial")) and not list((mnt / "backups").glob("*.nsb"))
        filler.unlink()
        assert logical_dump(data / "site") == state
        # read-only: refused clearly, nothing changed
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(TetherError, match="read-only"):
            restore_mod.restore(DataDir.at(data), backup, None, db_url=url)
        subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        assert logical_dump(data / "site") == state
        assert _schemas(url) == schemas
    finally:
        _umount(mnt)
