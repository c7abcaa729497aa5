"""ROB-02, BK-09, SEC-02 (issue 19, items 4, 6, 7, 8): crafted backups and
snapshots are refused with a clear IntegrityError (exit 7, HTTP 400), never a
traceback; every alteration of the outer header or the tar padding is
refused; a truncated file and a damaged identity.age are named as such; every
backup and snapshot is written 0600 whatever the umask."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tether import __version__ as CURRENT
from tether.backup import container, crypto
from tether.backup.reader import read_backup
from tether.core.errors import IntegrityError
from tests.backup.util import backup_as_release
from tests.helpers import run_cli

PW = "Crafted-password-1"


@pytest.fixture(scope="module")
def backups(tmp_path_factory):
    """A small unprotected and a small protected backup, each with padding after every outer member."""
    tmp = tmp_path_factory.mktemp("crafted")
    out = {}
    for key, password in (("plain", None), ("protected", PW)):
        for _ in range(5):  # a payload whose size is a multiple of 512 has no padding to flip: take another
            path = backup_as_release(tmp, CURRENT, password=password)
            if all(m.size % 512 for m in _members(path)):
                break
        out[key] = path
    return tmp, out


def _members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:") as t:
        return t.getmembers()


def _parts(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path, "r:") as t:
        return [(m.name, t.extractfile(m).read()) for m in t.getmembers()]


def _outer(dest: Path, members: list[tuple[str, bytes | None]]) -> Path:
    """An outer tar as the writer lays it out; ``None`` content makes a directory member."""
    with open(dest, "wb") as f:
        w = container.OuterWriter(f)
        for name, data in members:
            if data is None:
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o700
                f.write(ti.tobuf(format=tarfile.USTAR_FORMAT))
            else:
                w.add_bytes(name, data)
        w.close()
    return dest


def _header_bytes(h: dict) -> bytes:
    return json.dumps(h, indent=2).encode()


def _refused(path: Path, password: str | None = PW) -> str:
    with pytest.raises(IntegrityError) as e:
        read_backup(path, password)
    return e.value.message


def _cli_verify(path: Path, tmp: Path, password: str | None = PW):
    args = ["verify", str(path)]
    if password:
        (tmp / "pw").write_text(password + "\n")
        args += ["--password-file", str(tmp / "pw")]
    return run_cli(*args)


def _crafted_nsb(tmp: Path, backups) -> dict[str, Path]:
    """Item 4's shapes, from the real protected backup's parts."""
    parts = dict(_parts(backups["protected"]))
    header = parts["nsb.json"]
    big = crypto.seal_identity(crypto.new_identity(), PW)
    big += b"\n" * ((1 << 20) + 1 - len(big))
    return {
        "identity-dir": _outer(tmp / "identity-dir.nsb", [("nsb.json", header), ("identity.age", None),
                                                          ("payload.tar.zst.age", parts["payload.tar.zst.age"])]),
        "payload-dir": _outer(tmp / "payload-dir.nsb", [("nsb.json", header), ("identity.age", parts["identity.age"]),
                                                        ("payload.tar.zst.age", None)]),
        "identity-big": _outer(tmp / "identity-big.nsb", [("nsb.json", header), ("identity.age", big),
                                                          ("payload.tar.zst.age", parts["payload.tar.zst.age"])]),
    }


@pytest.mark.req("ROB-02", "BK-09", "DR-03")
def test_crafted_members_are_refused_by_verify_with_exit_7(backups, tmp_path):
    _, b = backups
    for shape, path in _crafted_nsb(tmp_path, b).items():
        assert "damaged or was altered" in _refused(path), shape
        cp = _cli_verify(path, tmp_path)
        assert cp.returncode == 7, (shape, cp.returncode, cp.stderr)
        assert "Traceback" not in cp.stderr and "damaged or was altered" in cp.stderr, (shape, cp.stderr)
    # an unprotected backup whose payload is a directory
    parts = dict(_parts(b["plain"]))
    path = _outer(tmp_path / "plain-dir.nsb", [("nsb.json", parts["nsb.json"]), ("payload.tar.zst", None)])
    assert "damaged or was altered" in _refused(path, None)
    assert _cli_verify(path, tmp_path, None).returncode == 7


@pytest.mark.req("ROB-02", "BK-09")
def test_crafted_snapshots_are_refused_by_snapshot_restore(tmp_path):
    header = _header_bytes({"format": "tether-snapshot/1", "protected": True, "appliance_version": CURRENT,
                            "serial_number": "TS-0000", "snapshot_id": "0badf00d",
                            "created_at": "2026-11-25T22:40:00Z", "payload": "payload.tar.zst.age"})
    ident = crypto.seal_identity(crypto.new_identity(), PW)
    big = ident + b"\n" * ((1 << 20) + 1 - len(ident))
    shapes = {"identity-dir": [("snapshot.json", header), ("identity.age", None), ("payload.tar.zst.age", b"x")],
              "payload-dir": [("snapshot.json", header), ("identity.age", ident), ("payload.tar.zst.age", None)],
              "identity-big": [("snapshot.json", header), ("identity.age", big), ("payload.tar.zst.age", b"x")]}
    (tmp_path / "pw").write_text(PW + "\n")
    root = tmp_path / "appliance"
    for shape, members in shapes.items():
        path = _outer(tmp_path / f"{shape}.tsnap", members)
        cp = run_cli("snapshot", "restore", str(path), "--data", str(root), "--password-file", str(tmp_path / "pw"))
        assert cp.returncode == 7, (shape, cp.returncode, cp.stderr)
        assert "Traceback" not in cp.stderr and "damaged or was altered" in cp.stderr, (shape, cp.stderr)
        assert not root.exists() and not list(tmp_path.glob("appliance.*")), shape  # nothing staged, nothing left


def _flip(src: Path, dest: Path, offset: int) -> Path:
    data = bytearray(src.read_bytes())
    data[offset] ^= 0x20
    dest.write_bytes(bytes(data))
    return dest


def _rewrite_header(src: Path, dest: Path, edit) -> Path:
    parts = _parts(src)
    h = json.loads(parts[0][1])
    edit(h)
    return _outer(dest, [(parts[0][0], _header_bytes(h))] + parts[1:])


@pytest.mark.req("ROB-02", "BK-09", "SEC-02")
@pytest.mark.parametrize("key", ["plain", "protected"])
def test_altered_outer_header_and_padding_are_refused(backups, tmp_path, key):
    _, b = backups
    src = b[key]
    password = PW if key == "protected" else None
    assert read_backup(src, password).header["protected"] is (password is not None)  # the original passes
    members = _members(src)
    payload = members[-1]
    altered = {
        "created_at": _rewrite_header(src, tmp_path / "c.nsb", lambda h: h.update(created_at="2020-01-01T00:00:00Z")),
        "payload name": _rewrite_header(src, tmp_path / "p.nsb", lambda h: h.update(payload="evil.bin")),
        "extra key": _rewrite_header(src, tmp_path / "x.nsb", lambda h: h.update(comment="hello")),
        "protected as 1": _rewrite_header(src, tmp_path / "one.nsb", lambda h: h.update(protected=1 if password
                                                                                      else 0)),
        # the same header, one indentation space turned into a tab: the JSON parses the same
        "whitespace": _flip(src, tmp_path / "w.nsb", members[0].offset_data + 2),
        "trailing zeros": tmp_path / "t.nsb",
    }
    (tmp_path / "t.nsb").write_bytes(src.read_bytes() + b"\0" * 512)
    for m in members:  # one byte of each member's padding, and of the payload's last block
        assert m.size % 512, m.name
        altered[f"padding after {m.name}"] = _flip(src, tmp_path / f"pad-{m.name}", m.offset_data + m.size)
        altered[f"end of the padding after {m.name}"] = _flip(
            src, tmp_path / f"pad2-{m.name}", m.offset_data + -(-m.size // 512) * 512 - 1)
    assert payload.name.startswith("payload")
    # every byte of the payload's last block (its content: the checksums or the authentication fail)
    last = payload.offset_data + (payload.size - 1) // 512 * 512
    end = payload.offset_data + payload.size
    for pos in range(last, end) if password is None else (last, (last + end) // 2, end - 1):
        altered[f"payload byte {pos - payload.offset_data}"] = _flip(src, tmp_path / f"last-{pos}", pos)
    for what, path in altered.items():
        assert "damaged or was altered" in _refused(path, password), what
    cp = _cli_verify(altered["created_at"], tmp_path, password)
    assert cp.returncode == 7 and "created_at" in cp.stderr, cp.stderr


@pytest.mark.req("ROB-02", "BK-09", "SEC-02")
@pytest.mark.parametrize("key", ["plain", "protected"])
def test_truncated_backups_are_reported_as_truncated(backups, tmp_path, key):
    _, b = backups
    data = b[key].read_bytes()
    password = PW if key == "protected" else None
    cuts = sorted({1, 100, 511, 512, 700} | {len(data) * i // 30 for i in range(1, 30)} | {len(data) - 1})
    path = tmp_path / "cut.nsb"
    for n in cuts:
        path.write_bytes(data[:n])
        assert "truncated" in _refused(path, password), n
    path.write_bytes(b"")
    assert "empty" in _refused(path, password)
    path.write_bytes(b"this is not a backup at all\n" * 40)
    assert "not a Tether site backup" in _refused(path, password)


def _identity_span(path: Path) -> tuple[int, int]:
    m = next(m for m in _members(path) if m.name == "identity.age")
    return m.offset_data, m.size


@pytest.mark.req("BK-09", "SEC-02")
def test_damaged_identity_with_the_right_password_is_not_a_wrong_password(backups, tmp_path):
    _, b = backups
    start, size = _identity_span(b["protected"])
    last = _flip(b["protected"], tmp_path / "last.nsb", start + size - 1)  # in its encrypted payload
    msg = _refused(last)
    assert "identity.age is damaged" in msg and "wrong password" not in msg, msg
    assert "wrong password" in _refused(b["protected"], "Another-password-9")
    assert "wrong password" in _refused(last, "Another-password-9")


@pytest.mark.req("BK-01", "SEC-02")
def test_backups_and_snapshots_are_written_0600_whatever_the_umask(tmp_path, vendor):
    data = tmp_path / "appliance"
    run_cli("init", "--data", str(data), "--trust-vendor-key", str(vendor["pub"]), check=True)
    run_cli("site-package", "install", str(vendor["package"]()), "--data", str(data), check=True)
    (tmp_path / "pw").write_text(PW + "\n")
    old = os.umask(0)
    try:
        run_cli("backup", "--data", str(data), "--no-password", "--out", str(tmp_path / "plain"), check=True)
        run_cli("backup", "--data", str(data), "--password-file", str(tmp_path / "pw"), "--out",
                str(tmp_path / "protected"), check=True)
        run_cli("snapshot", "create", "--data", str(data), "--password-file", str(tmp_path / "pw"), "--out",
                str(tmp_path / "snap"), check=True)
    finally:
        os.umask(old)
    made = [*(tmp_path / "plain").glob("*.nsb"), *(tmp_path / "protected").glob("*.nsb"),
            *(tmp_path / "snap").glob("*.tsnap")]
    assert len(made) == 3, made
    for p in made:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p.name, oct(p.stat().st_mode))


@pytest.mark.pg
@pytest.mark.req("ROB-02", "BK-09")
def test_crafted_backups_get_400_from_verify_and_restore_apis(ready_site, backups, tmp_path):
    _, c, _ah, sh = ready_site
    _, b = backups
    users = c.get("/api/users", headers=sh).json()
    for shape, path in _crafted_nsb(tmp_path, b).items():
        for route in ("/api/backup/verify", "/api/restore"):
            r = c.post(route, headers=sh, files={"file": (path.name, path.read_bytes())}, data={"password": PW})
            assert r.status_code == 400, (shape, route, r.status_code, r.text)
            assert r.json()["error"] == "integrity" and "damaged or was altered" in r.json()["message"], r.text
    assert c.get("/api/users", headers=sh).json() == users
    # the uploads were not left behind
    assert not [p for p in (ready_site[0].data / "backups").rglob("*") if p.is_file()]
    # a backup downloaded by the CLI from the appliance is written 0600 as well, whatever the umask
    env = {**ready_site[0].cli_env(), "TETHER_TOKEN": sh["Authorization"].split()[1]}
    old = os.umask(0)
    try:
        run_cli("backup", "--no-password", "--out", str(tmp_path / "dl"), env=env, check=True)
    finally:
        os.umask(old)
    (got,) = (tmp_path / "dl").glob("*.nsb")
    assert stat.S_IMODE(got.stat().st_mode) == 0o600, oct(got.stat().st_mode)


def _payload(members: list[tuple[str, bytes]]) -> bytes:
    """A payload (a Zstandard-compressed inner tar) holding exactly ``members``."""
    import zstandard

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return zstandard.ZstdCompressor(write_checksum=True).compress(buf.getvalue())


@pytest.mark.req("ROB-02", "BK-09")
def test_a_deeply_nested_manifest_is_refused_not_a_crash(backups, tmp_path):
    _, b = backups
    header = dict(_parts(b["plain"]))["nsb.json"]
    for manifest in (b"[" * 100_000 + b"]" * 100_000, b'{"members": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
        path = _outer(tmp_path / "deep.nsb", [("nsb.json", header),
                                              ("payload.tar.zst", _payload([("manifest.json", manifest)]))])
        assert "manifest.json is unreadable" in _refused(path, None)
        cp = _cli_verify(path, tmp_path, None)
        assert cp.returncode == 7 and "Traceback" not in cp.stderr, cp.stderr
