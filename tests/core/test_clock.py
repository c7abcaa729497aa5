"""The clock seam (tether.core.clock): the system clock unless
TETHER_CLOCK_FILE names a file, then that file's offset, re-read when the
file is replaced; never an offset on the monotonic clock."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from tether.core import clock
from tests.helpers import ClockFile


@pytest.fixture
def offset_file(tmp_path, monkeypatch) -> ClockFile:
    f = ClockFile(tmp_path / "offset")
    monkeypatch.setenv(clock.ENV_CLOCK_FILE, str(f.path))
    return f


def near(a: float, b: float) -> bool:
    return abs(a - b) < 1.0


def test_without_the_variable_it_is_the_system_clock(monkeypatch):
    monkeypatch.delenv(clock.ENV_CLOCK_FILE, raising=False)
    assert clock.offset() == 0.0 and near(clock.now(), time.time())
    assert near(clock.now_utc().timestamp(), time.time()) and clock.now_utc().tzinfo == dt.timezone.utc


def test_the_offset_moves_now_and_every_replacement_is_seen(offset_file):
    assert clock.offset() == 0.0  # no file yet
    offset_file.advance(3600)
    assert clock.offset() == 3600 and near(clock.now(), time.time() + 3600)
    assert near(clock.now_utc().timestamp(), time.time() + 3600)
    for i in range(1, 4):  # replaced within one tick of the filesystem's timestamps, same size: seen
        offset_file.advance(0.5)
        os.utime(offset_file.path, ns=(10 ** 9, 10 ** 9))
        assert clock.offset() == 3600 + 0.5 * i
    offset_file.set(-86400.25)
    assert clock.offset() == -86400.25


@pytest.mark.parametrize("text", ["", "soon", "nan", "inf", "\xff\xfe"])
def test_a_malformed_file_counts_as_zero(offset_file, text):
    offset_file.path.write_bytes(text.encode("latin-1"))
    assert clock.offset() == 0.0 and near(clock.now(), time.time())


def test_an_unreadable_or_removed_file_counts_as_zero(offset_file):
    offset_file.advance(60)
    assert clock.offset() == 60
    offset_file.path.unlink()
    assert clock.offset() == 0.0
    offset_file.path.mkdir()  # exists, cannot be read as a file
    assert clock.offset() == 0.0


def test_monotonic_is_never_offset(offset_file):
    offset_file.advance(10 ** 6)
    assert near(clock.monotonic(), time.monotonic())
